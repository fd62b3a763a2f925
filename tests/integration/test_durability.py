"""Durability and load: a 250 means the message is in the spool (SPEC §4), even when the
daemon is SIGKILLed a moment later; and many sessions at once all get their 250."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from edgerelay_harness import (ROUTE_DOMAIN, SmtpConn, make_message, queue_id_of,
                               send_until_stopped, strip_angle, unique)

RCPT = f"bob@{ROUTE_DOMAIN}"


def crash_client(port: int, round_no: int, n: int, stop: threading.Event, acked: list, lock: threading.Lock):
    """Send messages until `stop`; record (queue_id, message_id) for every 250."""
    def message(seq: int):
        mid = f"crash-{round_no}-{n}-{seq}-{unique()}@client.test"
        body = (f"round {round_no} client {n} message {seq}\r\n" * random.randint(1, 60)).encode()
        return mid, make_message(mid, body=body)

    def record(queue_id: str, mid: str, _rcpts: list):
        with lock:
            acked.append((queue_id, mid))

    send_until_stopped(port, stop, record, helo=f"crash{n}.test", sender=f"crash{n}@example.org",
                       recipients=lambda: [RCPT], message=message)


@pytest.mark.crash
@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_message(make_daemon, capsys):
    seed = int(os.environ.get("EDGERELAY_CRASH_SEED", time.time()))
    rng = random.Random(seed)

    def say(text: str):
        with capsys.disabled():  # shown even when the test passes
            print(text, flush=True)

    say(f"\ncrash test: seed {seed} (EDGERELAY_CRASH_SEED repeats it)")
    d = make_daemon(server={"max_connections_per_ip": 1000})
    all_acked: dict[str, str] = {}
    started = time.monotonic()

    def check(when: str):
        listed = {m["queue_id"]: strip_angle(m.get("message_id")) for m in d.queue_list()}
        missing = [(q, mid) for q, mid in all_acked.items() if q not in listed]
        wrong = [(q, mid, listed[q]) for q, mid in all_acked.items() if q in listed and listed[q] != mid]
        assert not missing, f"{when}: {len(missing)} acknowledged messages missing from the spool, e.g. {missing[:5]}"
        assert not wrong, f"{when}: queue ids listed with another Message-ID, e.g. {wrong[:5]}"

    for round_no in range(5):
        if round_no:
            d.start()
            check(f"round {round_no}, after restart")
        stop, lock, acked = threading.Event(), threading.Lock(), []
        threads = [threading.Thread(target=crash_client, args=(d.port, round_no, n, stop, acked, lock), daemon=True)
                   for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.8, 3.0))
        d.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
            assert not t.is_alive(), "client thread hung after the daemon was killed"
        for q, mid in acked:
            assert q not in all_acked, f"queue id {q} acknowledged twice ({all_acked[q]} and {mid})"
            all_acked[q] = mid
        say(f"crash test: round {round_no + 1}: {len(acked)} messages acknowledged before SIGKILL")
        check(f"round {round_no + 1}, daemon killed (spool read directly)")
    d.start()
    check("after the last restart")
    say(f"crash test: {len(all_acked)} acknowledged in all, none missing ({time.monotonic() - started:.1f}s)")
    assert all_acked, "no message was acknowledged at all"


@pytest.mark.slow
def test_200_concurrent_sessions(make_daemon):
    d = make_daemon(server={"max_connections_per_ip": 1000})
    n = 200
    barrier = threading.Barrier(n, timeout=60)
    results: list = [None] * n
    mids = [unique("conc") + "@client.test" for _ in range(n)]

    def session(i: int):
        try:
            c = SmtpConn("127.0.0.1", d.port, timeout=60)
            try:
                r = c.read_reply()
                assert r.code == 220, f"banner {r}"
                barrier.wait()  # all 200 connected at once before anyone sends
                assert c.cmd(f"EHLO conc{i}.test").code == 250
                results[i] = queue_id_of(c.mail_rcpt_data(f"conc{i}@example.org", [RCPT], make_message(mids[i])))
                c.cmd("QUIT")
            finally:
                c.close()
        except Exception as e:  # reported below, per session
            results[i] = e

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    failures = [(i, r) for i, r in enumerate(results) if not isinstance(r, str)]
    assert not failures, f"{len(failures)} of {n} sessions failed, e.g. {failures[:5]}"
    assert len(set(results)) == n, "duplicate queue ids"
    listed = {m["queue_id"]: strip_angle(m.get("message_id")) for m in d.queue_list()}
    for i, q in enumerate(results):
        assert listed.get(q) == mids[i], f"{q} (Message-ID {mids[i]}) listed as {listed.get(q)!r}"
