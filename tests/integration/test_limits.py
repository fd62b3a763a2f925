"""Limits that need a daemon of their own: connection counts, timeouts, and an orderly
shutdown on SIGTERM."""

from __future__ import annotations

import socket
import time

from edgerelay_harness import ROUTE_DOMAIN, expect, make_message, unique

RCPT = f"bob@{ROUTE_DOMAIN}"


def open_until_banner(daemon, source, attempts: int = 30):
    """A connection that got its 220: retried for a short while, because the server may
    count a just-closed connection a moment longer."""
    last = None
    for _ in range(attempts):
        c = daemon.connect(source=source, banner=False)
        r = c.read_reply()
        if r.code == 220:
            c.banner = r
            return c
        last = r
        c.close()
        time.sleep(0.1)
    raise AssertionError(f"no 220 banner from {source}: {last}")


def expect_refused_at_connect(daemon, source, enhanced="4.7.0", what=""):
    c = daemon.connect(source=source, banner=False)
    try:
        expect(c.read_reply(), 421, enhanced, what)
        rest = c.wait_closed(timeout=5)
        assert rest == b"", f"data after the 421: {rest!r}"
    finally:
        c.close()


def test_max_connections_per_ip(make_daemon):
    d = make_daemon(server={"max_connections_per_ip": 2, "max_connections": 100})
    time.sleep(0.3)  # the readiness probe's connection is gone
    held = [open_until_banner(d, "127.0.0.1"), open_until_banner(d, "127.0.0.1")]
    expect_refused_at_connect(d, "127.0.0.1", what="third connection from 127.0.0.1")
    # Other addresses are not affected.
    other = [d.connect(source="127.0.0.3"), d.connect(source="127.0.0.4")]
    for c in held + other:
        expect(c.cmd("NOOP"), 250, "2.0.0", "held connection still served")
    held.pop().close()
    c = open_until_banner(d, "127.0.0.1")  # a slot is free again
    expect(c.cmd("EHLO client.test"), 250)
    for c in held + other:
        c.close()


def test_max_connections(make_daemon):
    d = make_daemon(server={"max_connections": 3, "max_connections_per_ip": 100})
    time.sleep(0.3)
    held = [open_until_banner(d, f"127.0.0.{i}") for i in (1, 2, 3)]
    expect_refused_at_connect(d, "127.0.0.4", what="fourth connection (max_connections 3)")
    expect_refused_at_connect(d, "127.0.0.1", what="fourth connection (max_connections 3)")
    for c in held:
        expect(c.cmd("NOOP"), 250, "2.0.0")
    held.pop(0).close()
    c = open_until_banner(d, "127.0.0.7")
    expect(c.cmd("EHLO client.test"), 250)
    c.close()
    for c in held:
        c.close()


def test_command_timeout(make_daemon):
    d = make_daemon(server={"command_timeout": "1s"})
    # Activity keeps the session alive past the timeout.
    c = d.session()
    for _ in range(5):
        time.sleep(0.4)
        expect(c.cmd("NOOP"), 250, "2.0.0", "NOOP within the command timeout")
    # Idle after EHLO, and idle right after the banner.
    for c in (c, None):
        t0 = time.monotonic()
        c = c or d.connect()
        r = c.read_reply(timeout=6)
        elapsed = time.monotonic() - t0
        expect(r, 421, "4.4.2", "idle client")
        assert 0.8 <= elapsed <= 4, f"421 after {elapsed:.1f}s idle with command_timeout 1s"
        assert c.wait_closed(timeout=3) == b""
        c.close()


def test_command_timeout_in_the_middle_of_a_line(make_daemon):
    d = make_daemon(server={"command_timeout": "1s"})
    c = d.session()
    c.send(b"NOO")  # never finished
    expect(c.read_reply(timeout=6), 421, "4.4.2", "half a command, then silence")
    c.wait_closed(timeout=3)


