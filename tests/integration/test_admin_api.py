"""The admin API (SPEC §4 Admin API, docs/admin-api.md) end to end over real HTTP: a
running edgerelayd, the DNS rig and aiosmtpd mailbox sites (delivery_rig), and every
call checked by what it does — what the sites receive, what the queue shows, what the
log says — not only by its status code.

One daemon serves the module (retry_initial 1h: nothing is retried by itself within a
test, so every delivery after a deferral is the effect of an API call). Each test uses
its own route domain(s), so the tests do not depend on their order. Restart and token
tests run their own daemons."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from dataclasses import dataclass

import pytest

from delivery_rig import (INBOUND, SENDER_DOMAIN, DeliveryDaemon, MailSite, Rig, mid_of, sender,
                          wait_dsn, wait_until)
from edgerelay_harness import ROUTE_DOMAIN, make_message, strip_angle, unique

MX1 = f"mx1.{ROUTE_DOMAIN}"
TTL = 30
OPS_IP, BETA_IP, DEAD_IP = "127.0.0.4", "127.0.0.3", "127.0.0.6"
OPS_HOP, BETA_HOP, DEAD_HOP = f"[{OPS_IP}]", f"[{BETA_IP}]", f"[{DEAD_IP}]"  # nothing listens on DEAD_IP

# One route domain per test (all -> the "ops" site, whose per-recipient replies tests set).
LIST_D = "qa-list.example"
METRICS_D = "qa-metrics.example"
HOLD_D = "qa-hold.example"
HOLD_DOM_D = "qa-holddom.example"
DELETE_D = "qa-delete.example"
BOUNCE_D = "qa-bounce.example"
BOUNCE_DOM_D = "qa-bouncedom.example"
FLUSH_D = "qa-flush.example"
FLUSH_DOM_D = "qa-flushdom.example"
LOG_D = "qa-log.example"
RHOLD_D = "qa-routehold.example"
SOFT_D = "qa-soft.example"
BADPARAM_D = "qa-badparam.example"
SHAPE_D = "qa-shape.example"
OPS_DOMAINS = [LIST_D, METRICS_D, HOLD_D, HOLD_DOM_D, DELETE_D, BOUNCE_D, BOUNCE_DOM_D, FLUSH_D, FLUSH_DOM_D,
               LOG_D, RHOLD_D, SOFT_D, BADPARAM_D, SHAPE_D]
OVER_D = "qa-override.example"  # -> DEAD_HOP; overridden to BETA_HOP
DOWN_D = "qa-down.example"      # -> DEAD_HOP
NO_ROUTE = "nosuch-route.example"
DEFER = "451 4.3.0 try later"
REJECT = "550 5.1.1 no such user"
NEGATIVE_WAIT = 1.5  # how long "nothing happens" is watched


# ---------------------------------------------------------------------------- HTTP

@dataclass
class Resp:
    status: int
    headers: dict
    text: str
    json: object

    def __str__(self):
        return f"HTTP {self.status} {self.text[:1500]!r}"


def call(port: int, method: str, path: str, body: str | bytes | None = None, token: str | None = None,
         authorization: str | None = None, timeout: float = 30.0) -> Resp:
    """One request to the admin API on 127.0.0.1:port; the body parsed when it is JSON."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    data = body.encode() if isinstance(body, str) else body
    if data is not None:
        headers["Content-Type"] = "text/plain"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text) if text.strip() else None
    except ValueError:
        doc = None
    return Resp(r.status, hdrs, text, doc)


def api(d, method: str, path: str, body=None, expect: int | None = 200, **kw) -> Resp:
    r = call(d.admin_port, method, path, body, **kw)
    if expect is not None:
        assert r.status == expect, f"{method} {path}: expected {expect}, got {r}"
        if expect != 204:
            assert isinstance(r.json, dict), f"{method} {path}: body is not a JSON object: {r}"
    return r


def check_error(r: Resp, status: int, what: str) -> None:
    assert r.status == status, f"{what}: expected {status}, got {r}"
    assert isinstance(r.json, dict) and isinstance(r.json.get("error"), str) and r.json["error"], \
        f"{what}: the error body must be {{\"error\": \"...\"}}, got {r}"
    assert r.headers.get("content-type", "").startswith("application/json"), \
        f"{what}: Content-Type {r.headers.get('content-type')!r}"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def queue_api(d, domain: str | None = None, state: str | None = None) -> list[dict]:
    params = {k: v for k, v in (("domain", domain), ("state", state)) if v is not None}
    path = "/api/v1/queue" + ("?" + urllib.parse.urlencode(params) if params else "")
    doc = api(d, "GET", path).json
    assert isinstance(doc.get("messages"), list), f"GET {path}: {doc}"
    return doc["messages"]


def show_api(d, qid: str) -> dict | None:
    r = call(d.admin_port, "GET", f"/api/v1/queue/{q(qid)}")
    if r.status == 404:
        return None
    assert r.status == 200 and isinstance(r.json, dict), f"GET /api/v1/queue/{qid}: {r}"
    msgs = r.json.get("messages")
    assert isinstance(msgs, list) and len(msgs) == 1 and msgs[0].get("queue_id") == qid, r
    return msgs[0]


def action(d, qid: str, verb: str, expect: int = 200) -> Resp:
    r = api(d, "POST", f"/api/v1/queue/{q(qid)}/{verb}", expect=expect)
    if expect == 200:
        assert r.json.get("action") == verb, f"{verb} {qid}: {r}"
        assert [m.get("queue_id") for m in r.json.get("messages", [])] == [qid], f"{verb} {qid}: {r}"
    return r


def domain_action(d, verb: str, domain: str | None) -> list[str]:
    path = f"/api/v1/queue/{verb}" + (f"?domain={q(domain)}" if domain is not None else "")
    r = api(d, "POST", path)
    assert r.json.get("action") == verb, f"POST {path}: {r}"
    msgs = r.json.get("messages")
    assert isinstance(msgs, list), f"POST {path}: {r}"
    return [m.get("queue_id") for m in msgs]


def routes_api(d) -> dict[str, dict]:
    doc = api(d, "GET", "/api/v1/routes").json
    routes = doc.get("routes")
    assert isinstance(routes, list), f"GET /api/v1/routes: {doc}"
    return {r["domain"]: r for r in routes}


def route_call(d, method: str, domain: str, tail: str, body=None, expect: int = 200) -> dict | Resp:
    r = api(d, method, f"/api/v1/routes/{q(domain)}/{tail}", body, expect=expect)
    if expect != 200:
        return r
    routes = r.json.get("routes")
    assert isinstance(routes, list) and len(routes) == 1 and routes[0].get("domain") == domain, \
        f"{method} {domain}/{tail}: {r}"
    return routes[0]


