"""edgerelayctl as an operator runs it (SPEC §2, docs/admin-api.md): every queue, log and
route command end to end against a running edgerelayd, the DNS rig and aiosmtpd sites,
checked by its effects (what the sites receive, what the queue shows, what the log
says); the read-only commands also with the daemon stopped, the mutating ones failing
clearly then; and the admin token taken from the configuration ctl is given.

One daemon serves the module (retry_initial 1h: after a deferral, a delivery within a
test is the effect of a command). Each test uses its own route domain(s)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass

import pytest

from delivery_rig import INBOUND, SENDER_DOMAIN, DeliveryDaemon, MailSite, Rig, mid_of, sender, wait_dsn, wait_until
from edgerelay_harness import ROUTE_DOMAIN, make_message, program, strip_angle, unique
from test_admin_api import (BETA_HOP, BETA_IP, DEAD_HOP, DEFER, LONG_BACKOFF, MX1, OPS_HOP, TTL,
                            Msg, accept, add_token, attach_output, call, deferred, module_env, not_delivered, route_events,
                            routes_api, send, show_api)

C_LIST_A, C_LIST_B = "c-list-a.example", "c-list-b.example"
C_SHOW, C_SUM = "c-show.example", "c-sum.example"
C_FLUSH1, C_FLUSH2, C_FLUSH3 = "c-flush1.example", "c-flush2.example", "c-flush3.example"
C_HOLD, C_HOLD_DOM = "c-hold.example", "c-holddom.example"
C_DELETE, C_DELETE_DOM = "c-delete.example", "c-deletedom.example"
C_BOUNCE, C_BOUNCE_DOM = "c-bounce.example", "c-bouncedom.example"
C_RHOLD, C_SOFT, C_LOG = "c-routehold.example", "c-soft.example", "c-log.example"
C_OPS = [C_LIST_A, C_LIST_B, C_SHOW, C_SUM, C_FLUSH1, C_FLUSH2, C_FLUSH3, C_HOLD, C_HOLD_DOM, C_DELETE,
         C_DELETE_DOM, C_BOUNCE, C_BOUNCE_DOM, C_RHOLD, C_SOFT, C_LOG]
C_OVER = "c-override.example"  # -> DEAD_HOP, set to BETA_HOP
C_MASS = "c-mass.example"  # -> DEAD_HOP: thousands of messages wait for the domain-wide actions


@dataclass
class Env:
    rig: Rig
    d: DeliveryDaemon
    alpha: MailSite
    beta: MailSite
    ops: MailSite
    senders: MailSite


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, binaries):
    routes = ([{"domain": ROUTE_DOMAIN, "next_hop": INBOUND}]
              + [{"domain": dom, "next_hop": OPS_HOP} for dom in C_OPS]
              + [{"domain": C_OVER, "next_hop": DEAD_HOP}, {"domain": C_MASS, "next_hop": DEAD_HOP}])
    yield from module_env(request, tmp_path_factory, "ctl-control", routes)


@pytest.fixture(autouse=True)
def _attach_output(request, env):
    yield from attach_output(request, env)


# ---------------------------------------------------------------------------- running ctl

def run(d, *args: str, config=None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    cfg = str(config or d.config_path)
    return subprocess.run([program("edgerelayctl"), "--config", cfg, *args], capture_output=True, timeout=timeout,
                          cwd=d.dir, text=True)


def ok(d, *args: str, config=None) -> str:
    p = run(d, *args, config=config)
    assert p.returncode == 0, f"edgerelayctl {' '.join(args)}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def ok_json(d, *args: str, key: str, config=None) -> list:
    out = ok(d, *args, "--json", config=config)
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise AssertionError(f"edgerelayctl {' '.join(args)} --json printed no JSON ({e}): {out[:2000]!r}")
    assert isinstance(doc, dict) and isinstance(doc.get(key), list), \
        f"edgerelayctl {' '.join(args)} --json: expected {{\"{key}\": [...]}}, got {doc!r:.2000}"
    return doc[key]


def listed(d, *args: str) -> dict[str, dict]:
    return {m["queue_id"]: m for m in ok_json(d, "queue", "list", *args, key="messages")}


def route_json(d, domain: str) -> dict:
    routes = {r["domain"]: r for r in ok_json(d, "route", "list", key="routes")}
    assert domain in routes, f"route list --json has no {domain}: {sorted(routes)}"
    return routes[domain]


def logged_by_ctl(d, m: Msg, kind: str, timeout: float = 5.0, **match) -> list[dict]:
    """The events of kind for m's queue id, as `edgerelayctl log --queue-id` shows them,
    each with operator: true (waits for the index)."""
    def find():
        evs = [e for e in ok_json(d, "log", "--queue-id", m.qid, key="events") if e.get("event") == kind
               and all(e.get(k) == v for k, v in match.items())]
        return evs or None
    evs = wait_until(find, timeout, f"a {kind} event of {m.qid} in `edgerelayctl log --queue-id`",
                     interval=0.3, detail=lambda: ok(d, "log", "--queue-id", m.qid))
    for e in evs:
        assert e.get("operator") is True, f"{kind} event without operator: true: {e}"
        assert strip_angle(e.get("message_id")) == m.mid, e
    return evs


MUTATION_FAILS = re.compile(r"not running", re.I)


# ---------------------------------------------------------------------------- queue list / show / summary

def test_queue_list_filters_text_and_json(env):
    d = env.d
    a = deferred(env, C_LIST_A, prefix="list-a")
    b = deferred(env, C_LIST_B, n_rcpts=2, prefix="list-b")
    out = ok(d, "queue", "hold", b.qid)
    assert b.qid in out, out

    everything = listed(d)
    assert everything[a.qid]["state"] == "deferred" and everything[b.qid]["state"] == "held"
    ma = everything[a.qid]
    assert (ma["message_id"].strip("<>"), strip_angle(ma["sender"])) == (a.mid, a.sender), ma
    assert [(r["address"], r["state"]) for r in ma["recipients"]] == [(a.rcpts[0], "deferred")], ma
    assert DEFER in ma["recipients"][0]["last_reply"] and ma["recipients"][0]["attempts"] >= 1, ma
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", ma["arrival"]), ma
    assert isinstance(ma["size"], int) and ma["size"] > 0

    assert set(listed(d, "--domain", C_LIST_A)) == {a.qid}
    assert set(listed(d, "--domain", C_LIST_B)) == {b.qid}
    assert set(listed(d, "--domain", C_LIST_A.upper())) == {a.qid}, "domains are case-insensitive"
    held = listed(d, "--state", "held")
    assert b.qid in held and a.qid not in held
    dfr = listed(d, "--state", "deferred")
    assert a.qid in dfr and b.qid not in dfr
    assert listed(d, "--domain", C_LIST_A, "--state", "held") == {}
    assert set(listed(d, "--domain", C_LIST_B, "--state", "held")) == {b.qid}

    text = ok(d, "queue", "list", "--domain", C_LIST_B)
    line = next((l for l in text.splitlines() if l.startswith(b.qid)), None)
    assert line is not None and "held" in line and b.sender in line, text
    assert f"<{b.mid}>" in text and all(r in text for r in b.rcpts), text
    assert a.qid not in text
    text = ok(d, "queue", "list")
    assert a.qid in text and b.qid in text and "deferred" in text

    p = run(d, "queue", "list", "--state", "bogus")
    assert p.returncode == 2 and "--state" in p.stderr, (p.returncode, p.stderr)


def test_queue_show_text_and_json(env):
    d = env.d
    m = deferred(env, C_SHOW, prefix="show")
    text = ok(d, "queue", "show", m.qid)
    assert m.qid in text and f"<{m.mid}>" in text and f"<{m.sender}>" in text, text
    assert m.rcpts[0] in text and DEFER in text and "deferred" in text, text
    assert f"Subject: {m.subject}" in text, "queue show prints the headers"
    (doc,) = ok_json(d, "queue", "show", m.qid, key="messages")
    assert doc["queue_id"] == m.qid and doc["message_id"].strip("<>") == m.mid
    assert f"Subject: {m.subject}" in doc["headers"] and f"Message-ID: <{m.mid}>" in doc["headers"]
    assert [(r["address"], r["state"]) for r in doc["recipients"]] == [(m.rcpts[0], "deferred")]
    assert doc["client_ip"] == "127.0.0.1" and doc["helo"], doc
    p = run(d, "queue", "show", "0000000000000000")
    assert p.returncode == 1 and "0000000000000000" in p.stderr, (p.returncode, p.stderr)


def test_queue_summary_text_and_json(env):
    d = env.d
    ms = [deferred(env, C_SUM, prefix=f"sum{i}") for i in range(3)]
    ok(d, "queue", "hold", ms[0].qid)
    rows = ok_json(d, "queue", "summary", key="domains")
    row = next((r for r in rows if r.get("domain") == C_SUM), None)
    assert row is not None, f"queue summary --json has no row for {C_SUM}: {rows}"
    # Assumption (the contract names only {"domains":[...]}): each row has "domain" and
    # "total", the number of messages with recipients there, whatever their state.
    assert row.get("total") == 3, f"summary row for {C_SUM}: {row}"
    assert all(isinstance(r.get("domain"), str) for r in rows), rows
    text = ok(d, "queue", "summary")
    line = next((l for l in text.splitlines() if C_SUM in l), None)
    assert line is not None, f"no {C_SUM} line in queue summary:\n{text}"
    assert re.search(r"\b3\b", line), f"the {C_SUM} line does not show its 3 messages: {line!r}"


# ---------------------------------------------------------------------------- queue actions

def test_queue_flush_by_ids_domain_and_all(env):
    d, ops = env.d, env.ops
    one, two = deferred(env, C_FLUSH1, prefix="flush-a"), deferred(env, C_FLUSH1, prefix="flush-b")
    dom = deferred(env, C_FLUSH2, prefix="flush-dom")
    every = deferred(env, C_FLUSH3, prefix="flush-all")
    for m in (one, two, dom, every):
        accept(ops, m)
    not_delivered(ops, one, d, "deferred for 1h, before any flush")

    out = ok(d, "queue", "flush", one.qid, two.qid)
    assert one.qid in out and two.qid in out, out
    ops.wait_message(one.mid, timeout=10)
    ops.wait_message(two.mid, timeout=10)
    assert not ops.by_message_id(dom.mid) and not ops.by_message_id(every.mid), "flush of ids moved others"

    out = ok(d, "queue", "flush", "--domain", C_FLUSH2)
    assert dom.qid in out, out
    ops.wait_message(dom.mid, timeout=10)
    not_delivered(ops, every, d, "another domain after flush --domain")

    out = ok(d, "queue", "flush", "--all")
    assert every.qid in out, out
    ops.wait_message(every.mid, timeout=10)
    d.wait_gone([one.qid, two.qid, dom.qid, every.qid])
    for m in (one, two, dom, every):
        logged_by_ctl(d, m, "flush")


def test_queue_hold_and_release_by_ids_and_domain(env):
    d, ops = env.d, env.ops
    a, b = deferred(env, C_HOLD, prefix="hold-a"), deferred(env, C_HOLD, prefix="hold-b")
    c1, c2 = deferred(env, C_HOLD_DOM, prefix="hold-dom1"), deferred(env, C_HOLD_DOM, prefix="hold-dom2")
    ok(d, "queue", "hold", a.qid, b.qid)
    out = ok(d, "queue", "hold", "--domain", C_HOLD_DOM)
    assert c1.qid in out and c2.qid in out, out
    held = listed(d, "--state", "held")
    assert {a.qid, b.qid, c1.qid, c2.qid} <= set(held), sorted(held)
    for m in (a, b, c1, c2):
        accept(ops, m)
        logged_by_ctl(d, m, "hold")
    ok(d, "queue", "flush", a.qid)  # held messages stay held
    ok(d, "queue", "flush", "--domain", C_HOLD_DOM)
    not_delivered(ops, [a, b, c1, c2], d, "held message")
    for m in (a, b, c1, c2):
        assert listed(d)[m.qid]["state"] == "held"

    ok(d, "queue", "release", a.qid, b.qid)
    ops.wait_message(a.mid, timeout=10)
    ops.wait_message(b.mid, timeout=10)
    assert not ops.by_message_id(c1.mid), "release of ids released others"
    out = ok(d, "queue", "release", "--domain", C_HOLD_DOM)
    assert c1.qid in out and c2.qid in out, out
    ops.wait_message(c1.mid, timeout=10)
    ops.wait_message(c2.mid, timeout=10)
    d.wait_gone([m.qid for m in (a, b, c1, c2)])
    for m in (a, b, c1, c2):
        logged_by_ctl(d, m, "release")


def test_queue_delete_by_ids_and_domain(env):
    d, ops = env.d, env.ops
    a = deferred(env, C_DELETE, prefix="del-a")
    keep = deferred(env, C_DELETE, prefix="del-keep")
    c1, c2 = deferred(env, C_DELETE_DOM, prefix="del-dom1"), deferred(env, C_DELETE_DOM, prefix="del-dom2")
    out = ok(d, "queue", "delete", a.qid)
    assert a.qid in out, out
    assert a.qid not in listed(d) and keep.qid in listed(d)
    out = ok(d, "queue", "delete", "--domain", C_DELETE_DOM)
    assert c1.qid in out and c2.qid in out, out
    assert listed(d, "--domain", C_DELETE_DOM) == {}
    for m in (a, c1, c2):
        logged_by_ctl(d, m, "delete")
        accept(ops, m)
    p = run(d, "queue", "delete", a.qid)
    assert p.returncode == 1 and a.qid in p.stderr, f"deleting a deleted message: {p.returncode} {p.stderr}"
    ok(d, "queue", "flush", "--all")
    not_delivered(ops, [a, c1, c2], d, "deleted message")
    for m in (a, c1, c2):
        assert not [r for r in env.senders.messages() if m.mid.encode() in r.content], "a DSN for a deleted message"
    assert listed(d)[keep.qid]["state"] == "deferred"
    ok(d, "queue", "delete", keep.qid)


def test_domain_actions_on_more_messages_than_one_chunk(env):
    """A domain-wide action goes 1,000 messages per spool transaction: 2,500 messages are
    all held, released and deleted, each action logged once per message; the text output
    counts them and lists only the first 20 ids; --json lists every one."""
    d = env.d
    n = 2500
    c = d.session()
    qids = []
    try:
        for _ in range(n):
            s, rcpt = sender(), f"{unique('mass')}@{C_MASS}"
            qids.append(c.send_message(s, [rcpt], make_message(mid_of("mass"), sender=s, to=rcpt)))
        c.cmd("QUIT")
    finally:
        c.close()
    wait_until(lambda: len(listed(d, "--domain", C_MASS)) == n or None, 30, f"{n} messages for {C_MASS} queued")

    out = ok(d, "queue", "hold", "--domain", C_MASS).strip()
    assert out.startswith(f"hold: {n} messages ") and out.endswith(f" and {n - 20} more (--json lists them all)"), out
    shown = re.findall(r"\b[0-9A-F]{16}\b", out)
    assert len(shown) == 20 and set(shown) <= set(qids), out
    held = listed(d, "--domain", C_MASS, "--state", "held")
    assert set(held) == set(qids), f"{len(set(qids) - set(held))} of {n} not held"

    released = ok_json(d, "queue", "release", "--domain", C_MASS, key="messages")
    assert sorted(m["queue_id"] for m in released) == sorted(qids)
    assert not listed(d, "--domain", C_MASS, "--state", "held")

    deleted = ok_json(d, "queue", "delete", "--domain", C_MASS, key="messages")
    assert sorted(m["queue_id"] for m in deleted) == sorted(qids)
    assert listed(d, "--domain", C_MASS) == {}
    wanted = set(qids)
    for kind in ("hold", "release", "delete"):
        def logged():
            return sorted(e["queue_id"] for e in d.events(kind) if e.get("queue_id") in wanted)
        # the log file is written a moment after the reply
        wait_until(lambda: len(logged()) >= n or None, 10, f"{n} {kind} events in {d.log_path}")
        assert logged() == sorted(qids), f"{kind}: {len(logged())} events for {n} messages"


def test_queue_bounce_by_ids_and_domain(env):
    d = env.d
    a = deferred(env, C_BOUNCE, n_rcpts=2, prefix="bounce-a")
    c = deferred(env, C_BOUNCE_DOM, prefix="bounce-dom")
    out = ok(d, "queue", "bounce", a.qid)
    assert a.qid in out, out
    out = ok(d, "queue", "bounce", "--domain", C_BOUNCE_DOM)
    assert c.qid in out, out
    for m in (a, c):
        received, dsn = wait_dsn(env.senders, m.sender, m.mid, timeout=15)
        assert received.mail_from == "" and received.rcpt_tos == [m.sender]
        got = sorted((x.get("final-recipient", "").split(";", 1)[-1].strip().strip("<>").lower(), x.get("status"))
                     for x in dsn.recipients)
        assert got == sorted((r.lower(), "5.0.0") for r in m.rcpts), got
    d.wait_gone([a.qid, c.qid])
    evs = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(logged_by_ctl(d, a, "bounce")), 5,
                     "a bounce event per recipient")
    assert sorted(strip_angle(e.get("recipient")) for e in evs) == sorted(a.rcpts), evs
    assert all(e.get("enhanced_code") == "5.0.0" for e in evs), evs
    assert [e.get("enhanced_code") for e in logged_by_ctl(d, c, "bounce")] == ["5.0.0"]


def test_queue_control_needs_one_selector(env):
    d = env.d
    for args in (("queue", "hold"), ("queue", "release"), ("queue", "delete"), ("queue", "bounce"),
                 ("queue", "flush"), ("queue", "hold", "--all"),
                 ("queue", "flush", "--all", "--domain", C_FLUSH1)):
        p = run(d, *args)
        assert p.returncode == 2, f"edgerelayctl {' '.join(args)}: exit {p.returncode}, {p.stderr}"


# ---------------------------------------------------------------------------- log

def test_log_shows_the_operator_actions(env):
    d, ops = env.d, env.ops
    m = deferred(env, C_LOG, prefix="log")
    ok(d, "queue", "hold", m.qid)
    ok(d, "queue", "release", m.qid)  # tried at once, still 451: deferred again
    wait_until(lambda: len(d.events("defer", queue_id=m.qid)) >= 2, 10, "the retry after the release",
               detail=d.log_tail)
    d.wait_deferred(m.qid)
    accept(ops, m)
    ok(d, "queue", "flush", m.qid)
    ops.wait_message(m.mid, timeout=10)
    d.wait_event("deliver", queue_id=m.qid)

    def complete():
        evs = ok_json(d, "log", "--message-id", m.mid, key="events")
        return evs if evs and evs[-1].get("event") == "deliver" else None
    evs = wait_until(complete, 5, "the whole story in the index")
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "receive" and kinds[-1] == "deliver", kinds
    for k in ("hold", "release", "flush"):
        assert k in kinds, f"no {k} event in `edgerelayctl log --message-id`: {kinds}"
    assert kinds.index("hold") < kinds.index("release") < kinds.index("flush") < kinds.index("deliver"), kinds
    assert evs == ok_json(d, "log", "--queue-id", m.qid, key="events")
    text = ok(d, "log", "--queue-id", m.qid)
    for k in ("receive", "hold", "release", "flush", "deliver"):
        assert re.search(rf"\b{m.qid} {k}\b", text), f"no {k} line in:\n{text}"


# ---------------------------------------------------------------------------- routes

def test_route_list_text_and_json(env):
    d = env.d
    routes = {r["domain"]: r for r in ok_json(d, "route", "list", key="routes")}
    assert set(routes) >= {ROUTE_DOMAIN, SENDER_DOMAIN, C_OVER, *C_OPS}, sorted(routes)
    r = routes[ROUTE_DOMAIN]
    assert (r["next_hop"], r["configured_next_hop"], r["override"], r["state"], r["held"], r["down"],
            r["soft_bounce"]) == (INBOUND, INBOUND, "", "active", False, False, False), r
    res = r["resolution"]
    assert res["outcome"] == "ok" and 0 < res["ttl_left"] <= TTL, res
    assert [(x["preference"], x["exchange"].rstrip(".")) for x in res["mx"]] == [(10, MX1)], res
    assert [(h["name"].rstrip("."), h["port"], h["addresses"]) for h in res["hosts"]] == \
        [(MX1, env.rig.port, ["127.0.0.2"])], res
    # The same as the API answers.
    api_routes = routes_api(d)
    for dom in (ROUTE_DOMAIN, C_OVER, C_LIST_A):
        a, b = dict(routes[dom]), dict(api_routes[dom])
        for x in (a, b):
            x.get("resolution", {}).pop("ttl_left", None)
        assert a == b, f"route list --json and GET /api/v1/routes differ for {dom}:\n{a}\n{b}"

    text = ok(d, "route", "list")
    line = next((l for l in text.splitlines() if ROUTE_DOMAIN in l and "example" in l), None)
    assert line is not None, text
    assert INBOUND in text and MX1 in text and "127.0.0.2" in text and "active" in text, text
    assert C_OVER in text and DEAD_HOP in text, text


def test_route_explain_text_and_json(env):
    d = env.d
    addr = f"ann@{ROUTE_DOMAIN}"
    (x,) = ok_json(d, "route", "explain", addr, key="routes")
    assert (x["address"], x["domain"], x["route"], x["next_hop"], x["held"]) == \
        (addr, ROUTE_DOMAIN, ROUTE_DOMAIN, INBOUND, False), x
    assert [(m["preference"], m["exchange"].rstrip(".")) for m in x["mx"]] == [(10, MX1)] and 0 < x["mx"][0]["ttl"] <= TTL
    assert (x["try_now"]["host"].rstrip("."), x["try_now"]["address"], x["try_now"]["port"]) == \
        (MX1, "127.0.0.2", env.rig.port), x["try_now"]
    text = ok(d, "route", "explain", addr)
    for part in (ROUTE_DOMAIN, INBOUND, MX1, "127.0.0.2", str(env.rig.port)):
        assert part in text, f"route explain does not mention {part}:\n{text}"
    (y,) = ok_json(d, "route", "explain", f"bob@{C_OVER}", key="routes")
    assert (y["route"], y["next_hop"], y["try_now"]["address"]) == (C_OVER, DEAD_HOP, "127.0.0.6"), y
    p = run(d, "route", "explain")
    assert p.returncode == 2, (p.returncode, p.stderr)


def test_route_hold_and_release(env):
    d, ops = env.d, env.ops
    ok(d, "route", "hold", C_RHOLD)
    r = route_json(d, C_RHOLD)
    assert (r["held"], r["state"]) == (True, "held"), r
    assert "held" in next(l for l in ok(d, "route", "list").splitlines() if C_RHOLD in l)
    try:
        ms = [send(env, C_RHOLD, prefix=f"rhold{i}") for i in range(2)]
        not_delivered(ops, ms, d, "mail to a held route")
        for m in ms:
            assert not d.events("attempt", queue_id=m.qid), "a held route was tried"
        assert route_json(d, C_RHOLD)["queue_depth"] == 2
    finally:
        ok(d, "route", "release", C_RHOLD)
    r = route_json(d, C_RHOLD)
    assert (r["held"], r["state"]) == (False, "active"), r
    for m in ms:
        ops.wait_message(m.mid, timeout=10)
    d.wait_gone([m.qid for m in ms])
    assert d.wait_event("hold", route=C_RHOLD).get("operator") is True
    assert d.wait_event("release", route=C_RHOLD).get("operator") is True
    p = run(d, "route", "hold", "nosuch-route.example")
    assert p.returncode == 1 and "nosuch-route.example" in p.stderr, (p.returncode, p.stderr)
    route_events(d, C_RHOLD, "held", "released")


def test_route_set_and_reset(env):
    d, beta = env.d, env.beta
    queued = send(env, C_OVER, prefix="set-queued")
    d.wait_deferred(queued.qid)
    ok(d, "route", "set", C_OVER, BETA_HOP)
    beta.wait_message(queued.mid, timeout=8)  # at once, not after the 1h backoff
    d.wait_gone(queued.qid)
    r = route_json(d, C_OVER)
    assert (r["override"], r["next_hop"], r["configured_next_hop"], r["state"]) == \
        (BETA_HOP, BETA_HOP, DEAD_HOP, "overridden"), r
    line = next(l for l in ok(d, "route", "list").splitlines() if C_OVER in l)
    assert BETA_HOP in line, line
    assert route_events(d, C_OVER, "overridden")[0]["next_hop"] == BETA_HOP
    (x,) = ok_json(d, "route", "explain", f"bob@{C_OVER}", key="routes")
    assert x["override"] == BETA_HOP and x["try_now"]["address"] == BETA_IP, x

    ok(d, "route", "reset", C_OVER)
    r = route_json(d, C_OVER)
    assert (r["override"], r["next_hop"]) == ("", DEAD_HOP), r
    route_events(d, C_OVER, "reset")
    after = send(env, C_OVER, prefix="set-after")
    d.wait_deferred(after.qid)
    assert not beta.by_message_id(after.mid)
    ok(d, "queue", "delete", after.qid)

    p = run(d, "route", "set", C_OVER, "[127.0.0.3")
    assert p.returncode in (1, 2) and ("[127.0.0.3" in p.stderr or "next hop" in p.stderr.lower()
                                       or "next_hop" in p.stderr.lower()), (p.returncode, p.stderr)
    assert route_json(d, C_OVER)["override"] == ""
    p = run(d, "route", "set", C_OVER)
    assert p.returncode == 2, (p.returncode, p.stderr)


def test_route_soft_bounce_on_and_off(env):
    d, ops = env.d, env.ops
    ok(d, "route", "soft-bounce", C_SOFT, "on")
    try:
        assert route_json(d, C_SOFT)["soft_bounce"] is True
        m = send(env, C_SOFT, reject=True, prefix="soft")
        q = d.wait_deferred(m.qid)
        assert "550" in q["recipients"][0]["last_reply"], q
        assert any(a.lower() == m.rcpts[0].lower() and rep.startswith("550") for a, rep, _ in ops.rcpt_log)
        time.sleep(1.2)
        assert not d.events("bounce", queue_id=m.qid), "soft-bounce on, yet the 550 bounced"
    finally:
        ok(d, "route", "soft-bounce", C_SOFT, "off")
    assert route_json(d, C_SOFT)["soft_bounce"] is False
    ok(d, "queue", "flush", m.qid)
    e = d.wait_event("bounce", queue_id=m.qid, timeout=10)
    assert e.get("enhanced_code") == "5.1.1", e
    wait_dsn(env.senders, m.sender, m.mid)
    p = run(d, "route", "soft-bounce", C_SOFT, "maybe")
    assert p.returncode in (1, 2) and p.stderr.strip(), (p.returncode, p.stderr)
    assert route_json(d, C_SOFT)["soft_bounce"] is False
    route_events(d, C_SOFT, "soft-bounce-on", "soft-bounce-off")


# ---------------------------------------------------------------------------- the daemon stopped

S_D = "s-stopped.example"


def test_with_the_daemon_stopped_reads_work_and_changes_fail(request, env):
    d = env.rig.daemon(routes=[{"domain": ROUTE_DOMAIN, "next_hop": INBOUND}, {"domain": S_D, "next_hop": OPS_HOP}],
                       delivery=LONG_BACKOFF)
    request.node._edgerelay_daemons.append(d)
    m = deferred(env, S_D, prefix="stopped", d=d)
    s, mid = sender(), mid_of("stopped-ok")
    ok_qid = d.send(s, [f"bob@{ROUTE_DOMAIN}"], make_message(mid, sender=s))
    env.alpha.wait_message(mid)
    d.wait_event("deliver", queue_id=ok_qid)
    wait_until(lambda: any(e["event"] == "deliver" for e in ok_json(d, "log", "--queue-id", ok_qid, key="events")),
               5, "the delivery in the index")
    assert d.terminate() == 0

    # Read-only commands open the spool themselves.
    q = listed(d)
    assert q[m.qid]["state"] == "deferred", q
    assert set(listed(d, "--domain", S_D, "--state", "deferred")) == {m.qid}
    assert m.qid in ok(d, "queue", "list")
    assert f"<{m.mid}>" in ok(d, "queue", "show", m.qid)
    (shown,) = ok_json(d, "queue", "show", m.qid, key="messages")
    assert shown["queue_id"] == m.qid and DEFER in shown["recipients"][0]["last_reply"]
    rows = ok_json(d, "queue", "summary", key="domains")
    assert any(r.get("domain") == S_D for r in rows), rows
    assert S_D in ok(d, "queue", "summary")
    kinds = [e["event"] for e in ok_json(d, "log", "--message-id", m.mid, key="events")]
    assert kinds[:1] == ["receive"] and "defer" in kinds, kinds
    assert [e["event"] for e in ok_json(d, "log", "--queue-id", ok_qid, key="events")][-1] == "deliver"
    assert m.qid in ok(d, "log", "--queue-id", m.qid)
    routes = {r["domain"]: r for r in ok_json(d, "route", "list", key="routes")}
    r = routes[ROUTE_DOMAIN]
    assert r["down"] is False and r["resolution"]["outcome"] == "ok", r
    assert [h["addresses"] for h in r["resolution"]["hosts"]] == [["127.0.0.2"]], r
    assert routes[S_D]["queue_depth"] == 1, routes[S_D]
    assert ROUTE_DOMAIN in ok(d, "route", "list")
    (x,) = ok_json(d, "route", "explain", f"ann@{ROUTE_DOMAIN}", key="routes")
    assert x["try_now"]["address"] == "127.0.0.2", x
    assert MX1 in ok(d, "route", "explain", f"ann@{ROUTE_DOMAIN}")

    # Commands that change state need the daemon: exit 1, naming the admin address.
    where = f"127.0.0.1:{d.admin_port}"
    for args in (("queue", "flush", m.qid), ("queue", "flush", "--domain", S_D), ("queue", "flush", "--all"),
                 ("queue", "hold", m.qid), ("queue", "hold", "--domain", S_D), ("queue", "release", m.qid),
                 ("queue", "delete", m.qid), ("queue", "delete", "--domain", S_D), ("queue", "bounce", m.qid),
                 ("route", "hold", S_D), ("route", "release", S_D), ("route", "set", S_D, BETA_HOP),
                 ("route", "reset", S_D), ("route", "soft-bounce", S_D, "on")):
        p = run(d, *args)
        assert p.returncode == 1, f"edgerelayctl {' '.join(args)} with the daemon stopped: exit {p.returncode}\n" \
                                  f"{p.stdout}{p.stderr}"
        assert MUTATION_FAILS.search(p.stderr) and where in p.stderr, \
            f"edgerelayctl {' '.join(args)}: unclear message {p.stderr!r}"
    # ... and changed nothing.
    q = listed(d)
    assert m.qid in q and q[m.qid]["state"] == "deferred", q.get(m.qid)
    d.start()
    r = routes_api(d)[S_D]
    assert (r["held"], r["override"], r["soft_bounce"]) == (False, "", False), r
    assert show_api(d, m.qid)["state"] == "deferred"
    assert not [e for e in d.log_events() if e.get("operator")], "operator events without an operator action"
    assert d.terminate() == 0


# ---------------------------------------------------------------------------- the token

def test_ctl_sends_the_token_of_its_config(env, make_daemon, tmp_path):
    d = make_daemon(start=False)  # rockerduck.example -> [127.0.0.2]:2599, which refuses
    add_token(d, "ctl-s3cret")
    d.start()
    text = d.config_path.read_text()
    without = tmp_path / "no-token.toml"
    without.write_text(text.replace('\ntoken = "ctl-s3cret"', ""))
    assert "token =" not in without.read_text()
    wrong = tmp_path / "wrong-token.toml"
    wrong.write_text(text.replace('token = "ctl-s3cret"', 'token = "guess"'))

    c = d.session()
    mid = mid_of("ctl-token")
    qid = c.send_message("alice@example.org", [f"bob@{ROUTE_DOMAIN}"], make_message(mid))
    c.cmd("QUIT")
    c.close()
    wait_until(lambda: (d.queued(qid) or {}).get("state") == "deferred", 10, "the message deferred")

    for cfg in (without, wrong):
        for args in (("queue", "hold", qid), ("queue", "delete", qid), ("queue", "flush", "--all"),
                     ("route", "hold", ROUTE_DOMAIN), ("route", "set", ROUTE_DOMAIN, "[127.0.0.3]:25"),
                     ("route", "soft-bounce", ROUTE_DOMAIN, "on")):
            p = run(d, *args, config=cfg)
            assert p.returncode == 1, f"{cfg.name}: edgerelayctl {' '.join(args)}: exit {p.returncode} {p.stderr}"
            assert "401" in p.stderr or "token" in p.stderr.lower(), f"{cfg.name}: unclear message {p.stderr!r}"
        # Reads work whatever the token.
        assert qid in {m["queue_id"] for m in ok_json(d, "queue", "list", key="messages", config=cfg)}
        assert ROUTE_DOMAIN in {r["domain"] for r in ok_json(d, "route", "list", key="routes", config=cfg)}
    time.sleep(1.2)
    assert d.queued(qid)["state"] == "deferred", "a refused command changed the message"
    r = routes_api(d)[ROUTE_DOMAIN]
    assert (r["held"], r["override"], r["soft_bounce"]) == (False, "", False), r
    assert not [e for e in d.log_events() if e.get("operator")], "refused commands left operator events"

    ok(d, "queue", "hold", qid)  # the daemon's own config carries the token
    assert d.queued(qid)["state"] == "held"
    d.wait_log(lambda e: e.get("event") == "hold" and e.get("queue_id") == qid and e.get("operator") is True,
               what="the hold event")
    ok(d, "route", "hold", ROUTE_DOMAIN)
    assert routes_api(d)[ROUTE_DOMAIN]["held"] is True
    ok(d, "queue", "delete", qid)
    assert d.queued(qid) is None
    assert call(d.admin_port, "GET", "/healthz").status == 200
