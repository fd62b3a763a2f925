"""Delivery (SPEC §4 Routing, Delivery, Log): next hops resolved through the DNS rig,
mail delivered to aiosmtpd sites on 127.0.0.x, per-recipient outcomes, DSNs to the
sender's site, and the log events of attempts."""

from __future__ import annotations

import re
import time

import pytest

from delivery_rig import (INBOUND, check_failed_dsn, event_message_id, mid_of, rig,  # noqa: F401
                          sender, site_port, wait_dsn, wait_until)  # (rig is a fixture)
from edgerelay_harness import HOSTNAME, ROUTE_DOMAIN, make_message, strip_angle

RCPT = f"bob@{ROUTE_DOMAIN}"
RCPT2 = f"carol@{ROUTE_DOMAIN}"
MX1 = f"mx1.{ROUTE_DOMAIN}"
MX2 = f"mx2.{ROUTE_DOMAIN}"
NEVER = {"retry_initial": "5m", "retry_max": "15m"}  # a retry inside a test's time would be a failure


def one_mx(rig, ip: str = "127.0.0.2", ttl: int = 60):
    rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=ttl)
    rig.dns.set_a(MX1, [ip], ttl=ttl)


# ---------------------------------------------------------------------------- delivery

def test_delivery_via_mx_is_byte_identical_but_for_received(rig):
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2")
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of("plain")
    body = (b"First line.\r\n.a line that starts with a dot\r\n..two dots\r\n\r\n"
            b"trailing spaces   \r\n\ttab\r\n" + b"x" * 990 + b"\r\n" + b"last line\r\n")
    msg = make_message(mid, subject="plain delivery", body=body, sender=s, to=RCPT)
    qid = d.send(s, [RCPT], msg)
    got = site.wait_message(mid)
    assert got.mail_from == s
    assert got.rcpt_tos == [RCPT]
    assert got.content.endswith(msg), f"delivered content does not end with the original message:\n{got.content!r}"
    prefix = got.content[: len(got.content) - len(msg)]
    assert re.fullmatch(rb"Received:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", prefix), \
        f"the relay added more than one Received: header before the original: {prefix!r}"
    assert HOSTNAME.encode() in prefix, f"the Received: header does not name {HOSTNAME}: {prefix!r}"
    d.wait_gone(qid)
    e = d.wait_event("deliver", queue_id=qid)
    assert strip_angle(e.get("recipient")) == RCPT
    time.sleep(1.0)
    assert len(site.by_message_id(mid)) == 1, "delivered more than once"


def test_two_recipients_share_one_transaction(rig):
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2")
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of("two")
    qid = d.send(s, [RCPT, RCPT2], make_message(mid, sender=s))
    site.wait_message(mid)
    d.wait_gone(qid)
    time.sleep(1.0)
    got = site.by_message_id(mid)
    assert len(got) == 1, f"expected one transaction with both recipients, got {[(r.rcpt_tos) for r in got]}"
    assert sorted(got[0].rcpt_tos) == sorted([RCPT, RCPT2])


def test_451_at_rcpt_defers(rig):
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2", rcpt_replies={RCPT: "451 4.3.0 try later"})
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of("451")
    qid = d.send(s, [RCPT], make_message(mid, sender=s))
    m = d.wait_deferred(qid)
    assert m["state"] == "deferred"
    (r,) = m["recipients"]
    assert r["state"] == "deferred", f"recipient: {r}"
    assert isinstance(r["attempts"], int) and r["attempts"] >= 1, f"recipient attempts: {r}"
    assert "451 4.3.0 try later" in (r.get("last_reply") or ""), f"recipient last_reply: {r}"
    assert any(a == RCPT and rep.startswith("451") for a, rep, _ in site.rcpt_log), "the site was never asked"
    assert not site.messages(), "a deferred recipient's message reached the site"
    assert not d.events("bounce", queue_id=qid)


