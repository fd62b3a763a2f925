#!/usr/bin/python3
"""Accept latency over one SMTP session: end of data -> 250.

One connection per server, EHLO once, then for every message MAIL / RCPT / DATA (each
answered before the next, no pipelining), the message body, and then the final
"\r\n.\r\n" in its own write. The clock starts just before that final write and stops
when the complete reply has been read. TCP_NODELAY is set so the terminator leaves at
once. The first --warmup messages of each session are sent but not counted.

With several --target LABEL=PORT, one session is opened to each and they take turns
in blocks of --block messages (A, B, A, B, ...), so that on a shared, noisy machine
every server sees the same noise; the servers are never loaded at the same time.

Prints one JSON object {"targets": {LABEL: {count, p50_ms, p90_ms, p99_ms, max_ms,
mean_ms, msgs_per_s, accepted, errors, valid}}}; msgs_per_s is over the time spent on
that server's own messages. Standard library only.
"""

import argparse
import json
import socket
import sys
import time


class Session:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self):
        """Read one complete (possibly multi-line) reply; return (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection; so far: %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("latin-1")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), "\n".join(lines)

    def command(self, line):
        self.sock.sendall(line.encode("ascii") + b"\r\n")
        return self.reply()


def make_body(size, i, sender, rcpt):
    """A plain message of about `size` bytes (headers + body), dot-stuffing not needed."""
    headers = (
        f"From: <{sender}>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: latency probe {i}\r\n"
        f"Message-ID: <latency-{i}-{time.time_ns()}@bench.example>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "\r\n"
    ).encode("ascii")
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"
    body = bytearray(headers)
    while len(body) + len(line) <= size:
        body += line
    pad = size - len(body)
    if pad > 2:
        body += b"x" * (pad - 2) + b"\r\n"
    return bytes(body)


def percentile(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Target:
    def __init__(self, label, host, port, a):
        self.label, self.a = label, a
        self.s = Session(host, port, a.timeout)
        self.lat_ms, self.bad, self.accepted, self.sent, self.busy_s = [], [], 0, 0, 0.0
        code, text = self.s.reply()
        if code != 220:
            raise ConnectionError(f"{label}: banner: {text}")
        code, text = self.s.command("EHLO latency.bench.example")
        if code != 250:
            raise ConnectionError(f"{label}: EHLO: {text}")

    def send_one(self):
        a, i = self.a, self.sent
        self.sent += 1
        t_start = time.perf_counter()
        for cmd, want in ((f"MAIL FROM:<{a.sender}>", 250), (f"RCPT TO:<{a.rcpt}>", 250), ("DATA", 354)):
            code, text = self.s.command(cmd)
            if code != want:
                self.bad.append(f"{cmd.split(':')[0]}: {text}")
                self.s.command("RSET")
                break
        else:
            self.s.sock.sendall(make_body(a.size, i, a.sender, a.rcpt))
            t0 = time.perf_counter_ns()
            self.s.sock.sendall(b".\r\n")  # the body ends with CRLF, so this completes CRLF.CRLF
            code, text = self.s.reply()
            t1 = time.perf_counter_ns()
            if code == 250:
                self.accepted += 1
                if i >= a.warmup:
                    self.lat_ms.append((t1 - t0) / 1e6)
            else:
                self.bad.append("end of data: " + text)
        self.busy_s += time.perf_counter() - t_start

    def close(self):
        try:
            self.s.command("QUIT")
        except OSError:
            pass
        self.s.sock.close()

    def result(self):
        lat = sorted(self.lat_ms)
        return {
            "count": len(lat),
            "accepted": self.accepted,
            "p50_ms": percentile(lat, 50),
            "p90_ms": percentile(lat, 90),
            "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else None,
            "mean_ms": (sum(lat) / len(lat)) if lat else None,
            "msgs_per_s": self.accepted / self.busy_s if self.busy_s > 0 else None,
            "errors": self.bad[:10],
            "valid": not self.bad and len(lat) == self.a.count,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--target", action="append", required=True, metavar="LABEL=PORT",
                    help="a server to measure; repeat to interleave several")
    ap.add_argument("--count", type=int, default=2000, help="counted messages per server")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--block", type=int, default=100, help="messages per turn when interleaving")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--sender", default="sender@example.net")
    ap.add_argument("--rcpt", default="bench@rockerduck.example")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    targets = []
    out = {"targets": {}}
    try:
        for spec in a.target:
            label, _, port = spec.rpartition("=")
            targets.append(Target(label or port, a.host, int(port), a))
        total = a.warmup + a.count
        while any(t.sent < total for t in targets):
            for t in targets:
                for _ in range(min(a.block, total - t.sent)):
                    t.send_one()
                    if len(t.bad) > 10:
                        raise RuntimeError(f"{t.label}: too many errors")
    except (OSError, ConnectionError, RuntimeError) as e:
        out["error"] = str(e)
    for t in targets:
        t.close()
        out["targets"][t.label] = t.result()
        if "error" in out:
            out["targets"][t.label]["valid"] = False
    print(json.dumps(out))
    return 0 if "error" not in out and all(r["valid"] for r in out["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
