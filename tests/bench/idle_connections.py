#!/usr/bin/python3
"""Open many idle SMTP connections and measure the server's resident memory.

Each connection binds to one of --sources source addresses (127.0.0.1, 127.0.0.2, ...,
round robin, so a per-IP limit of count/sources is exercised realistically), reads the
220 banner, sends EHLO and reads the whole 250 reply, then stays open and silent.
When all are up (or have failed), it waits --hold seconds, reads VmRSS/VmHWM of --pid
(and with --tree the sum of RSS/PSS over the PID and its children, for Postfix), checks
how many connections the server still holds open, and closes them all.

Prints one JSON object. Standard library only (asyncio); raises RLIMIT_NOFILE itself.
"""

import argparse
import asyncio
import collections
import json
import os
import resource
import socket
import sys
import time


# /proc readings shared with the benchmark drivers.
from bench_util import _children as children, _pss_kib as pss_kib, _status_kib as status_kib  # noqa: E402


def memory(pid, tree):
    pids = [pid] + (children(pid) if tree else [])
    rss = sum(status_kib(p, "VmRSS") or 0 for p in pids)
    pss = sum(pss_kib(p) for p in pids)
    return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids),
            "hwm_kib": status_kib(pid, "VmHWM"), "threads": status_kib(pid, "Threads")}


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


async def read_reply(reader, timeout):
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by server" + (": " + " | ".join(lines) if lines else ""))
        text = line.decode("latin-1").rstrip("\r\n")
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            return text[:3], " | ".join(lines)


async def open_one(i, a, sem, conns, failures):
    src = f"127.0.0.{1 + i % a.sources}"
    async with sem:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                # let the kernel pick the port at connect() time (4-tuple aware)
                sock.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
            except OSError:
                pass
            sock.bind((src, 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (a.host, a.port)), a.timeout)
            reader, writer = await asyncio.open_connection(sock=sock)
            code, text = await read_reply(reader, a.timeout)
            if code != "220":
                failures[f"banner {text[:60]}"] += 1
                writer.close()
                return
            writer.write(b"EHLO idle-%d.bench.example\r\n" % i)
            await writer.drain()
            code, text = await read_reply(reader, a.timeout)
            if code != "250":
                failures[f"EHLO {text[:60]}"] += 1
                writer.close()
                return
            conns.append((reader, writer))
        except asyncio.TimeoutError:
            failures["timeout"] += 1
        except (OSError, ConnectionError) as e:
            failures[type(e).__name__ + " " + str(e)[:60]] += 1


async def still_open(conns):
    """A connection the server closed reads EOF (or a 421 line) at once."""
    async def probe(reader):
        try:
            await asyncio.wait_for(reader.read(1), 0.05)
            return False  # EOF, or the server said something (421) to an idle client
        except asyncio.TimeoutError:
            return True  # nothing to read: still open and idle
        except OSError:
            return False
    res = await asyncio.gather(*(probe(r) for r, _ in conns))
    return sum(1 for x in res if x)


async def run(a):
    conns, failures = [], collections.Counter()
    before = memory(a.pid, a.tree) if a.pid else None
    sem = asyncio.Semaphore(a.parallel)
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(i, a, sem, conns, failures) for i in range(a.count)))
    t_open = time.monotonic() - t0
    await asyncio.sleep(a.hold)
    after = memory(a.pid, a.tree) if a.pid else None
    fds = fd_count(a.pid) if a.pid else None
    open_now = await still_open(conns)
    for _, w in conns:
        w.close()
    await asyncio.sleep(0.5)
    out = {
        "requested": a.count,
        "sources": a.sources,
        "established": len(conns),
        "still_open_after_hold": open_now,
        "open_seconds": round(t_open, 2),
        "hold_seconds": a.hold,
        "failures": dict(failures),
        "server_fds": fds,
        "before": before,
        "after": after,
    }
    if after:
        out["hwm_mib"] = round((after["hwm_kib"] or 0) / 1024, 1)
    if before and after and open_now:
        out["rss_mib"] = round(after["rss_kib"] / 1024, 1)
        out["rss_before_mib"] = round(before["rss_kib"] / 1024, 1)
        out["kib_per_conn_total"] = round(after["rss_kib"] / open_now, 2)
        out["kib_per_conn_delta"] = round((after["rss_kib"] - before["rss_kib"]) / open_now, 2)
        out["pss_kib_per_conn_delta"] = round((after["pss_kib"] - before["pss_kib"]) / open_now, 2)
    out["valid"] = open_now == a.count and not failures
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=100, help="source addresses 127.0.0.1..127.0.0.N")
    ap.add_argument("--parallel", type=int, default=200, help="connections being set up at once")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--pid", type=int, default=0, help="server process to measure")
    ap.add_argument("--tree", action="store_true", help="sum over the PID and its children")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 256
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        print(json.dumps({"valid": False, "error": f"RLIMIT_NOFILE {soft} < {want}"}))
        return 1
    out = asyncio.run(run(a))
    print(json.dumps(out))
    return 0 if out["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