@pytest.mark.slow
def test_backoff_is_exponential_from_retry_initial(rig):
    """451 every time: retries after [3/4, 1] x 2 s, then x 4 s, then x 8 s."""
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2", rcpt_replies={RCPT: "451 4.3.0 try later"})
    d = rig.daemon(delivery={"retry_initial": "2s", "retry_max": "8s"})
    s, mid = sender(), mid_of("backoff")
    d.send(s, [RCPT], make_message(mid, sender=s))

    def asked():
        return [t for a, _, t in list(site.rcpt_log) if a == RCPT]
    times = wait_until(lambda: (lambda t: t if len(t) >= 4 else None)(asked()), 30,
                       "4 attempts (2 s + 4 s + 8 s of backoff)", detail=lambda: f"attempts so far: {asked()}")
    gaps = [b - a for a, b in zip(times, times[1:])][:3]
    print(f"backoff gaps: {[round(g, 2) for g in gaps]}")
    for g, base in zip(gaps, (2, 4, 8)):
        assert 0.75 * base - 0.3 <= g <= base + 1.2, f"retry gap {g:.2f}s outside [3/4, 1] x {base}s (+1.2s slack): {gaps}"


def test_550_and_250_in_one_message_bounce_one_with_dsn(rig):
    one_mx(rig)
    bad = f"nobody@{ROUTE_DOMAIN}"
    site = rig.site("mx1", "127.0.0.2", rcpt_replies={bad: "550 5.1.1 no such user"})
    senders = rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    s, mid, subject = sender(), mid_of("mixed"), "mixed outcome"
    qid = d.send(s, [RCPT, bad], make_message(mid, subject=subject, sender=s))
    got = site.wait_message(mid)
    assert got.rcpt_tos == [RCPT]
    received, dsn = wait_dsn(senders, s, mid)
    f = check_failed_dsn(received, dsn, s, mid, subject, bad, "5.1.1")
    assert "remote-mta" in f, f"no Remote-MTA: {f}"
    assert MX1 in f["remote-mta"] or "127.0.0.2" in f["remote-mta"], f"Remote-MTA: {f['remote-mta']}"
    diag = f.get("diagnostic-code", "")
    assert diag.lower().startswith("smtp;") and "550 5.1.1 no such user" in diag, f"Diagnostic-Code: {diag!r}"
    assert not any(x.get("final-recipient", "").lower().endswith(RCPT) for x in dsn.recipients), \
        f"the delivered recipient is in the DSN: {dsn.recipients}"
    d.wait_gone(qid)
    b = d.wait_event("bounce", queue_id=qid)
    assert strip_angle(b.get("recipient")) == bad and b.get("reply_code") == 550 and b.get("enhanced_code") == "5.1.1", b
    dlv = d.wait_event("deliver", queue_id=qid)
    assert strip_angle(dlv.get("recipient")) == RCPT
    d.wait_event("receive", sender="")  # the DSN went through the relay's own queue
    time.sleep(1.0)
    assert len(senders.messages()) == 1, "more than one DSN"


def test_null_sender_bounce_gets_no_dsn(rig):
    one_mx(rig)
    bad = f"nobody@{ROUTE_DOMAIN}"
    rig.site("mx1", "127.0.0.2", rcpt_replies={bad: "550 5.1.1 no such user"})
    senders = rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    mid = mid_of("null")
    qid = d.send("", [bad], make_message(mid, sender="mailer-daemon@elsewhere.example"))
    d.wait_event("bounce", queue_id=qid)
    d.wait_gone(qid)
    time.sleep(3.0)
    assert not senders.messages(), "something reached the sender's site"
    receives = d.events("receive", sender="")
    assert [e.get("queue_id") for e in receives] == [qid], f"the relay generated a message from <>: {receives}"
    assert not d.queue_list(), f"queue not empty: {d.queue_list()}"


