#!/usr/bin/python3
"""Helpers for run_delivery_bench.sh (standard library + dnslib).

Generic helpers (free ports, SMTP banner, JSON counts, CPU seconds, the results file)
come from bench_util.py, which is imported, not copied.

Subcommands:
  dns-server PORT ZONE_FILE QUERY_LOG
      An authoritative-looking DNS server on 127.0.0.1:PORT (UDP and TCP) that serves
      the records of ZONE_FILE, one zone-file line each ("name. TTL IN TYPE rdata").
      The file is read again whenever it changes (replace it with mv: a record change
      at run time). Names it has no record for answer NXDOMAIN, other types NOERROR
      with no data; both with an SOA of TTL 1. Every query is appended to QUERY_LOG as
      "EPOCH NAME TYPE". Runs until SIGTERM.
  dns-ask PORT NAME TYPE SECS
      Ask 127.0.0.1:PORT until it answers (SECS at most); print the answer's records.
  sink-count FILE
      The message count of an `smtp-sink -c` output file ("mesg=N", the last one).
  wait-sink FILE COUNT TIMEOUT PROGRESS_FILE
      Poll an `smtp-sink -c` output file every 5 ms until it counts COUNT messages
      or TIMEOUT seconds pass. Print shell assignments: W_first (epoch when the first
      message was seen), W_done (epoch when COUNT was reached, empty on timeout),
      W_count (the count at that moment). Every 0.5 s "EPOCH COUNT" goes to
      PROGRESS_FILE.
  queue-state FILE
      Of an `edgerelayctl queue list --json` output: "TOTAL STATE=N STATE=N ...".
  progress-summary PROGRESS_FILE T0 COUNT
      The drain curve in one line: messages at +1 s, +2 s, ... and the best 1-s rate.
  threads PID
      One line per thread of PID: "TID CPU_TICKS RUN_NS WAIT_NS SLICES" (from
      /proc/PID/task/*/stat and schedstat), for threads-diff.
  threads-diff BEFORE AFTER
      Per thread, between two `threads` outputs: CPU seconds, seconds spent waiting in
      the run queue (runnable, not running), and the number of times it was scheduled.
  mem PID
      VmRSS, RssAnon, RssFile and VmHWM of PID, in MiB.
  report RESULTS
      The summary table (and the ratios) of a results file.
"""

import json
import os
import re
import signal
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_util  # noqa: E402  (the intake benchmark's helpers: reused, not edited)


# ---------------------------------------------------------------------------- DNS

def dns_server(port, zone_file, query_log):
    from dnslib import QTYPE, RCODE, RR, SOA, DNSLabel
    from dnslib.server import BaseResolver, DNSServer

    lock = threading.Lock()
    state = {"key": None, "records": {}}
    qlog = open(query_log, "a", buffering=1, encoding="utf-8")

    def load():
        try:
            st = os.stat(zone_file)
        except OSError:
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == state["key"]:
            return
        records = {}
        with open(zone_file, encoding="utf-8") as f:
            text = f.read()
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            for rr in RR.fromZone(line):
                records.setdefault(str(rr.rname).lower().rstrip("."), []).append(rr)
        state["key"] = key
        state["records"] = records
        qlog.write(f"{time.time():.6f} reload {len(records)} names\n")

    def soa(name):
        zone = ".".join(name.split(".")[-2:]) + "."
        return RR(DNSLabel(zone), QTYPE.SOA, ttl=1,
                  rdata=SOA("ns." + zone, "hostmaster." + zone, (1, 60, 60, 600, 1)))

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            q = request.q
            name = str(q.qname).lower().rstrip(".")
            with lock:
                load()
                recs = state["records"].get(name)
                qlog.write(f"{time.time():.6f} {name} {QTYPE.get(q.qtype, q.qtype)}\n")
                reply = request.reply()
                if recs is None:
                    reply.header.rcode = RCODE.NXDOMAIN
                    reply.add_auth(soa(name))
                    return reply
                found = [rr for rr in recs if rr.rtype == q.qtype]
                for rr in found:
                    reply.add_answer(RR(q.qname, rr.rtype, rdata=rr.rdata, ttl=rr.ttl))
                if not found:
                    reply.add_auth(soa(name))
                return reply

    class Quiet:
        def __getattr__(self, name):
            return lambda *a, **k: None

    with lock:
        load()
    servers = [DNSServer(Resolver(), port=int(port), address="127.0.0.1", logger=Quiet()),
               DNSServer(Resolver(), port=int(port), address="127.0.0.1", logger=Quiet(), tcp=True)]
    for s in servers:
        s.start_thread()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(0.5):
        pass
    for s in servers:
        try:
            s.stop()
        except Exception:
            pass
    return 0