# ---------------------------------------------------------------------------- Prometheus text

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Metrics:
    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: list[tuple[str, dict, float]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = SAMPLE_RE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            labels = {}
            if m.group(2):
                pos = 0
                body = m.group(2)
                while pos < len(body):
                    lm = LABEL_RE.match(body, pos)
                    assert lm, f"bad labels in {line!r}"
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end()
            value = m.group(3)
            self.samples.append((m.group(1), labels, float("inf") if value == "+Inf" else float(value)))

    def get(self, name: str, **labels) -> float | None:
        for n, ls, v in self.samples:
            if n == name and ls == labels:
                return v
        return None

    def value(self, name: str, default: float = 0.0, **labels) -> float:
        v = self.get(name, **labels)
        return default if v is None else v

    def series(self, name: str) -> list[tuple[dict, float]]:
        return [(ls, v) for n, ls, v in self.samples if n == name]


def metrics(d) -> Metrics:
    r = call(d.admin_port, "GET", "/metrics")
    assert r.status == 200, f"GET /metrics: {r}"
    ct = r.headers.get("content-type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, f"/metrics Content-Type {ct!r}"
    return Metrics(r.text)


# ---------------------------------------------------------------------------- the module's daemon

@dataclass
class Env:
    rig: Rig
    d: DeliveryDaemon
    alpha: MailSite   # 127.0.0.2: rockerduck.example's MX host
    beta: MailSite    # 127.0.0.3: the standby site of the override test
    ops: MailSite     # 127.0.0.4: every qa-*.example route; replies per recipient
    senders: MailSite  # 127.0.0.5: DSNs


def routes_config() -> list[dict]:
    return ([{"domain": ROUTE_DOMAIN, "next_hop": INBOUND}]
            + [{"domain": dom, "next_hop": OPS_HOP} for dom in OPS_DOMAINS]
            + [{"domain": OVER_D, "next_hop": DEAD_HOP}, {"domain": DOWN_D, "next_hop": DEAD_HOP}])


LONG_BACKOFF = {"retry_initial": "1h", "retry_max": "2h"}


def module_env(request, tmp_path_factory, name: str, routes: list[dict]):
    """One module's rig: the DNS records, the sites and one daemon with these routes
    (a generator for a module-scoped fixture)."""
    rig = Rig(request, tmp_path_factory.mktemp(name))
    try:
        rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=TTL)
        rig.dns.set_a(MX1, ["127.0.0.2"], ttl=TTL)
        alpha = rig.site("alpha", "127.0.0.2")
        beta = rig.site("beta", BETA_IP)
        ops = rig.site("ops", OPS_IP)
        senders = rig.dsn_site()
        d = rig.daemon(routes=routes, delivery=LONG_BACKOFF)
        yield Env(rig, d, alpha, beta, ops, senders)
    finally:
        errors = rig.close()
    assert not errors, "; ".join(errors)


def attach_output(request, env):
    """The report of a failing test shows the module daemons' output and configs; a
    daemon that died in an earlier test is restarted on the same spool."""
    node = request.node
    node._edgerelay_daemons = getattr(node, "_edgerelay_daemons", []) + list(env.rig.daemons)
    if not env.d.running():
        env.d.start()  # died in an earlier test (reported there); same spool
    yield
    assert env.d.running(), f"edgerelayd died during this test:\n{env.d.output_tail()}"


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, binaries):
    yield from module_env(request, tmp_path_factory, "admin-api", routes_config())


@pytest.fixture(autouse=True)
def _attach_output(request, env):
    yield from attach_output(request, env)


@dataclass
class Msg:
    qid: str
    mid: str
    sender: str
    rcpts: list[str]
    subject: str


def send(env_or_d, domain: str, n_rcpts: int = 1, defer: bool = False, reject: bool = False,
         site: MailSite | None = None, prefix: str = "m", d=None) -> Msg:
    """One message to n fresh recipients in domain; defer/reject make the ops site answer
    451/550 to their RCPT."""
    e = env_or_d
    dd = d or e.d
    site = site or e.ops
    s, mid, subject = sender(), mid_of(prefix), f"subject {unique(prefix)}"
    rcpts = [f"{unique('u')}@{domain}" for _ in range(n_rcpts)]
    for r in rcpts:
        if defer:
            site.rcpt_replies[r.lower()] = DEFER
        elif reject:
            site.rcpt_replies[r.lower()] = REJECT
    qid = dd.send(s, rcpts, make_message(mid, subject=subject, sender=s, to=rcpts[0]))
    return Msg(qid, mid, s, rcpts, subject)


def accept(site: MailSite, m: Msg) -> None:
    for r in m.rcpts:
        site.rcpt_replies.pop(r.lower(), None)


def deferred(env, domain: str, n_rcpts: int = 1, prefix: str = "m", d=None) -> Msg:
    dd = d or env.d
    m = send(env, domain, n_rcpts, defer=True, prefix=prefix, d=dd)
    dd.wait_deferred(m.qid)
    return m


def operator_event(d, kind: str, m: Msg, timeout: float = 5.0) -> dict:
    e = d.wait_event(kind, queue_id=m.qid, timeout=timeout)
    assert e.get("operator") is True, f"{kind} event without operator: true: {e}"
    assert strip_angle(e.get("message_id")) == m.mid, f"{kind} event names another Message-ID: {e}"
    return e


def route_events(d, domain: str, *states: str) -> list[dict]:
    """The `route` log events of an operator's changes: one per state, each with
    route, state, next_hop and operator: true (docs/admin-api.md Route actions)."""
    out = []
    for state in states:
        ev = d.wait_event("route", route=domain, state=state)
        assert ev.get("operator") is True and ev.get("next_hop"), \
            f"the route event of an operator's change needs operator: true and next_hop: {ev}"
        out.append(ev)
    return out


def not_delivered(site: MailSite, m, d, what: str) -> None:
    """Watch for NEGATIVE_WAIT seconds that the message(s) do not reach the site."""
    time.sleep(NEGATIVE_WAIT)
    for x in (m if isinstance(m, (list, tuple)) else [m]):
        got = site.by_message_id(x.mid)
        assert not got, f"{what}: <{x.mid}> reached site {site.name}: {[r.rcpt_tos for r in got]}\nlog:\n" \
            + d.log_tail()


# ---------------------------------------------------------------------------- health, paths, methods

def test_healthz_is_200_ok(env):
    r = call(env.d.admin_port, "GET", "/healthz")
    assert r.status == 200, r
    assert r.json == {"status": "ok"}, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers


def test_unknown_path_is_404_and_wrong_method_is_405(env):
    d = env.d
    for path in ("/nope", "/api/v1", "/api/v1/queues", "/api/v2/queue", "/api/v1/routes/x/y/z/w"):
        check_error(call(d.admin_port, "GET", path), 404, f"GET {path}")
    m = deferred(env, LIST_D, prefix="method")
    for method, path in (("DELETE", "/healthz"), ("POST", "/healthz"), ("POST", "/metrics"),
                         ("PUT", "/api/v1/queue"), ("GET", f"/api/v1/queue/{m.qid}/hold"),
                         ("DELETE", f"/api/v1/queue/{m.qid}"), ("POST", "/api/v1/routes"),
                         ("GET", f"/api/v1/routes/{LIST_D}/hold"), ("POST", f"/api/v1/routes/{LIST_D}/next-hop")):
        check_error(call(d.admin_port, method, path), 405, f"{method} {path}")
    # None of these did anything to the message.
    shown = show_api(d, m.qid)
    assert shown is not None and shown["state"] == "deferred", shown
    assert not d.events("hold", queue_id=m.qid) and not d.events("delete", queue_id=m.qid)