def test_mx_preference_order(rig):
    rig.dns.set_mx(INBOUND, [(20, MX2), (10, MX1)], ttl=60)
    rig.dns.set_a(MX1, ["127.0.0.2"], ttl=60)
    rig.dns.set_a(MX2, ["127.0.0.3"], ttl=60)
    primary = rig.site("mx1", "127.0.0.2")
    backup = rig.site("mx2", "127.0.0.3")
    d = rig.daemon(delivery=NEVER)
    s = sender()
    first = [mid_of("pref-up") for _ in range(3)]
    for mid in first:
        d.send(s, [RCPT], make_message(mid, sender=s))
    for mid in first:
        primary.wait_message(mid)
    assert not backup.messages(), "the less preferred MX got mail while the preferred one was up"
    primary.stop()
    second = [mid_of("pref-down") for _ in range(3)]
    qids = [d.send(s, [RCPT], make_message(mid, sender=s)) for mid in second]
    for mid in second:
        backup.wait_message(mid)  # within this attempt: a retry would be minutes away
    d.wait_gone(qids)


def test_every_address_of_a_host_is_tried(rig):
    rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=60)
    rig.dns.set_a(MX1, ["127.0.0.6", "127.0.0.3"], ttl=60)  # nothing listens on 127.0.0.6
    site = rig.site("mx1", "127.0.0.3")
    d = rig.daemon(delivery=NEVER)
    s = sender()
    mids = [mid_of("addr") for _ in range(3)]
    qids = [d.send(s, [RCPT], make_message(mid, sender=s)) for mid in mids]
    for mid in mids:
        site.wait_message(mid)
    d.wait_gone(qids)
    for q in qids:
        e = d.wait_event("deliver", queue_id=q)
        assert e.get("ip") == "127.0.0.3", e
    assert not [e for e in d.events("defer") if e.get("queue_id") in qids], "deferred instead of trying the next address"


FWD = f"fwd.{ROUTE_DOMAIN}"
DECOY = f"decoy.{ROUTE_DOMAIN}"


@pytest.mark.parametrize("form", ["[host]:port", "[ip]:port", "host:port", "[host]"])
def test_next_hop_forms(rig, form):
    """fwd has A 127.0.0.3 and MX -> decoy (A 127.0.0.4). Sites listen on both addresses,
    on the delivery port and on another port; only the right one may get the mail."""
    port2 = site_port()
    rig.dns.set_a(FWD, ["127.0.0.3"], ttl=60)
    rig.dns.set_mx(FWD, [(10, DECOY)], ttl=60)
    rig.dns.set_a(DECOY, ["127.0.0.4"], ttl=60)
    sites = {(ip, p): rig.site(f"{ip}:{p}", ip, p) for ip in ("127.0.0.3", "127.0.0.4") for p in (rig.port, port2)}
    hop, expected = {
        "[host]:port": (f"[{FWD}]:{port2}", ("127.0.0.3", port2)),   # A only, that port
        "[ip]:port": (f"[127.0.0.4]:{port2}", ("127.0.0.4", port2)),  # literal
        "host:port": (f"{FWD}:{port2}", ("127.0.0.4", port2)),        # MX, every MX host on that port
        "[host]": (f"[{FWD}]", ("127.0.0.3", rig.port)),              # A only, [delivery] port
    }[form]
    d = rig.daemon(next_hop=hop, delivery=NEVER)
    s, mid = sender(), mid_of("form")
    qid = d.send(s, [RCPT], make_message(mid, sender=s))
    sites[expected].wait_message(mid)
    d.wait_gone(qid)
    wrong = [k for k, v in sites.items() if k != expected and v.messages()]
    assert not wrong, f"next hop {hop!r}: mail also/instead reached {wrong}"


# ---------------------------------------------------------------------------- DNS outcomes

def test_nxdomain_bounces_5_1_2(rig):
    senders = rig.dsn_site()
    d = rig.daemon(next_hop=f"gone.{ROUTE_DOMAIN}", delivery=NEVER)
    s, mid, subject = sender(), mid_of("nx"), "to nowhere"
    qid = d.send(s, [RCPT], make_message(mid, subject=subject, sender=s))
    b = d.wait_event("bounce", queue_id=qid)
    assert b.get("enhanced_code") == "5.1.2", f"bounce event: {b}"
    received, dsn = wait_dsn(senders, s, mid)
    check_failed_dsn(received, dsn, s, mid, subject, RCPT, "5.1.2")
    d.wait_gone(qid)


