"""The story of SPEC §1, as the issue's acceptance test: Dallas is down, mail is accepted
and spooled; the records are switched to the LA pair; within the TTL the deferred queue
drains to LA (exactly once, over both equal-preference hosts) with no operator action;
new mail goes straight to LA; Dallas coming back gets nothing."""

from __future__ import annotations

import collections
import smtplib
import threading
import time

import pytest

from delivery_rig import INBOUND, SENDER_DOMAIN, rig, wait_until  # noqa: F401 (rig is a fixture)
from edgerelay_harness import QUEUE_ID_RE, ROUTE_DOMAIN, make_message, unique

TTL = 2
N = 300
THREADS = 6
DALLAS, LA1, LA2 = f"dallas.{ROUTE_DOMAIN}", f"la1.{ROUTE_DOMAIN}", f"la2.{ROUTE_DOMAIN}"
SENDER = f"story@{SENDER_DOMAIN}"


def send_batch(port: int, mids: list[str], threads: int = THREADS) -> dict[str, str]:
    """Send one message per Message-ID (smtplib, a few sessions in parallel); every one
    must get 250. Returns Message-ID -> queue id."""
    out: dict[str, str] = {}
    errors: list = []
    lock = threading.Lock()

    def worker(part: list[str]):
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="story.test", timeout=30) as s:
                code, resp = s.ehlo()
                assert code == 250, f"EHLO: {code} {resp!r}"
                for i, mid in enumerate(part):
                    rcpt = f"user{i % 10}@{ROUTE_DOMAIN}"
                    code, resp = s.mail(SENDER)
                    assert code == 250, f"MAIL: {code} {resp!r}"
                    code, resp = s.rcpt(rcpt)
                    assert code == 250, f"RCPT: {code} {resp!r}"
                    code, resp = s.data(make_message(mid, subject="story", sender=SENDER, to=rcpt))
                    line = f"{code} {resp.decode(errors='replace')}"
                    m = QUEUE_ID_RE.match(line)
                    assert m, f"end of data: {line}"
                    with lock:
                        out[mid] = m.group(1)
        except Exception as e:
            with lock:
                errors.append(e)

    parts = [mids[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=worker, args=(p,), daemon=True) for p in parts if p]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
        assert not t.is_alive(), "a client session hung"
    assert not errors, f"{len(errors)} client sessions failed, e.g. {errors[:3]}"
    assert len(out) == len(mids)
    return out


@pytest.mark.slow
def test_failover_dallas_to_la(rig, capsys):
    def say(text: str):
        with capsys.disabled():
            print(text, flush=True)

    dns = rig.dns
    dns.set_mx(INBOUND, [(10, DALLAS)], ttl=TTL)
    dns.set_a(DALLAS, ["127.0.0.2"], ttl=TTL)  # nothing listens there: Dallas is down
    dns.set_a(LA1, ["127.0.0.3"], ttl=TTL)
    dns.set_a(LA2, ["127.0.0.4"], ttl=TTL)
    d = rig.daemon(delivery={"retry_initial": "5m", "retry_max": "15m", "concurrency_per_destination": 20,
                             "connect_timeout": "1s"},
                   server={"max_connections_per_ip": 1000})
    t_start = time.monotonic()

    # 1. Dallas is down: everything is accepted and spooled, nothing bounces.
    mids = [f"{unique('story')}-{i}@client.test" for i in range(N)]
    queued = send_batch(d.port, mids)
    say(f"\nstory: {N} messages accepted in {time.monotonic() - t_start:.1f}s")
    qids = set(queued.values())

    def not_deferred():
        listed = {m["queue_id"]: m.get("state") for m in d.queue_list()}
        return {q: listed.get(q) for q in qids if listed.get(q) != "deferred"}
    wait_until(lambda: not not_deferred(), 30, f"all {N} messages queued in state deferred",
               interval=0.5, detail=lambda: f"{len(not_deferred())} not deferred, e.g. "
                                            f"{list(not_deferred().items())[:5]}\nlog:\n" + d.log_tail())
    assert not d.events("bounce") and not d.events("expire"), "mail bounced while Dallas was down"

    # 2+3. Operators switch the records to the LA pair; the queue drains there by itself.
    la1 = rig.site("la1", "127.0.0.3")
    la2 = rig.site("la2", "127.0.0.4")
    t_change = time.monotonic()
    dns.set_mx(INBOUND, [(10, LA1), (10, LA2)], ttl=TTL)

    def arrived() -> collections.Counter:
        return collections.Counter(r.message_id for r in la1.messages() + la2.messages())
    try:
        wait_until(lambda: all(arrived()[m] for m in mids), 45, f"all {N} messages at LA",
                   interval=0.2, detail=lambda: f"{sum(1 for m in mids if arrived()[m])} of {N} arrived")
    finally:
        times = [r.at for r in la1.messages() + la2.messages()]
        if times:
            say(f"story: drain after the record change (TTL {TTL}s): first delivery "
                f"{min(times) - t_change:.2f}s, last {max(times) - t_change:.2f}s; "
                f"la1 {len(la1.messages())}, la2 {len(la2.messages())}")
    last = max(r.at for r in la1.messages() + la2.messages()) - t_change
    assert last <= TTL + 6, f"the deferred queue took {last:.1f}s to reach LA after the record change " \
                            f"(TTL {TTL}s; expected within TTL + a few seconds)"
    counts = arrived()
    dups = {m: c for m, c in counts.items() if c > 1}
    assert not dups, f"{len(dups)} messages delivered more than once, e.g. {list(dups.items())[:5]}"
    n1 = sum(1 for r in la1.messages() if r.message_id in queued)
    n2 = sum(1 for r in la2.messages() if r.message_id in queued)
    assert min(n1, n2) >= N // 20, f"mail not spread over both equal-preference hosts: la1 {n1}, la2 {n2}"
    d.wait_gone(qids, timeout=15)
    ev = d.wait_event("route", route=ROUTE_DOMAIN, state="changed", timeout=5)
    hosts = str(ev.get("hosts"))
    assert ("127.0.0.3" in hosts or LA1 in hosts) and ("127.0.0.4" in hosts or LA2 in hosts), \
        f"route changed event does not name the LA hosts: {ev}"
    assert ev.get("next_hop") == INBOUND, ev

    # New mail goes straight to LA.
    new = [f"{unique('story-new')}@client.test" for _ in range(20)]
    t_new = time.monotonic()
    new_q = send_batch(d.port, new, threads=2)
    wait_until(lambda: all(arrived()[m] for m in new), 10, "the new mail at LA")
    say(f"story: 20 new messages at LA {time.monotonic() - t_new:.2f}s after sending")
    deferred_new = [e for e in d.events("defer") if e.get("queue_id") in set(new_q.values())]
    assert not deferred_new, f"new mail was deferred: {deferred_new[:3]}"

    # Dallas comes back while the records point at LA: it gets nothing.
    dallas = rig.site("dallas", "127.0.0.2")
    more = [f"{unique('story-more')}@client.test" for _ in range(20)]
    send_batch(d.port, more, threads=2)
    wait_until(lambda: all(arrived()[m] for m in more), 10, "the later mail at LA")
    time.sleep(TTL + 1.5)  # past another TTL: still nothing to Dallas
    assert not dallas.messages(), f"Dallas received {len(dallas.messages())} messages while the records point at LA"
    counts = arrived()
    dups = {m: c for m, c in counts.items() if c > 1}
    assert not dups, f"duplicates at LA: {list(dups.items())[:5]}"
    assert not d.queue_list(), "queue not empty at the end"
    say(f"story: whole test {time.monotonic() - t_start:.1f}s")