def test_data_timeout(make_daemon):
    d = make_daemon(server={"command_timeout": "30s", "data_timeout": "1s"})
    c = d.session()
    # A prompt transfer is fine, and the timer does not carry over to the next one.
    c.send_message("prompt@example.org", [RCPT], make_message(unique() + "@c"))
    time.sleep(1.2)
    c.send_message("prompt@example.org", [RCPT], make_message(unique() + "@c"))
    sender = unique("slow") + "@example.org"
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    expect(c.cmd("DATA"), 354)
    t0 = time.monotonic()
    got = b""
    # Trickle a line every 0.2 s: never idle, but the whole transfer takes too long.
    for i in range(40):
        try:
            c.send(f"X-Slow-{i}: trickle\r\n".encode())
        except OSError:
            break
        got += c.pending(wait=0.2)
        if b"\r\n" in got:
            break
    elapsed = time.monotonic() - t0
    assert got.startswith(b"421 4.4.2"), f"expected 421 4.4.2 during a slow DATA, got {got!r} after {elapsed:.1f}s"
    assert elapsed <= 4, f"421 after {elapsed:.1f}s with data_timeout 1s"
    c.wait_closed(timeout=3)
    assert d.messages_from(sender) == []


def test_data_timeout_bdat(make_daemon):
    d = make_daemon(server={"command_timeout": "30s", "data_timeout": "1s"})
    c = d.session()
    expect(c.cmd("MAIL FROM:<slowbdat@example.org>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    c.send(b"BDAT 100000\r\n")
    got = b""
    t0 = time.monotonic()
    for _ in range(40):
        try:
            c.send(b"y" * 20)
        except OSError:
            break
        got += c.pending(wait=0.2)
        if b"\r\n" in got:
            break
    elapsed = time.monotonic() - t0
    assert got.startswith(b"421 4.4.2"), f"expected 421 4.4.2 during a slow BDAT, got {got!r} after {elapsed:.1f}s"
    c.wait_closed(timeout=3)


def test_sigterm_orderly_shutdown_keeps_the_queue(make_daemon):
    d = make_daemon()
    c = d.session()
    mid = unique("sigterm") + "@c.test"
    qid = c.send_message("a@example.org", [RCPT], make_message(mid))
    idle = d.connect()
    rc = d.terminate(timeout=10)
    assert rc == 0, f"edgerelayd exit status {rc} after SIGTERM"
    for conn in (c, idle):
        rest = conn.wait_closed(timeout=5)
        assert rest == b"" or rest.startswith(b"421 "), f"open session at shutdown got {rest!r}"
        conn.close()
    # Read-only commands work with the daemon stopped.
    m = d.queued(qid)
    assert m is not None, f"{qid} acknowledged before SIGTERM but not in the queue"
    # And the daemon comes back on the same spool.
    d.start()
    assert d.queued(qid) is not None
    with socket.create_connection(("127.0.0.1", d.port), timeout=5):
        pass


def test_spool_full(make_daemon):
    """A full spool answers 452 4.3.1, keeps every message it acknowledged, and the
    session (and the daemon) go on."""
    # [spool] max_size is the LMDB map size; 1MiB is the smallest allowed.
    d = make_daemon(server={"max_message_size": "200KiB"}, spool={"max_size": "1MiB"})
    c = d.session()
    acked = []
    body = (b"f" * 76 + b"\r\n") * 800  # about 62 KiB
    reply = None
    for i in range(60):
        expect(c.cmd(f"MAIL FROM:<full{i}@example.org>"), 250, "2.1.0")
        expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
        expect(c.cmd("DATA"), 354)
        c.send(make_message(unique("full") + "@c.test", body=body) + b".\r\n")
        reply = c.read_reply()
        if reply.code != 250:
            break
        acked.append(reply.line.rsplit(" ", 1)[1])
    expect(reply, 452, "4.3.1", f"after {len(acked)} messages of 62 KiB in a 1 MiB spool")
    assert acked, "not even one message fitted"
    expect(c.cmd("NOOP"), 250, "2.0.0", "session after 452 4.3.1")
    assert d.running()
    listed = {m["queue_id"] for m in d.queue_list()}
    missing = [q for q in acked if q not in listed]
    assert not missing, f"acknowledged before the spool filled up, now missing: {missing}"
