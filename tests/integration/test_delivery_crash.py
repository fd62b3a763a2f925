"""Crash safety of delivery (SPEC §4 Delivery): SIGKILL at random moments while mail
flows through to a live site; after the last restart every acknowledged message has been
received, and duplicates are limited to what was in flight at the kills."""

from __future__ import annotations

import collections
import os
import random
import threading
import time

import pytest

from delivery_rig import INBOUND, SENDER_DOMAIN, rig, wait_until  # noqa: F401 (rig is a fixture)
from edgerelay_harness import ROUTE_DOMAIN, make_message, send_until_stopped, unique

ROUNDS = 5
CONCURRENCY = 4
MX1 = f"mx1.{ROUTE_DOMAIN}"


def client(port: int, round_no: int, n: int, stop: threading.Event, acked: list, lock: threading.Lock,
           rng: random.Random):
    """Send until `stop`; record (queue_id, message_id, recipients) for every 250."""
    sender = f"crash{n}@{SENDER_DOMAIN}"

    def message(seq: int):
        mid = f"dcrash-{round_no}-{n}-{seq}-{unique()}@client.test"
        body = (f"round {round_no} client {n} message {seq}\r\n" * rng.randint(1, 80)).encode()
        return mid, make_message(mid, body=body, sender=sender)

    def record(queue_id: str, mid: str, rcpts: list):
        with lock:
            acked.append((queue_id, mid, rcpts))

    send_until_stopped(port, stop, record, helo=f"crash{n}.test", sender=sender,
                       recipients=lambda: [f"u{n}@{ROUTE_DOMAIN}"] + ([f"v{n}@{ROUTE_DOMAIN}"] if rng.random() < 0.3 else []),
                       message=message, pause=lambda: rng.uniform(0, 0.01))


@pytest.mark.crash
@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(rig, capsys):
    seed = int(os.environ.get("EDGERELAY_CRASH_SEED", time.time()))
    rng = random.Random(seed)

    def say(text: str):
        with capsys.disabled():
            print(text, flush=True)

    say(f"\ndelivery crash test: seed {seed} (EDGERELAY_CRASH_SEED repeats it)")
    rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=60)
    rig.dns.set_a(MX1, ["127.0.0.2"], ttl=60)
    site = rig.site("mx1", "127.0.0.2")
    d = rig.daemon(delivery={"retry_initial": "1s", "retry_max": "2s", "concurrency_per_destination": CONCURRENCY},
                   server={"max_connections_per_ip": 1000})
    acked_all: dict[str, tuple[str, list[str]]] = {}
    started = time.monotonic()
    for round_no in range(ROUNDS):
        if round_no:
            d.start()
        stop, lock, acked = threading.Event(), threading.Lock(), []
        threads = [threading.Thread(target=client, args=(d.port, round_no, n, stop, acked, lock,
                                                         random.Random(rng.random())), daemon=True)
                   for n in range(3)]
        for t in threads:
            t.start()
        before = len(site.messages())
        time.sleep(rng.uniform(1.0, 3.0))
        d.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
            assert not t.is_alive(), "client thread hung after the daemon was killed"
        for q, mid, rcpts in acked:
            assert q not in acked_all, f"queue id {q} acknowledged twice"
            acked_all[q] = (mid, rcpts)
        say(f"delivery crash test: round {round_no + 1}: {len(acked)} acknowledged, "
            f"{len(site.messages()) - before} transactions received by the site before SIGKILL")
    assert acked_all, "no message was acknowledged at all"

    d.start()
    want = {(mid, r) for mid, rcpts in acked_all.values() for r in rcpts}

    def got() -> collections.Counter:
        return collections.Counter((r.message_id, rc) for r in site.messages() for rc in r.rcpt_tos)

    def missing():
        g = got()
        return [w for w in want if not g[w]]
    wait_until(lambda: not missing(), 120, f"all {len(want)} acknowledged recipients received by the site",
               interval=0.5, detail=lambda: f"{len(missing())} missing, e.g. {missing()[:5]}\nlog:\n" + d.log_tail())
    d.wait_gone(set(acked_all), timeout=30)
    per_recipient = got()
    dup_rcpts = {k: c for k, c in per_recipient.items() if c > 1 and k in want}
    acked_mids = {mid for mid, _ in acked_all.values()}
    transactions = collections.Counter(r.message_id for r in site.messages())
    dups = {m: c for m, c in transactions.items() if c > 1 and m in acked_mids}
    extra = sum(c - 1 for c in dups.values())
    say(f"delivery crash test: {len(acked_all)} messages / {len(want)} recipients acknowledged, all received; "
        f"{extra} duplicate transactions ({len(dup_rcpts)} recipients received twice or more) "
        f"in {time.monotonic() - started:.1f}s")
    for (mid, rc), c in sorted(dup_rcpts.items()):
        say(f"  duplicate: <{mid}> to {rc} received {c} times")
    assert extra <= ROUNDS * CONCURRENCY, \
        f"{extra} duplicate deliveries after {ROUNDS} kills with concurrency {CONCURRENCY}: a recorded 2xx was sent again?"