@pytest.mark.parametrize("failure", ["servfail", "timeout"])
def test_dns_temporary_failure_defers(rig, failure):
    """SERVFAIL, or no answer at all from the nameserver: deferred, never bounced."""
    if failure == "servfail":
        rig.dns.set_servfail(INBOUND)
    else:
        rig.dns.set_timeout(INBOUND)
    senders = rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of(failure)
    qid = d.send(s, [RCPT], make_message(mid, sender=s))
    m = d.wait_deferred(qid, timeout=15 if failure == "servfail" else 60)
    (r,) = m["recipients"]
    assert r["state"] == "deferred", r
    e = d.wait_event("defer", queue_id=qid)
    print(f"defer event ({failure}): {e}")
    assert e.get("reply_code") == 0, f"defer event of a DNS failure: {e}"
    assert str(e.get("enhanced_code", "")).startswith("4."), e
    time.sleep(1.0)
    assert not d.events("bounce", queue_id=qid) and not senders.messages()


def test_null_mx_bounces_5_1_10(rig):
    rig.dns.set_null_mx(INBOUND)
    senders = rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    s, mid, subject = sender(), mid_of("nullmx"), "null mx"
    qid = d.send(s, [RCPT], make_message(mid, subject=subject, sender=s))
    b = d.wait_event("bounce", queue_id=qid)
    assert b.get("enhanced_code") == "5.1.10", f"bounce event: {b}"
    received, dsn = wait_dsn(senders, s, mid)
    check_failed_dsn(received, dsn, s, mid, subject, RCPT, "5.1.10")
    d.wait_gone(qid)


def test_mx_pointing_at_ourselves_defers_with_a_log_event(rig):
    rig.dns.set_mx(INBOUND, [(10, HOSTNAME)], ttl=60)
    rig.dns.set_a(HOSTNAME, ["127.0.0.1"], ttl=60)
    senders = rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of("self")
    qid = d.send(s, [RCPT], make_message(mid, sender=s))
    d.wait_deferred(qid)
    e = d.wait_event("defer", queue_id=qid)
    print(f"defer event for an MX pointing at us: {e}")
    time.sleep(1.0)
    assert not d.events("bounce", queue_id=qid) and not senders.messages()
    receives = [x for x in d.events("receive") if x.get("queue_id") != qid]
    assert not receives, f"the relay delivered to itself (a loop): {receives}"


# ---------------------------------------------------------------------------- log

ATTEMPT_FIELDS = ("queue_id", "message_id", "recipient", "next_hop", "mx_host", "ip", "port", "tls", "reply_code",
                  "enhanced_code", "reply_text", "attempt", "delay")


def check_event(e: dict, qid: str, mid: str, rcpt: str, port: int):
    missing = [k for k in ATTEMPT_FIELDS if k not in e]
    assert not missing, f"{e.get('event')} event lacks {missing}: {e}"
    assert e["queue_id"] == qid and event_message_id(e) == mid, e
    assert strip_angle(e["recipient"]) == rcpt, e
    assert e["next_hop"] == INBOUND, e
    assert str(e["mx_host"]).rstrip(".") == MX1, e
    assert e["ip"] == "127.0.0.2", e
    assert int(e["port"]) == port, e
    assert isinstance(e["reply_code"], int) and not isinstance(e["reply_code"], bool), e
    assert isinstance(e["attempt"], int) and e["attempt"] == 1, e
    assert isinstance(e["delay"], (int, float)) and 0 <= e["delay"] < 60, e


