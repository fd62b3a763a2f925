#!/usr/bin/python3
"""Accept latency over one SMTP session: end of data -> 250.

One connection, EHLO once, then for every message MAIL / RCPT / DATA (each answered
before the next, no pipelining), the message body, and then the final "\\r\\n.\\r\\n"
in its own write. The clock starts just before that final write and stops when the
complete reply has been read. TCP_NODELAY is set so the terminator leaves at once.
The first --warmup messages are sent but not counted.

Prints one JSON object: count, p50/p90/p99/max/mean in milliseconds, msgs/s over the
whole session, and the replies that were not 250 (then "valid" is false).
Standard library only; the same script is used against Postfix and edgerelay.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--sender", default="sender@example.net")
    ap.add_argument("--rcpt", default="bench@rockerduck.example")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    s = Session(a.host, a.port, a.timeout)
    code, text = s.reply()
    if code != 220:
        print(json.dumps({"valid": False, "error": "banner: " + text}))
        return 1
    code, text = s.command("EHLO latency.bench.example")
    if code != 250:
        print(json.dumps({"valid": False, "error": "EHLO: " + text}))
        return 1

    lat_ms, bad, sent_ok = [], [], 0
    t_start = time.perf_counter()
    total = a.warmup + a.count
    for i in range(total):
        for cmd, want in ((f"MAIL FROM:<{a.sender}>", 250), (f"RCPT TO:<{a.rcpt}>", 250), ("DATA", 354)):
            code, text = s.command(cmd)
            if code != want:
                bad.append(f"{cmd.split(':')[0]}: {text}")
                break
        else:
            s.sock.sendall(make_body(a.size, i, a.sender, a.rcpt))
            t0 = time.perf_counter_ns()
            s.sock.sendall(b".\r\n")  # the body ends with CRLF, so this completes CRLF.CRLF
            code, text = s.reply()
            t1 = time.perf_counter_ns()
            if code == 250:
                sent_ok += 1
                if i >= a.warmup:
                    lat_ms.append((t1 - t0) / 1e6)
            else:
                bad.append("end of data: " + text)
            if len(bad) > 10:
                break
            continue
        # a command failed: reset the transaction and go on
        s.command("RSET")
        if len(bad) > 10:
            break
    elapsed = time.perf_counter() - t_start
    try:
        s.command("QUIT")
    except OSError:
        pass
    s.sock.close()

    lat_ms.sort()
    out = {
        "label": a.label,
        "count": len(lat_ms),
        "accepted": sent_ok,
        "p50_ms": percentile(lat_ms, 50),
        "p90_ms": percentile(lat_ms, 90),
        "p99_ms": percentile(lat_ms, 99),
        "max_ms": lat_ms[-1] if lat_ms else None,
        "mean_ms": (sum(lat_ms) / len(lat_ms)) if lat_ms else None,
        "msgs_per_s": sent_ok / elapsed if elapsed > 0 else None,
        "errors": bad[:10],
        "valid": not bad and len(lat_ms) == a.count,
    }
    print(json.dumps(out))
    return 0 if out["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