def dns_ask(port, name, qtype, secs):
    from dnslib import DNSRecord
    deadline = time.monotonic() + float(secs)
    last = ""
    while time.monotonic() < deadline:
        try:
            packet = DNSRecord.question(name, qtype).send("127.0.0.1", int(port), timeout=1)
            reply = DNSRecord.parse(packet)
            print(" ".join(str(rr.rdata) for rr in reply.rr) or "(no data)")
            return 0
        except Exception as e:
            last = str(e)
            time.sleep(0.1)
    print(f"DNS server on 127.0.0.1:{port} did not answer within {secs}s ({last})", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------- smtp-sink -c

_MESG = re.compile(rb"mesg=(\d+)")


def read_count(path, tail=512):
    """The last complete "mesg=N" of a smtp-sink -c file (records end with CR)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - tail))
            data = f.read()
    except OSError:
        return 0
    end = data.rfind(b"\r")
    if end < 0:
        return 0
    found = _MESG.findall(data[:end])
    return int(found[-1]) if found else 0


def wait_sink(path, count, timeout, progress_file):
    count, deadline = int(count), time.monotonic() + float(timeout)
    first = done = None
    n = 0
    next_progress = 0.0
    with open(progress_file, "w", encoding="utf-8") as prog:
        while True:
            n = read_count(path)
            now_epoch, now = time.time(), time.monotonic()
            if first is None and n >= 1:
                first = now_epoch
            if now >= next_progress:
                prog.write(f"{now_epoch:.3f} {n}\n")
                prog.flush()
                next_progress = now + 0.5
            if n >= count:
                done = now_epoch
                prog.write(f"{now_epoch:.3f} {n}\n")
                break
            if now >= deadline:
                break
            time.sleep(0.005)
    print(f"W_first={'' if first is None else f'{first:.6f}'}")
    print(f"W_done={'' if done is None else f'{done:.6f}'}")
    print(f"W_count={n}")
    return 0


def progress_summary(path, t0, count):
    t0, count = float(t0), int(count)
    pts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                t, n = line.split()
                pts.append((float(t) - t0, int(n)))
            except ValueError:
                pass
    if not pts:
        print("no progress samples")
        return 0

    def at(sec):
        best = 0
        for t, n in pts:
            if t <= sec:
                best = n
        return best

    end = pts[-1][0]
    marks = []
    s = 1
    while s <= end + 1 and len(marks) < 40:
        marks.append(f"+{s}s:{at(s)}")
        s += 1 if end < 20 else max(1, int(end // 20))
    best = 0.0
    for i, (t, n) in enumerate(pts):
        for t2, n2 in pts[i + 1:]:
            if t2 - t >= 1.0:
                best = max(best, (n2 - n) / (t2 - t))
                break
    print(f"{' '.join(marks)} | best 1-s rate {best:.0f} msgs/s")
    return 0


def queue_state(path):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    msgs = obj.get("messages", [])
    states = {}
    for m in msgs:
        states[m.get("state", "?")] = states.get(m.get("state", "?"), 0) + 1
    print(len(msgs), " ".join(f"{k}={v}" for k, v in sorted(states.items())))
    return 0


# ---------------------------------------------------------------------------- threads, memory

def threads(pid):
    base = f"/proc/{pid}/task"
    for tid in sorted(os.listdir(base), key=int):
        try:
            f = bench_util._stat_fields(f"{pid}/task/{tid}")
            with open(f"{base}/{tid}/schedstat") as fh:
                run, wait, slices = fh.read().split()[:3]
        except (OSError, ValueError):
            continue
        print(tid, int(f[11]) + int(f[12]), run, wait, slices)
    return 0


def threads_diff(before, after):
    def load(path):
        out = {}
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 5:
                    out[parts[0]] = [int(x) for x in parts[1:]]
        return out
    a, b = load(before), load(after)
    hz = os.sysconf("SC_CLK_TCK")
    rows = []
    for tid, vb in b.items():
        va = a.get(tid, [0, 0, 0, 0])
        cpu = (vb[0] - va[0]) / hz
        wait = (vb[2] - va[2]) / 1e9
        slices = vb[3] - va[3]
        if cpu >= 0.01 or wait >= 0.01:
            rows.append(f"tid {tid}: cpu {cpu:.2f} s, run-queue wait {wait:.2f} s, scheduled {slices} times")
    print("; ".join(rows) or "no thread used CPU")
    return 0


def mem(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                vals[k] = int(v.split()[0]) / 1024
    print(", ".join(f"{k} {vals.get(k, 0):.1f} MiB" for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")))
    return 0


# ---------------------------------------------------------------------------- report

def report(path):
    res = bench_util._load_results(path)
    g = lambda k: bench_util._num(res, k)
    fmt = bench_util._fmt
    last = lambda k, d="n/a": res.get(k, [d])[-1]
    lines = []
    p = lines.append
    p("")
    p("==================== edgerelay delivery benchmark ====================")
    for k in ("date", "host", "cpus", "kernel", "loadavg_start", "loadavg_end", "filesystem", "postfix_version",
              "edgerelay_bin", "e2e_messages", "drain_messages", "sessions", "size", "dns_ttl", "rounds"):
        if k in res:
            p(f"  {k:<18} {res[k][-1]}")
    rounds = int(last("rounds", "1"))
    if rounds > 1:
        p("  (several rounds: figures are medians; every round is listed at the end)")
    p("")
    p(f"  1. end-to-end relay: smtp-source -> server -> smtp-sink, {last('e2e_messages')} x {last('size')} B, "
      f"{last('sessions')} sessions, 1 message/connection")
    p("     (time from the start of smtp-source until the sink holds every message)")
    p("                   msgs/s   seconds  intake-done(s)  server CPU/msg  load average    validity")
    if g("ceiling_rate") is not None or "ceiling_valid" in res:
        p("     {:<10} {:>10} {:>9} {:>15} {:>15}  {:<14}  {}".format(
            "(tools)", fmt(g("ceiling_rate")), "", "", fmt(g("ceiling_cpu_per_msg_us"), " us"),
            last("ceiling_loadavg"), ",".join(res.get("ceiling_valid", ["smtp-source -> smtp-sink"]))))
    for who in ("postfix", "edgerelay"):
        p("     {:<10} {:>10} {:>9} {:>15} {:>15}  {:<14}  {}".format(
            who, fmt(g(f"e2e_{who}_rate")), fmt(g(f"e2e_{who}_seconds"), digits=2),
            fmt(g(f"e2e_{who}_intake_seconds"), digits=2), fmt(g(f"e2e_{who}_cpu_per_msg_us"), " us"),
            last(f"e2e_{who}_loadavg"), ",".join(res.get(f"e2e_{who}_valid", ["n/a"]))))
    p("")
    p(f"  2. drain of {last('drain_messages')} queued messages after the destination returns")
    p("     edgerelay: DNS record change (site A 127.0.0.2 -> 127.0.0.3, TTL {} s), no operator action".format(
        last("dns_ttl")))
    p("     Postfix:   relayhost changed, postfix reload, postqueue -f")
    p("                 first msg(s)  all(s)  rate from 1st msg  rate from change  CPU/msg  load average    validity")
    for who in ("postfix", "edgerelay"):
        p("     {:<10} {:>12} {:>8} {:>18} {:>17} {:>8}  {:<14}  {}".format(
            who, fmt(g(f"drain_{who}_first_s"), digits=2), fmt(g(f"drain_{who}_all_s"), digits=2),
            fmt(g(f"drain_{who}_rate_from_first")), fmt(g(f"drain_{who}_rate_from_change")),
            fmt(g(f"drain_{who}_cpu_per_msg_us"), " us"), last(f"drain_{who}_loadavg"),
            ",".join(res.get(f"drain_{who}_valid", ["n/a"]))))
    for who in ("postfix", "edgerelay"):
        if f"drain_{who}_inject_rate" in res:
            p(f"     ({who}: {last(f'drain_{who}_messages')} injected at {fmt(g(f'drain_{who}_inject_rate'))} msgs/s, "
              f"all deferred after {fmt(g(f'drain_{who}_deferred_wait_s'), digits=1)} s)")
    p("")
    p("  Ratios (same run; drain start: the slowest round)")

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    r = ratio(g("e2e_edgerelay_rate"), g("e2e_postfix_rate"))
    p(f"     end-to-end edgerelay / Postfix              {fmt(r, 'x', 2):>8}   target >= 5x   {bench_util._verdict(r, lambda x: x >= 5)}")
    r = ratio(g("e2e_edgerelay_rate"), g("ceiling_rate"))
    p(f"     end-to-end edgerelay / tools ceiling        {fmt(r, 'x', 2):>8}")
    r = ratio(g("e2e_postfix_rate"), g("ceiling_rate"))
    p(f"     end-to-end Postfix / tools ceiling          {fmt(r, 'x', 2):>8}")
    r = ratio(g("drain_edgerelay_rate_from_first"), g("drain_postfix_rate_from_first"))
    p(f"     drain edgerelay / Postfix (from 1st msg)    {fmt(r, 'x', 2):>8}   target >= 4x   {bench_util._verdict(r, lambda x: x >= 4)}")
    r = ratio(g("drain_edgerelay_rate_from_change"), g("drain_postfix_rate_from_change"))
    p(f"     drain edgerelay / Postfix (from change)     {fmt(r, 'x', 2):>8}")
    firsts = []
    for v in res.get("drain_edgerelay_first_s", []):
        try:
            firsts.append(float(v))
        except ValueError:
            firsts.append(float("inf"))  # "none": no message at all
    a, ttl = (max(firsts) if firsts else None), g("dns_ttl")
    lim = None if ttl is None else ttl + 1
    p(f"     edgerelay drain start after record change   {fmt(a, ' s', 2):>8}   target <= {fmt(lim, ' s', 0)} "
      f"{bench_util._verdict(a, lambda x: lim is not None and x <= lim)}")
    if rounds > 1:
        for label, num, den in (("end-to-end", "e2e_edgerelay_rate", "e2e_postfix_rate"),
                                ("drain (from 1st msg)", "drain_edgerelay_rate_from_first", "drain_postfix_rate_from_first")):
            pairs = []
            for x, y in zip(res.get(num, []), res.get(den, [])):
                try:
                    pairs.append(float(x) / float(y))
                except (ValueError, ZeroDivisionError):
                    pass
            if pairs:
                p(f"     {label} edgerelay / Postfix per round: {' '.join(f'{v:.2f}x' for v in pairs)}")
        p("")
        p("  Every round:")
        for k in ("ceiling_rate", "e2e_postfix_rate", "e2e_edgerelay_rate", "drain_postfix_rate_from_first",
                  "drain_edgerelay_rate_from_first", "drain_edgerelay_first_s"):
            if k in res:
                p(f"     {k:<34} {' '.join(res[k])}")
    invalid = [k for k, v in res.items() if k.endswith("_valid") and any(x != "valid" for x in v)]
    p("")
    if invalid:
        p("  RUN INVALID: " + "; ".join(f"{k}={','.join(res[k])}" for k in invalid))
    else:
        p("  All measured phases valid (sink counts exact, queues empty afterwards).")
    p("=======================================================================")
    print("\n".join(lines))
    return 3 if invalid else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "dns-server":
        return dns_server(*a[:3])
    if cmd == "dns-ask":
        return dns_ask(*a[:4])
    if cmd == "sink-count":
        print(read_count(a[0], tail=4096))
        return 0
    if cmd == "wait-sink":
        return wait_sink(*a[:4])
    if cmd == "queue-state":
        return queue_state(a[0])
    if cmd == "progress-summary":
        return progress_summary(*a[:3])
    if cmd == "threads":
        return threads(a[0])
    if cmd == "threads-diff":
        return threads_diff(a[0], a[1])
    if cmd == "mem":
        return mem(a[0])
    if cmd == "report":
        return report(a[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
