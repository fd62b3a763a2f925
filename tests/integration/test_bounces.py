"""Mail that cannot be delivered for a while (SPEC §3 [delivery], §4 Deferred mail,
Delivery): expiry after max_lifetime with a DSN, one "delayed" DSN after delay_warning,
and a dead route that is probed instead of being knocked on by every queued message."""

from __future__ import annotations

import time

import pytest

from delivery_rig import (INBOUND, SENDER_DOMAIN, check_failed_dsn, dsn_recipient, mid_of, parse_dsn,  # noqa: F401
                          rig, sender, wait_dsn, wait_until)  # (rig is a fixture)
from edgerelay_harness import ROUTE_DOMAIN, make_message, unique

RCPT = f"bob@{ROUTE_DOMAIN}"
MX1 = f"mx1.{ROUTE_DOMAIN}"


def dead_mx(rig, ttl: int = 60):
    """inbound -> mx1 -> 127.0.0.2, where nothing listens."""
    rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=ttl)
    rig.dns.set_a(MX1, ["127.0.0.2"], ttl=ttl)


def dsns_about(site, mid: str, action: str) -> list:
    out = []
    for r in site.messages():
        if r.mail_from != "":
            continue
        d = parse_dsn(r.content)
        if d.returned_headers and mid in d.returned_headers and \
                any(x.get("action", "").lower() == action for x in d.recipients):
            out.append((r, d))
    return out


@pytest.mark.slow
def test_max_lifetime_expires_with_a_dsn(rig):
    dead_mx(rig)
    senders = rig.dsn_site()
    d = rig.daemon(delivery={"retry_initial": "1s", "retry_max": "2s", "max_lifetime": "3s"})
    s, mid, subject = sender(), mid_of("expire"), "never arrives"
    t0 = time.monotonic()
    qid = d.send(s, [RCPT], make_message(mid, subject=subject, sender=s))
    received, dsn = wait_dsn(senders, s, mid, timeout=25)
    took = time.monotonic() - t0
    print(f"expiry DSN {took:.1f}s after sending (max_lifetime 3s)")
    assert took >= 2.9, f"expired after {took:.1f}s, before max_lifetime (3s)"
    f = check_failed_dsn(received, dsn, s, mid, subject, RCPT, "4.4.7")
    assert f.get("action", "").lower() == "failed"
    e = d.wait_event("expire", queue_id=qid)
    print(f"expire event: {e}")
    d.wait_gone(qid)
    time.sleep(2.0)
    assert len(dsns_about(senders, mid, "failed")) == 1, "more than one expiry DSN"


@pytest.mark.slow
def test_delay_warning_sends_one_delayed_dsn(rig):
    dead_mx(rig)
    senders = rig.dsn_site()
    d = rig.daemon(delivery={"retry_initial": "1s", "retry_max": "2s", "max_lifetime": "1h", "delay_warning": "1s"})
    s, mid, subject = sender(), mid_of("delayed"), "waiting"
    qid = d.send(s, [RCPT], make_message(mid, subject=subject, sender=s))
    received, dsn = wait_dsn(senders, s, mid, timeout=20, kind="delayed")
    assert received.mail_from == "" and received.rcpt_tos == [s]
    assert dsn.content_type == "multipart/report" and dsn.report_type == "delivery-status", dsn.content_type
    f = dsn_recipient(dsn, RCPT)
    assert f.get("action", "").lower() == "delayed", f
    assert f.get("status", "").startswith("4."), f"Status of a delay: {f}"
    assert f"Subject: {subject}" in (dsn.returned_headers or "")
    time.sleep(7.0)  # several more retries (1 s, 2 s, 2 s ...): still exactly one warning
    assert len(dsns_about(senders, mid, "delayed")) == 1, \
        f"{len(dsns_about(senders, mid, 'delayed'))} delayed DSNs for one message"
    assert not dsns_about(senders, mid, "failed")
    m = d.queued(qid)
    assert m is not None and m.get("state") == "deferred", f"the message should still be queued, deferred: {m}"
    assert [r["state"] for r in m["recipients"]] == ["deferred"], m


@pytest.mark.slow
def test_dead_route_is_probed_not_hammered(rig, capsys):
    n, window = 60, 12.0
    dead_mx(rig, ttl=2)  # re-resolved every 2 s, unchanged: that is no reason to retry
    listener = rig.listener("127.0.0.2")  # accepts and closes: a site that gives no answer
    d = rig.daemon(delivery={"retry_initial": "2s", "retry_max": "4s", "concurrency_per_destination": 20})
    s = f"probe@{SENDER_DOMAIN}"
    mids = [f"{unique('probe')}@client.test" for _ in range(n)]
    c = d.session()
    try:
        qids = [c.send_message(s, [RCPT], make_message(mid, sender=s)) for mid in mids]
        c.cmd("QUIT")
    finally:
        c.close()

    def not_deferred():
        listed = {m["queue_id"]: m.get("state") for m in d.queue_list()}
        return [q for q in qids if listed.get(q) != "deferred"]
    wait_until(lambda: not not_deferred(), 30, f"all {n} messages deferred", interval=0.5,
               detail=lambda: f"not deferred: {not_deferred()[:5]}\nlog:\n" + d.log_tail())
    down = d.wait_event("route", route=ROUTE_DOMAIN, state="down", timeout=15)
    print(f"route down event: {down}")

    time.sleep(1.5)  # the log is flushed at least every second
    c0 = listener.count()
    a0 = len(d.events("attempt"))
    time.sleep(window)
    c1 = listener.count()
    time.sleep(1.5)
    a1 = len(d.events("attempt"))
    connects, attempts = c1 - c0, a1 - a0
    with capsys.disabled():
        print(f"\ndead route: {connects} connections and {attempts} attempt events in {window:.0f}s "
              f"with {n} deferred messages (retry_initial 2s, retry_max 4s; every message once per retry "
              f"would be >= {int(n * window / 4)})", flush=True)
    assert connects < n // 2, f"{connects} connections to the dead site in {window}s for {n} deferred messages"
    assert attempts < n // 2, f"{attempts} attempt events in {window}s for {n} deferred messages"

    # The site comes back, the records do not change: the probe finds it and the queue drains.
    listener.stop()
    site = rig.site("mx1", "127.0.0.2")
    t_back = time.monotonic()
    wait_until(lambda: all(site.by_message_id(m) for m in mids), 30, f"all {n} messages at the revived site",
               interval=0.2, detail=lambda: f"{sum(1 for m in mids if site.by_message_id(m))} of {n}\nlog:\n"
                                            + d.log_tail())
    last = max(r.at for r in site.messages()) - t_back
    with capsys.disabled():
        print(f"dead route: drained {n} messages {last:.2f}s after the site came back "
              f"(first delivery {min(r.at for r in site.messages()) - t_back:.2f}s)", flush=True)
    assert last <= 4 + 5, f"the revived site got the queue only after {last:.1f}s (retry_max 4s)"
    dups = [m for m in mids if len(site.by_message_id(m)) > 1]
    assert not dups, f"delivered twice: {dups[:5]}"
    d.wait_gone(qids)
    up = d.wait_event("route", route=ROUTE_DOMAIN, state="up", timeout=5)
    print(f"route up event: {up}")