def test_log_events_of_a_delivered_and_a_deferred_message(rig):
    one_mx(rig)
    later = f"later@{ROUTE_DOMAIN}"
    site = rig.site("mx1", "127.0.0.2", rcpt_replies={later: "451 4.3.0 try later"})
    d = rig.daemon(delivery=NEVER)
    s = sender()
    mid_ok, mid_later = mid_of("log-ok"), mid_of("log-later")
    q_ok = d.send(s, [RCPT], make_message(mid_ok, sender=s))
    q_later = d.send(s, [later], make_message(mid_later, sender=s))
    site.wait_message(mid_ok)
    dl = d.wait_event("deliver", queue_id=q_ok)
    df = d.wait_event("defer", queue_id=q_later)
    print(f"deliver: {dl}\ndefer: {df}")
    check_event(dl, q_ok, mid_ok, RCPT, rig.port)
    assert dl["reply_code"] == 250 and dl["enhanced_code"] == "2.0.0" and "Ok: delivered" in dl["reply_text"], dl
    check_event(df, q_later, mid_later, later, rig.port)
    assert df["reply_code"] == 451 and df["enhanced_code"] == "4.3.0" and "try later" in df["reply_text"], df
    for q, mid, rcpt in ((q_ok, mid_ok, RCPT), (q_later, mid_later, later)):
        attempts = d.events("attempt", queue_id=q)
        assert attempts, f"no attempt event for {q}"
        for a in attempts:
            missing = [k for k in ATTEMPT_FIELDS if k not in a]
            assert not missing, f"attempt event lacks {missing}: {a}"
            assert event_message_id(a) == mid and strip_angle(a["recipient"]) == rcpt, a
            assert a["next_hop"] == INBOUND and a["ip"] == "127.0.0.2" and int(a["port"]) == rig.port, a
            assert isinstance(a["attempt"], int) and isinstance(a["delay"], (int, float)), a
    assert not d.events("bounce"), d.events("bounce")


def test_kept_connection_closed_by_the_site_is_retried_fresh(rig):
    """A delivery session stays open for 2 s for the next message; a site that drops
    idle sessions sooner must not turn that into a deferral."""
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2", idle_timeout=0.5)
    d = rig.daemon(delivery=NEVER)
    s = sender()
    first, second = mid_of("kept1"), mid_of("kept2")
    q1 = d.send(s, [RCPT], make_message(first, sender=s))
    site.wait_message(first)
    d.wait_gone(q1)
    time.sleep(1.2)  # the relay still keeps the session; the site has closed it
    q2 = d.send(s, [RCPT], make_message(second, sender=s))
    site.wait_message(second)
    d.wait_gone(q2)
    assert not d.events("defer", queue_id=q2), f"the second message was deferred: {d.events('defer', queue_id=q2)}"
    assert len(site.by_message_id(second)) == 1


# ---------------------------------------------------------------------------- shutdown

def test_sigterm_ends_a_stalled_delivery_at_once_and_the_message_waits(rig):
    """A site that never answers the end of data would hold a delivery for RFC 5321's
    10 minutes; SIGTERM ends it at once, and the message is delivered after restart."""
    one_mx(rig)
    site = rig.site("mx1", "127.0.0.2", data_delay=600.0)
    d = rig.daemon(delivery=NEVER)
    s, mid = sender(), mid_of("stalled")
    qid = d.send(s, [RCPT], make_message(mid, sender=s))
    wait_until(lambda: any(a.lower() == RCPT.lower() for a, _, _ in site.rcpt_log), 15, "the site saw the RCPT")
    time.sleep(0.5)  # the data is on its way; the site sits on it
    started = time.monotonic()
    status = d.terminate(timeout=30)
    took = time.monotonic() - started
    assert status == 0, f"edgerelayd exited with {status}"
    assert took < 5, f"SIGTERM took {took:.1f}s: a stalled delivery held the shutdown"
    assert not d.events("deliver", queue_id=qid)

    site.data_delay = 0.0
    d.start()
    got = site.wait_message(mid, timeout=15)
    assert got.rcpt_tos == [RCPT]
    d.wait_gone(qid)