def test_bad_parameters_are_400_and_change_nothing(env):
    d = env.d
    check_error(call(d.admin_port, "GET", "/api/v1/queue?state=bogus"), 400, "GET /api/v1/queue?state=bogus")
    check_error(call(d.admin_port, "POST", f"/api/v1/routes/{BADPARAM_D}/soft-bounce?on=maybe"), 400,
                "soft-bounce?on=maybe")
    check_error(call(d.admin_port, "POST", f"/api/v1/routes/{BADPARAM_D}/soft-bounce"), 400,
                "soft-bounce without on=")
    for bad in ("[127.0.0.3", "[127.0.0.3]:99999", "", "a b c"):
        check_error(call(d.admin_port, "PUT", f"/api/v1/routes/{BADPARAM_D}/next-hop", bad), 400,
                    f"PUT next-hop {bad!r}")
    r = routes_api(d)[BADPARAM_D]
    assert r["override"] == "" and r["next_hop"] == OPS_HOP and r["soft_bounce"] is False, r
    assert not d.events("route", route=BADPARAM_D), "a refused call logged a route change"


# ---------------------------------------------------------------------------- metrics

def test_metrics_count_received_delivered_deferred_and_latency(env):
    d = env.d
    before = metrics(d)
    ok_mid = mid_of("metrics-ok")
    s = sender()
    ok_qid = d.send(s, [f"{unique('u')}@{ROUTE_DOMAIN}"], make_message(ok_mid, sender=s))
    env.alpha.wait_message(ok_mid)
    d.wait_gone(ok_qid)
    late = deferred(env, METRICS_D, prefix="metrics-late")
    deliver = d.wait_event("deliver", queue_id=ok_qid)
    attempt = d.wait_event("attempt", queue_id=late.qid)
    assert deliver.get("next_hop") == INBOUND and attempt.get("next_hop") == OPS_HOP, (deliver, attempt)

    def settled():
        m = metrics(d)
        ok = (m.value("edgerelay_recipients_delivered_total", next_hop=INBOUND)
              > before.value("edgerelay_recipients_delivered_total", next_hop=INBOUND)
              and m.value("edgerelay_recipients_deferred_total", next_hop=OPS_HOP)
              > before.value("edgerelay_recipients_deferred_total", next_hop=OPS_HOP))
        return m if ok else None
    after = wait_until(settled, 5, "the delivered and deferred counters to move",
                       detail=lambda: metrics(d).text)

    for name, kind in (("edgerelay_messages_received_total", "counter"),
                       ("edgerelay_recipients_delivered_total", "counter"),
                       ("edgerelay_recipients_deferred_total", "counter"),
                       ("edgerelay_recipients_bounced_total", "counter"),
                       ("edgerelay_recipients_expired_total", "counter"),
                       ("edgerelay_smtp_rejects_total", "counter"),
                       ("edgerelay_delivery_latency_seconds", "histogram"),
                       ("edgerelay_queue_messages", "gauge"),
                       ("edgerelay_queue_oldest_message_age_seconds", "gauge"),
                       ("edgerelay_smtp_connections", "gauge"),
                       ("edgerelay_spool_bytes", "gauge"), ("edgerelay_spool_max_bytes", "gauge"),
                       ("edgerelay_spool_commits_total", "counter"), ("edgerelay_spool_writes_total", "counter"),
                       ("edgerelay_spool_commit_seconds_total", "counter"),
                       ("edgerelay_spool_headroom_bytes_total", "counter"),
                       ("edgerelay_spool_headroom_failures_total", "counter"),
                       ("edgerelay_spool_intake_wait_seconds", "histogram"),
                       ("edgerelay_route_down", "gauge"), ("edgerelay_route_held", "gauge")):
        assert after.types.get(name) == kind, f"# TYPE {name} {kind} missing (got {after.types.get(name)!r})"
    assert all(n.startswith("edgerelay_") for n, _, _ in after.samples), \
        sorted({n for n, _, _ in after.samples if not n.startswith("edgerelay_")})

    received = after.value("edgerelay_messages_received_total") - before.value("edgerelay_messages_received_total")
    assert received >= 2, f"edgerelay_messages_received_total grew by {received} after 2 messages"

    # The spool writer: every received message waited for a durable commit, and each
    # commit holds at least one write.
    def grew(name):
        return after.value(name) - before.value(name)
    waits = grew("edgerelay_spool_intake_wait_seconds_count")
    assert waits >= 2, f"edgerelay_spool_intake_wait_seconds_count grew by {waits} after 2 messages"
    assert 0 < grew("edgerelay_spool_intake_wait_seconds_sum") < waits * 5, "waits of a few ms each, not 0, not seconds"
    assert grew("edgerelay_spool_commits_total") >= 1
    assert after.value("edgerelay_spool_writes_total") >= after.value("edgerelay_spool_commits_total")
    assert grew("edgerelay_spool_commit_seconds_total") > 0
    # Room ahead of the spool: a new spool keeps a megabyte of zeros past the last page
    # in use, topped up after every batch; a batch of these few messages uses far less
    # than half of it, so data.mdb runs at least half a megabyte past the pages in use.
    room = 512 * 1024
    assert after.value("edgerelay_spool_headroom_bytes_total") >= room
    assert after.value("edgerelay_spool_headroom_failures_total") == 0
    file_size = (d.dir / "spool" / "data.mdb").stat().st_size
    assert file_size >= after.value("edgerelay_spool_bytes") + room, \
        f"data.mdb is {file_size} bytes, less than {room} past the {after.value('edgerelay_spool_bytes')} in use"
    waited = sorted(((float("inf") if ls["le"] == "+Inf" else float(ls["le"]), v)
                     for ls, v in after.series("edgerelay_spool_intake_wait_seconds_bucket")), key=lambda x: x[0])
    assert [v for _, v in waited] == sorted(v for _, v in waited), f"wait buckets are not cumulative: {waited}"
    assert waited[-1] == (float("inf"), after.value("edgerelay_spool_intake_wait_seconds_count")), waited
    assert after.value("edgerelay_recipients_delivered_total", next_hop=INBOUND) - \
        before.value("edgerelay_recipients_delivered_total", next_hop=INBOUND) == 1
    assert after.value("edgerelay_recipients_deferred_total", next_hop=OPS_HOP) - \
        before.value("edgerelay_recipients_deferred_total", next_hop=OPS_HOP) == 1
    assert after.get("edgerelay_recipients_deferred_total", next_hop=INBOUND) in (None, 0.0), \
        "a deferral counted against the wrong next hop"

    # The latency histogram of the next hop that delivered: cumulative buckets, +Inf = _count.
    buckets = sorted(((float("inf") if ls["le"] == "+Inf" else float(ls["le"]), v)
                      for ls, v in after.series("edgerelay_delivery_latency_seconds_bucket")
                      if ls.get("next_hop") == INBOUND), key=lambda x: x[0])
    assert len(buckets) >= 3, f"latency buckets for {INBOUND}: {buckets}\n{after.text}"
    assert buckets[-1][0] == float("inf"), f"no le=\"+Inf\" bucket: {buckets}"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"buckets are not cumulative: {buckets}"
    count = after.get("edgerelay_delivery_latency_seconds_count", next_hop=INBOUND)
    total = after.get("edgerelay_delivery_latency_seconds_sum", next_hop=INBOUND)
    assert count is not None and total is not None, "no _count/_sum for the next hop"
    assert counts[-1] == count, f"+Inf bucket {counts[-1]} != _count {count}"
    assert count - before.value("edgerelay_delivery_latency_seconds_count", next_hop=INBOUND) == 1
    assert 0 < total - before.value("edgerelay_delivery_latency_seconds_sum", next_hop=INBOUND) < 30, \
        "the latency of a delivery a moment after arrival"

    # Queue depth by domain and state.
    assert after.value("edgerelay_queue_messages", domain=METRICS_D, state="deferred") == 1, \
        [s for s in after.series("edgerelay_queue_messages") if s[0].get("domain") == METRICS_D]
    assert after.value("edgerelay_queue_messages", domain=METRICS_D, state="held") == 0
    for ls, v in after.series("edgerelay_queue_messages"):
        assert set(ls) == {"domain", "state"} and ls["state"] in ("ready", "deferred", "held"), ls
        want = len([m for m in queue_api(d, domain=ls["domain"], state=ls["state"])])
        assert v == want, f"edgerelay_queue_messages{ls} = {v}, the queue lists {want}"


def test_metrics_oldest_age_connections_spool_and_route_down(env):
    d = env.d
    deferred(env, METRICS_D, prefix="metrics-age")

    def oldest():
        m = metrics(d)
        v = m.get("edgerelay_queue_oldest_message_age_seconds")
        return m if v is not None and v >= 1 else None
    m = wait_until(oldest, 5, "an oldest message age of at least 1 s")
    ages = [x["age"] for x in queue_api(d)]
    assert ages, "the queue is empty"
    assert abs(m.value("edgerelay_queue_oldest_message_age_seconds") - max(ages)) <= 2, \
        f"oldest age {m.value('edgerelay_queue_oldest_message_age_seconds')} vs the queue's ages {sorted(ages)[-3:]}"

    spool_bytes, max_bytes = m.get("edgerelay_spool_bytes"), m.get("edgerelay_spool_max_bytes")
    assert spool_bytes is not None and spool_bytes > 0, spool_bytes
    assert max_bytes == 64 * 1024 ** 3, f"edgerelay_spool_max_bytes {max_bytes} (the default map size is 64GiB)"
    assert spool_bytes <= max_bytes

    # Open SMTP sessions.
    base = m.value("edgerelay_smtp_connections")
    sessions = [d.session() for _ in range(3)]
    try:
        wait_until(lambda: metrics(d).value("edgerelay_smtp_connections") >= base + 3, 5,
                   "edgerelay_smtp_connections to count 3 open sessions")
    finally:
        for c in sessions:
            try:
                c.cmd("QUIT")
            except Exception:
                pass
            c.close()
    wait_until(lambda: metrics(d).value("edgerelay_smtp_connections") == base, 5,
               "edgerelay_smtp_connections to fall back after the sessions closed",
               detail=lambda: str(metrics(d).get("edgerelay_smtp_connections")))

    # A route whose only host refuses is down; a healthy one is not.
    dm = send(env, DOWN_D, prefix="down")
    d.wait_deferred(dm.qid)

    def down():
        if metrics(d).get("edgerelay_route_down", route=DOWN_D) == 1:
            return True
        domain_action(d, "flush", DOWN_D)  # more failed attempts, in case one is not enough
        time.sleep(0.5)
        return False
    wait_until(down, 10, f"edgerelay_route_down{{route=\"{DOWN_D}\"}} 1",
               detail=lambda: str(metrics(d).series("edgerelay_route_down")))
    m = metrics(d)
    assert m.get("edgerelay_route_down", route=ROUTE_DOMAIN) == 0, m.series("edgerelay_route_down")
    assert m.get("edgerelay_route_held", route=DOWN_D) == 0, m.series("edgerelay_route_held")
    assert routes_api(d)[DOWN_D]["down"] is True
    assert routes_api(d)[DOWN_D]["state"] == "down"


# ---------------------------------------------------------------------------- queue: list, show, summary

def test_queue_list_show_summary_and_404(env):
    d = env.d
    a = deferred(env, LIST_D, prefix="list-a")
    b = deferred(env, LIST_D, n_rcpts=2, prefix="list-b")
    listed = queue_api(d, domain=LIST_D)
    ids = {m["queue_id"] for m in listed}
    assert {a.qid, b.qid} <= ids, f"?domain={LIST_D}: {ids}"
    assert all(any(r["address"].lower().endswith("@" + LIST_D) for r in m["recipients"]) for m in listed), listed
    assert a.qid not in {m["queue_id"] for m in queue_api(d, domain=METRICS_D)}
    assert a.qid in {m["queue_id"] for m in queue_api(d, state="deferred")}
    assert a.qid not in {m["queue_id"] for m in queue_api(d, state="held")}
    assert a.qid not in {m["queue_id"] for m in queue_api(d, domain=LIST_D, state="ready")}

    entry = next(m for m in listed if m["queue_id"] == b.qid)
    assert entry["message_id"].strip("<>") == b.mid and strip_angle(entry["sender"]) == b.sender
    assert entry["state"] == "deferred" and isinstance(entry["size"], int) and entry["size"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", entry["arrival"]), entry["arrival"]
    assert sorted(r["address"] for r in entry["recipients"]) == sorted(b.rcpts)
    for r in entry["recipients"]:
        assert r["state"] == "deferred" and r["attempts"] >= 1 and DEFER in r["last_reply"], r

    # The same objects as `edgerelayctl queue list --json` (but for the age, which ticks).
    def strip_age(ms):
        return {m["queue_id"]: {k: v for k, v in m.items() if k != "age"} for m in ms}
    p = d.ctl("queue", "list", "--domain", LIST_D, "--json")
    assert p.returncode == 0, p.stderr
    cli = strip_age(json.loads(p.stdout)["messages"])
    assert strip_age(queue_api(d, domain=LIST_D)) == cli, "GET /api/v1/queue differs from queue list --json"

    shown = show_api(d, a.qid)
    assert shown["message_id"].strip("<>") == a.mid
    assert f"Subject: {a.subject}" in shown["headers"], shown["headers"]
    assert f"Message-ID: <{a.mid}>" in shown["headers"]
    (r,) = shown["recipients"]
    assert r["address"] == a.rcpts[0] and r["state"] == "deferred" and DEFER in r["last_reply"], r
    cli_show = d.queue_show(a.qid)
    assert {k: v for k, v in shown.items() if k != "age"} == {k: v for k, v in cli_show.items() if k != "age"}

    for path in ("/api/v1/queue/0000000000000000", "/api/v1/queue/NOSUCHID"):
        check_error(call(d.admin_port, "GET", path), 404, f"GET {path}")
    for verb in ("flush", "hold", "release", "delete", "bounce"):
        check_error(call(d.admin_port, "POST", f"/api/v1/queue/0000000000000000/{verb}"), 404, f"{verb} unknown id")

    # Summary: counts by destination domain (assumption: each entry is
    # {"domain": D, "total": N, ...age buckets...}).
    doc = api(d, "GET", "/api/v1/queue/summary").json
    assert isinstance(doc.get("domains"), list), doc
    entry = next((x for x in doc["domains"] if x.get("domain") == LIST_D), None)
    assert entry is not None, f"no summary row for {LIST_D}: {doc}"
    assert entry.get("total") == len(queue_api(d, domain=LIST_D)), f"summary row {entry}"


# ---------------------------------------------------------------------------- queue actions

def test_hold_by_id_keeps_mail_from_an_up_site_and_release_delivers(env):
    d, ops = env.d, env.ops
    m = deferred(env, HOLD_D, prefix="hold")
    action(d, m.qid, "hold")
    assert show_api(d, m.qid)["state"] == "held"
    assert m.qid in {x["queue_id"] for x in queue_api(d, state="held")}
    operator_event(d, "hold", m)
    wait_until(lambda: metrics(d).value("edgerelay_queue_messages", domain=HOLD_D, state="held") == 1, 5,
               "edgerelay_queue_messages{state=held} 1")

    attempts = len(d.events("attempt", queue_id=m.qid))
    accept(ops, m)  # the site would take it now; a flush must not move a held message
    action_r = call(d.admin_port, "POST", f"/api/v1/queue/{m.qid}/flush")
    assert action_r.status == 200, f"flush of a held message: {action_r}"
    domain_action(d, "flush", HOLD_D)
    not_delivered(ops, m, d, "held message flushed")
    assert show_api(d, m.qid)["state"] == "held", "flush released a held message"
    assert len(d.events("attempt", queue_id=m.qid)) == attempts, "a held message was attempted"

    action(d, m.qid, "release")
    got = ops.wait_message(m.mid, timeout=10)  # at once, not after the 1h backoff
    assert got.rcpt_tos == m.rcpts
    d.wait_gone(m.qid)
    operator_event(d, "release", m)
    assert show_api(d, m.qid) is None


def test_hold_and_release_by_domain(env):
    d, ops = env.d, env.ops
    ms = [deferred(env, HOLD_DOM_D, prefix=f"holddom{i}") for i in range(2)]
    touched = domain_action(d, "hold", HOLD_DOM_D)
    assert sorted(touched) == sorted(m.qid for m in ms), touched
    for m in ms:
        assert show_api(d, m.qid)["state"] == "held"
        operator_event(d, "hold", m)
        accept(ops, m)
    assert {x["queue_id"] for x in queue_api(d, domain=HOLD_DOM_D, state="held")} == {m.qid for m in ms}
    not_delivered(ops, ms, d, "held by domain")
    touched = domain_action(d, "release", HOLD_DOM_D)
    assert sorted(touched) == sorted(m.qid for m in ms), touched
    for m in ms:
        ops.wait_message(m.mid, timeout=10)
        operator_event(d, "release", m)
    d.wait_gone([m.qid for m in ms])
    assert domain_action(d, "release", HOLD_DOM_D) == [], "nothing left to release"


def test_delete_by_id_and_by_domain(env):
    d, ops = env.d, env.ops
    one = deferred(env, DELETE_D, prefix="del-one")
    action(d, one.qid, "delete")
    assert show_api(d, one.qid) is None
    assert one.qid not in {x["queue_id"] for x in queue_api(d)}
    operator_event(d, "delete", one)
    check_error(call(d.admin_port, "POST", f"/api/v1/queue/{one.qid}/delete"), 404, "delete twice")

    two = [deferred(env, DELETE_D, prefix=f"del-dom{i}") for i in range(2)]
    touched = domain_action(d, "delete", DELETE_D)
    assert sorted(touched) == sorted(m.qid for m in two), touched
    assert queue_api(d, domain=DELETE_D) == []
    for m in two:
        operator_event(d, "delete", m)
    # Gone for good: the site now accepts, a flush finds nothing, nothing arrives, no DSN.
    for m in [one] + two:
        accept(ops, m)
    domain_action(d, "flush", DELETE_D)
    not_delivered(ops, [one] + two, d, "deleted message")
    for m in [one] + two:
        assert not [r for r in env.senders.messages() if m.mid.encode() in r.content], "a deleted message got a DSN"


def test_bounce_by_id_sends_a_dsn_and_logs_each_recipient(env):
    d = env.d
    m = deferred(env, BOUNCE_D, n_rcpts=2, prefix="bounce")
    action(d, m.qid, "bounce")
    received, dsn = wait_dsn(env.senders, m.sender, m.mid, timeout=15)
    assert received.mail_from == "" and received.rcpt_tos == [m.sender]
    assert f"Subject: {m.subject}" in (dsn.returned_headers or "")
    statuses = {}
    for x in dsn.recipients:
        addr = x.get("final-recipient", "").split(";", 1)[-1].strip().strip("<>").lower()
        statuses[addr] = (x.get("action", "").lower(), x.get("status"))
    assert statuses == {r.lower(): ("failed", "5.0.0") for r in m.rcpts}, statuses
    d.wait_gone(m.qid)
    d.wait_event("bounce", queue_id=m.qid)
    time.sleep(1.2)  # the log is flushed at least every second
    bounces = d.events("bounce", queue_id=m.qid)
    assert sorted(strip_angle(e.get("recipient")) for e in bounces) == sorted(m.rcpts), bounces
    for e in bounces:
        assert e.get("operator") is True and e.get("enhanced_code") == "5.0.0", e
    assert not d.events("deliver", queue_id=m.qid)
    for r in m.rcpts:
        env.ops.rcpt_replies.pop(r.lower(), None)


def test_bounce_by_domain(env):
    d = env.d
    ms = [deferred(env, BOUNCE_DOM_D, prefix=f"bouncedom{i}") for i in range(2)]
    touched = domain_action(d, "bounce", BOUNCE_DOM_D)
    assert sorted(touched) == sorted(m.qid for m in ms), touched
    for m in ms:
        received, dsn = wait_dsn(env.senders, m.sender, m.mid, timeout=15)
        assert [x.get("status") for x in dsn.recipients] == ["5.0.0"], dsn.recipients
        e = d.wait_event("bounce", queue_id=m.qid)
        assert e.get("operator") is True and e.get("enhanced_code") == "5.0.0", e
    d.wait_gone([m.qid for m in ms])
    assert queue_api(d, domain=BOUNCE_DOM_D) == []


def test_flush_by_id_delivers_despite_a_long_backoff(env):
    d, ops = env.d, env.ops
    m = deferred(env, FLUSH_D, prefix="flush")
    accept(ops, m)
    not_delivered(ops, m, d, "deferred for 1h, before any flush")
    t0 = time.monotonic()
    action(d, m.qid, "flush")
    got = ops.wait_message(m.mid, timeout=10)
    assert got.at - t0 < 5, f"delivered {got.at - t0:.1f}s after the flush"
    d.wait_gone(m.qid)
    operator_event(d, "flush", m)


def test_flush_by_domain_and_the_whole_queue(env):
    d, ops = env.d, env.ops
    a = deferred(env, FLUSH_DOM_D, prefix="flushdom")
    b = deferred(env, FLUSH_D, prefix="flushall")
    accept(ops, a)
    accept(ops, b)
    touched = domain_action(d, "flush", FLUSH_DOM_D)
    assert a.qid in touched and b.qid not in touched, touched
    ops.wait_message(a.mid, timeout=10)
    not_delivered(ops, b, d, "a message of another domain after flush ?domain=")
    touched = domain_action(d, "flush", None)  # the whole queue
    assert b.qid in touched, touched
    ops.wait_message(b.mid, timeout=10)
    d.wait_gone([a.qid, b.qid])
    operator_event(d, "flush", a)
    operator_event(d, "flush", b)


# ---------------------------------------------------------------------------- log

def test_log_by_message_id_queue_id_sender_and_recipient(env):
    d, ops = env.d, env.ops
    m = deferred(env, LOG_D, prefix="log")
    accept(ops, m)
    action(d, m.qid, "flush")
    ops.wait_message(m.mid)
    d.wait_event("deliver", queue_id=m.qid)
    time.sleep(1.2)  # the JSON log is flushed within a second, the index within 0.1 s
    logged = [e for e in d.log_events() if e.get("queue_id") == m.qid]
    kinds = [e["event"] for e in logged]
    assert kinds[0] == "receive" and "defer" in kinds and "flush" in kinds and kinds[-1] == "deliver", kinds

    def events_of(doc):
        assert isinstance(doc, dict), doc
        # docs/admin-api.md: "{"messages":[…]} as edgerelayctl log --json", which prints
        # {"events":[…]}; either key is taken, the contents must be the events.
        lists = [v for k, v in doc.items() if k in ("events", "messages") and isinstance(v, list)]
        assert len(lists) == 1, f"the log answer holds no events/messages array: {doc}"
        return lists[0]

    cli = d.ctl("log", "--message-id", m.mid, "--json")
    assert cli.returncode == 0, cli.stderr
    cli_events = json.loads(cli.stdout)["events"]
    for query in (f"message_id={q(m.mid)}", f"message_id={q('<' + m.mid + '>')}", f"queue_id={m.qid}",
                  f"from={q(m.sender)}", f"to={q(m.rcpts[0])}", f"from={q(m.sender)}&to={q(m.rcpts[0])}",
                  f"message_id={q(m.mid)}&since=1h"):
        got = events_of(api(d, "GET", f"/api/v1/log?{query}").json)
        assert got == logged, f"GET /api/v1/log?{query}:\n{got}\nlogged:\n{logged}"
    assert events_of(api(d, "GET", f"/api/v1/log?message_id={q(m.mid)}").json) == cli_events
    assert events_of(api(d, "GET", "/api/v1/log?message_id=nobody%40nowhere.example").json) == []
    assert events_of(api(d, "GET", f"/api/v1/log?from={q(m.sender)}&to={q(m.rcpts[0] + 'x')}").json) == []
    check_error(call(d.admin_port, "GET", "/api/v1/log?since=last%20tuesday"), 400, "log ?since=last tuesday")


# ---------------------------------------------------------------------------- routes

ROUTE_KEYS = {"domain", "next_hop", "configured_next_hop", "override", "state", "held", "down", "soft_bounce",
              "queue_depth", "resolution"}


def check_route(r: dict, domain: str, next_hop: str, configured: str, override: str = "", state: str = "active",
                held: bool = False, soft_bounce: bool = False) -> None:
    """The fields that say what the route does (the full shape: test_route_actions_answer_route_objects)."""
    want = {"domain": domain, "next_hop": next_hop, "configured_next_hop": configured, "override": override,
            "state": state, "held": held, "soft_bounce": soft_bounce}
    got = {k: r.get(k) for k in want}
    assert got == want, f"route {domain}: {got}, expected {want}\n{r}"
    assert isinstance(r.get("down"), bool), r


def check_route_shape(r: dict, what: str) -> None:
    missing = ROUTE_KEYS - set(r)
    assert not missing, f"{what}: the route object lacks {sorted(missing)} (docs/admin-api.md Route objects): {r}"
    assert isinstance(r["queue_depth"], int) and isinstance(r["resolution"], dict), f"{what}: {r}"
    assert {"outcome", "ttl_left", "mx", "hosts", "error"} <= set(r["resolution"]), f"{what}: {r['resolution']}"


def test_routes_show_resolution_depth_and_state(env):
    d = env.d
    routes = routes_api(d)
    assert set(routes) >= {ROUTE_DOMAIN, SENDER_DOMAIN, OVER_D, *OPS_DOMAINS}, sorted(routes)
    r = routes[ROUTE_DOMAIN]
    check_route(r, ROUTE_DOMAIN, INBOUND, INBOUND)
    assert r["down"] is False
    res = r["resolution"]
    assert res["outcome"] == "ok" and res.get("error", "") == "", res
    assert 0 < res["ttl_left"] <= TTL, res
    assert [(x["preference"], x["exchange"].rstrip(".")) for x in res["mx"]] == [(10, MX1)], res
    (h,) = res["hosts"]
    assert (h["name"].rstrip("."), h["preference"], h["port"], h["addresses"]) == (MX1, 10, env.rig.port,
                                                                                   ["127.0.0.2"]), h

    # queue_depth counts the messages with recipients there not yet final.
    ms = [deferred(env, LIST_D, prefix=f"depth{i}") for i in range(2)]
    want = len(queue_api(d, domain=LIST_D))
    assert want >= 2
    assert routes_api(d)[LIST_D]["queue_depth"] == want

    assert routes_api(d)[LIST_D]["state"] == "active" and len(ms) == 2


def test_route_explain(env):
    d = env.d
    addr = f"ann@{ROUTE_DOMAIN}"
    doc = api(d, "GET", f"/api/v1/routes/{ROUTE_DOMAIN}/explain?address={q(addr)}").json
    (x,) = doc["routes"]
    assert (x["address"], x["domain"], x["route"], x["next_hop"], x["override"], x["held"], x["soft_bounce"],
            x["down"]) == (addr, ROUTE_DOMAIN, ROUTE_DOMAIN, INBOUND, "", False, False, False), x
    assert [(m["preference"], m["exchange"].rstrip(".")) for m in x["mx"]] == [(10, MX1)], x["mx"]
    assert 0 < x["mx"][0]["ttl"] <= TTL, x["mx"]
    (h,) = x["hosts"]
    assert h["name"].rstrip(".") == MX1 and h["port"] == env.rig.port, h
    assert [a["address"] for a in h["addresses"]] == ["127.0.0.2"] and 0 < h["addresses"][0]["ttl"] <= TTL, h
    assert x["try_now"]["host"].rstrip(".") == MX1, x["try_now"]
    assert (x["try_now"]["address"], x["try_now"]["port"]) == ("127.0.0.2", env.rig.port), x["try_now"]
    assert x.get("error", "") == "" and isinstance(x["verdict"], str) and x["verdict"], x

    # A held route says so.
    route_call(d, "POST", RHOLD_D, "hold")
    try:
        doc = api(d, "GET", f"/api/v1/routes/{RHOLD_D}/explain?address={q('x@' + RHOLD_D)}").json
        (x,) = doc["routes"]
        assert x["held"] is True and "held" in x["verdict"], x
        assert x["try_now"]["address"] == OPS_IP, x
    finally:
        route_call(d, "POST", RHOLD_D, "release")


def test_route_actions_answer_route_objects(env):
    """POST hold/release/soft-bounce, PUT and DELETE next-hop answer {"routes":[route]}
    with the same route objects as GET /api/v1/routes."""
    d = env.d
    for r in routes_api(d).values():
        check_route_shape(r, f"GET /api/v1/routes {r.get('domain')}")
    m = deferred(env, SHAPE_D, prefix="shape")
    try:
        for method, tail, body in (("POST", "hold", None), ("POST", "release", None),
                                   ("POST", "soft-bounce?on=true", None), ("POST", "soft-bounce?on=false", None),
                                   ("PUT", "next-hop", OPS_HOP), ("DELETE", "next-hop", None)):
            r = route_call(d, method, SHAPE_D, tail, body)
            check_route_shape(r, f"{method} {SHAPE_D}/{tail}")
            assert r["queue_depth"] == 1, f"{method} {SHAPE_D}/{tail}: queue_depth {r['queue_depth']}"
    finally:
        action(d, m.qid, "delete")


def test_route_hold_and_release(env):
    d, ops = env.d, env.ops
    r = route_call(d, "POST", RHOLD_D, "hold")
    check_route(r, RHOLD_D, OPS_HOP, OPS_HOP, state="held", held=True)
    wait_until(lambda: metrics(d).get("edgerelay_route_held", route=RHOLD_D) == 1, 5, "edgerelay_route_held 1")

    ms = [send(env, RHOLD_D, prefix=f"rhold{i}") for i in range(2)]
    not_delivered(ops, ms, d, "mail to a held route")
    for m in ms:
        assert not d.events("attempt", queue_id=m.qid), "a held route was tried"
        assert show_api(d, m.qid) is not None
    assert routes_api(d)[RHOLD_D]["queue_depth"] == 2
    domain_action(d, "flush", RHOLD_D)  # a flush does not override a held route
    not_delivered(ops, ms, d, "flushed mail to a held route")

    r = route_call(d, "POST", RHOLD_D, "release")
    check_route(r, RHOLD_D, OPS_HOP, OPS_HOP, state="active", held=False)
    for m in ms:
        ops.wait_message(m.mid, timeout=10)
    d.wait_gone([m.qid for m in ms])
    assert routes_api(d)[RHOLD_D]["queue_depth"] == 0
    assert metrics(d).get("edgerelay_route_held", route=RHOLD_D) == 0
    assert d.wait_event("hold", route=RHOLD_D).get("operator") is True
    assert d.wait_event("release", route=RHOLD_D).get("operator") is True
    route_events(d, RHOLD_D, "held", "released")


def test_next_hop_override_and_reset(env):
    d, beta = env.d, env.beta
    queued = send(env, OVER_D, prefix="over-queued")
    d.wait_deferred(queued.qid)
    r = route_call(d, "PUT", OVER_D, "next-hop", BETA_HOP)
    assert (r["override"], r["next_hop"], r["configured_next_hop"]) == (BETA_HOP, BETA_HOP, DEAD_HOP), r
    got = beta.wait_message(queued.mid, timeout=8)  # retried there at once, not after the 1h backoff
    assert got.rcpt_tos == queued.rcpts
    d.wait_gone(queued.qid)
    ev = route_events(d, OVER_D, "overridden")[0]
    assert ev.get("next_hop") == BETA_HOP, ev
    fresh = send(env, OVER_D, prefix="over-new")
    beta.wait_message(fresh.mid, timeout=8)
    check_route(routes_api(d)[OVER_D], OVER_D, BETA_HOP, DEAD_HOP, override=BETA_HOP, state="overridden")

    r = route_call(d, "DELETE", OVER_D, "next-hop")
    assert (r["override"], r["next_hop"], r["configured_next_hop"]) == ("", DEAD_HOP, DEAD_HOP), r
    assert r["state"] in ("active", "down"), r
    route_events(d, OVER_D, "reset")
    after = send(env, OVER_D, prefix="over-after")
    d.wait_deferred(after.qid)
    assert not beta.by_message_id(after.mid), "mail went to the override after the reset"

    # Errors: unparsable next hops and unknown routes; nothing changes.
    for bad in ("[127.0.0.3", "[127.0.0.3]:99999"):
        check_error(call(d.admin_port, "PUT", f"/api/v1/routes/{OVER_D}/next-hop", bad), 400, f"PUT {bad!r}")
    assert routes_api(d)[OVER_D]["override"] == ""
    for method, tail, body in (("PUT", "next-hop", BETA_HOP), ("DELETE", "next-hop", None), ("POST", "hold", None),
                               ("POST", "release", None), ("POST", "soft-bounce?on=true", None)):
        check_error(call(d.admin_port, method, f"/api/v1/routes/{NO_ROUTE}/{tail}", body), 404,
                    f"{method} {NO_ROUTE}/{tail}")
    assert NO_ROUTE not in routes_api(d)
    action(d, after.qid, "delete")


def test_soft_bounce_turns_5xx_into_deferral(env):
    d, ops = env.d, env.ops
    # Control: without soft-bounce a 550 bounces.
    hard = send(env, SOFT_D, reject=True, prefix="soft-off")
    e = d.wait_event("bounce", queue_id=hard.qid)
    assert e.get("enhanced_code") == "5.1.1", e
    wait_dsn(env.senders, hard.sender, hard.mid)

    r = route_call(d, "POST", SOFT_D, "soft-bounce?on=true")
    check_route(r, SOFT_D, OPS_HOP, OPS_HOP, soft_bounce=True)
    try:
        soft = send(env, SOFT_D, reject=True, prefix="soft-on")
        m = d.wait_deferred(soft.qid)
        (rc,) = m["recipients"]
        assert rc["state"] == "deferred" and "550" in rc["last_reply"], rc
        d.wait_event("defer", queue_id=soft.qid)
        assert any(a.lower() == soft.rcpts[0].lower() and rep.startswith("550") for a, rep, _ in ops.rcpt_log)
        time.sleep(1.2)
        assert not d.events("bounce", queue_id=soft.qid), "soft-bounce on, yet the 550 bounced"
    finally:
        r = route_call(d, "POST", SOFT_D, "soft-bounce?on=false")
    check_route(r, SOFT_D, OPS_HOP, OPS_HOP, soft_bounce=False)
    # Off again: the next try of the deferred message bounces it.
    action(d, soft.qid, "flush")
    e = d.wait_event("bounce", queue_id=soft.qid, timeout=10)
    assert e.get("enhanced_code") == "5.1.1", e
    wait_dsn(env.senders, soft.sender, soft.mid)
    d.wait_gone(soft.qid)
    route_events(d, SOFT_D, "soft-bounce-on", "soft-bounce-off")


# ---------------------------------------------------------------------------- persistence

P_HOLD, P_OVER, P_SOFT, P_MSG = "p-hold.example", "p-over.example", "p-soft.example", "p-msg.example"


def test_route_settings_and_held_messages_persist_across_restart(request, env):
    d = env.rig.daemon(routes=[{"domain": P_HOLD, "next_hop": OPS_HOP}, {"domain": P_OVER, "next_hop": DEAD_HOP},
                               {"domain": P_SOFT, "next_hop": OPS_HOP}, {"domain": P_MSG, "next_hop": OPS_HOP}],
                       delivery=LONG_BACKOFF)
    request.node._edgerelay_daemons.append(d)
    held_msg = deferred(env, P_MSG, prefix="p-held", d=d)
    action(d, held_msg.qid, "hold")
    route_call(d, "POST", P_HOLD, "hold")
    route_call(d, "PUT", P_OVER, "next-hop", BETA_HOP)
    route_call(d, "POST", P_SOFT, "soft-bounce?on=true")

    assert d.terminate() == 0
    d.start()

    routes = routes_api(d)
    check_route(routes[P_HOLD], P_HOLD, OPS_HOP, OPS_HOP, state="held", held=True)
    check_route(routes[P_OVER], P_OVER, BETA_HOP, DEAD_HOP, override=BETA_HOP, state="overridden")
    check_route(routes[P_SOFT], P_SOFT, OPS_HOP, OPS_HOP, soft_bounce=True)
    check_route(routes[P_MSG], P_MSG, OPS_HOP, OPS_HOP)
    assert show_api(d, held_msg.qid)["state"] == "held"

    # And they act: the override delivers, soft-bounce defers a 550, the held route waits,
    # the held message stays even though its site accepts it now.
    accept(env.ops, held_msg)
    over = send(env, P_OVER, prefix="p-over", d=d)
    env.beta.wait_message(over.mid, timeout=8)
    soft = send(env, P_SOFT, reject=True, prefix="p-soft", d=d)
    d.wait_deferred(soft.qid)
    waiting = send(env, P_HOLD, prefix="p-wait", d=d)
    not_delivered(env.ops, waiting, d, "mail to a route held before the restart")
    assert not d.events("attempt", queue_id=waiting.qid)
    assert not d.events("bounce", queue_id=soft.qid)
    assert not env.ops.by_message_id(held_msg.mid)
    assert show_api(d, held_msg.qid)["state"] == "held"

    # Undone, and that persists too.
    route_call(d, "POST", P_HOLD, "release")
    env.ops.wait_message(waiting.mid, timeout=10)
    route_call(d, "DELETE", P_OVER, "next-hop")
    route_call(d, "POST", P_SOFT, "soft-bounce?on=false")
    assert d.terminate() == 0
    d.start()
    routes = routes_api(d)
    check_route(routes[P_HOLD], P_HOLD, OPS_HOP, OPS_HOP)
    assert (routes[P_OVER]["override"], routes[P_OVER]["next_hop"]) == ("", DEAD_HOP)
    assert routes[P_SOFT]["soft_bounce"] is False
    assert d.terminate() == 0


# ---------------------------------------------------------------------------- token

TOKEN = "s3cret-token"


def add_token(d, token: str) -> None:
    text = d.config_path.read_text()
    listen = f'[admin]\nlisten = "127.0.0.1:{d.admin_port}"'
    assert listen in text, text
    d.config_path.write_text(text.replace(listen, listen + f"\ntoken = {json.dumps(token)}"))


def test_token_guards_every_mutating_call(env, make_daemon):
    d = make_daemon(start=False)  # route rockerduck.example -> [127.0.0.2]:2599, which refuses
    add_token(d, TOKEN)
    d.start()
    c = d.session()
    mid = mid_of("token")
    qid = c.send_message("alice@example.org", [f"bob@{ROUTE_DOMAIN}"], make_message(mid))
    c.cmd("QUIT")
    c.close()
    wait_until(lambda: (show_api(d, qid) or {}).get("state") == "deferred", 10, "the message deferred")

    mutating = [("POST", f"/api/v1/queue/{qid}/{v}", None) for v in ("hold", "release", "delete", "bounce", "flush")]
    mutating += [("POST", f"/api/v1/queue/{v}?domain={ROUTE_DOMAIN}", None)
                 for v in ("hold", "release", "delete", "bounce", "flush")]
    mutating += [("POST", "/api/v1/queue/flush", None),
                 ("POST", f"/api/v1/routes/{ROUTE_DOMAIN}/hold", None),
                 ("POST", f"/api/v1/routes/{ROUTE_DOMAIN}/release", None),
                 ("POST", f"/api/v1/routes/{ROUTE_DOMAIN}/soft-bounce?on=true", None),
                 ("PUT", f"/api/v1/routes/{ROUTE_DOMAIN}/next-hop", "[127.0.0.3]:25"),
                 ("DELETE", f"/api/v1/routes/{ROUTE_DOMAIN}/next-hop", None)]
    wrong = [None, f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"]
    for method, path, body in mutating:
        for auth in wrong:
            r = call(d.admin_port, method, path, body, authorization=auth)
            check_error(r, 401, f"{method} {path} with Authorization {auth!r}")
            assert "bearer" in r.headers.get("www-authenticate", "").lower(), \
                f"{method} {path}: WWW-Authenticate {r.headers.get('www-authenticate')!r}"

    # Nothing changed.
    time.sleep(1.2)  # the log is flushed at least every second
    m = show_api(d, qid)
    assert m is not None and m["state"] == "deferred", m
    r = routes_api(d)[ROUTE_DOMAIN]
    assert (r["held"], r["override"], r["soft_bounce"]) == (False, "", False), r
    operator = [e for e in d.log_events() if e.get("event") in ("hold", "release", "delete", "flush")
                or (e.get("event") in ("bounce", "route") and e.get("operator"))]
    assert not operator, f"refused calls left operator events: {operator}"

    # Reads need no token.
    for path in ("/healthz", "/api/v1/queue", f"/api/v1/queue/{qid}", "/api/v1/routes",
                 f"/api/v1/log?queue_id={qid}", f"/api/v1/routes/{ROUTE_DOMAIN}/explain?address=a%40{ROUTE_DOMAIN}"):
        assert call(d.admin_port, "GET", path).status == 200, path
    assert call(d.admin_port, "GET", "/metrics").status == 200

    # The right bearer works.
    r = call(d.admin_port, "POST", f"/api/v1/queue/{qid}/hold", token=TOKEN)
    assert r.status == 200 and r.json.get("action") == "hold", r
    assert show_api(d, qid)["state"] == "held"
    d.wait_log(lambda e: e.get("event") == "hold" and e.get("queue_id") == qid and e.get("operator") is True,
               what="the hold event")
    r = call(d.admin_port, "POST", f"/api/v1/routes/{ROUTE_DOMAIN}/hold", token=TOKEN)
    assert r.status == 200 and r.json["routes"][0]["held"] is True, r
    r = call(d.admin_port, "PUT", f"/api/v1/routes/{ROUTE_DOMAIN}/next-hop", "[127.0.0.3]:25", token=TOKEN)
    assert r.status == 200 and r.json["routes"][0]["override"] == "[127.0.0.3]:25", r
    r = call(d.admin_port, "DELETE", f"/api/v1/routes/{ROUTE_DOMAIN}/next-hop", token=TOKEN)
    assert r.status == 200 and r.json["routes"][0]["override"] == "", r
    r = call(d.admin_port, "POST", f"/api/v1/queue/{qid}/delete", token=TOKEN)
    assert r.status == 200 and show_api(d, qid) is None, r
