#!/usr/bin/python3
"""Small helpers for run_intake_bench.sh (standard library only).

Subcommands:
  free-ports N               print N distinct free TCP ports on 127.0.0.1
  wait-banner HOST PORT SECS wait until HOST:PORT answers with an SMTP 220 banner
  count-json FILE KEY        print len(obj[KEY]) of a JSON object in FILE
  count-jsonl FILE           print the number of non-empty lines (postqueue -j)
  proc-mem PID [--tree]      print "rss_kib pss_kib nprocs" of PID (and its children)
  cpu-seconds PID            print CPU seconds of PID and its children (see below)
  http-get URL SECS          print the status code of a GET (000 on failure)
  json-vars FILE PREFIX NAME=PATH...
                             print shell assignments PREFIX_NAME='value' for dotted PATHs
                             of a JSON object in FILE (empty when missing or unreadable)
  report RESULTS             print the summary table from a results file
"""

import json
import os
import shlex
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            p = s.getsockname()[1]
            if p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    print(" ".join(str(p) for p in ports))


def wait_banner(host, port, secs):
    deadline = time.monotonic() + float(secs)
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2) as s:
                s.settimeout(5)
                line = s.makefile("rb").readline().decode("latin-1").strip()
                if line.startswith("220"):
                    try:
                        s.sendall(b"QUIT\r\n")
                    except OSError:
                        pass
                    return 0
                last = "banner: " + line
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    print(f"no SMTP banner on {host}:{port} within {secs}s ({last})", file=sys.stderr)
    return 1


def count_json(path, key):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    print(len(obj[key]))


def count_jsonl(path):
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                json.loads(line)
                n += 1
    print(n)


def _status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == int(pid):
            kids.append(int(d))
    return kids


def proc_mem(pid, tree):
    pids = [int(pid)]
    if tree:
        pids += _children(pid)
    rss = sum(_status_kib(p, "VmRSS") for p in pids)
    pss = sum(_pss_kib(p) for p in pids)
    print(rss, pss, len(pids))


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """CPU seconds of PID, plus those of its reaped children (cutime, cstime) and of its
    live children: the difference of two readings is what the process tree used in
    between, even for children that came and went (Postfix's smtpd, cleanup, ...)."""
    f = _stat_fields(pid)
    ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    for kid in _children(pid):
        try:
            k = _stat_fields(kid)
            ticks += int(k[11]) + int(k[12]) + int(k[13]) + int(k[14])
        except (OSError, IndexError, ValueError):
            pass
    print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")


def http_get(url, secs):
    try:
        with urllib.request.urlopen(url, timeout=float(secs)) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)
    except Exception:
        print("000")


def spool_commits(url, secs=10):
    """edgerelayd's spool writer counters from /metrics, as
    "writes_per_commit commit_ms intake_wait_ms" (n/a when unreadable)."""
    try:
        with urllib.request.urlopen(url, timeout=float(secs)) as r:
            text = r.read().decode()
    except Exception:
        print("n/a n/a n/a")
        return
    v = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            v[name] = float(value)
    commits = v.get("edgerelay_spool_commits_total", 0)
    writes = v.get("edgerelay_spool_writes_total", 0)
    seconds = v.get("edgerelay_spool_commit_seconds_total", 0)
    waits = v.get("edgerelay_spool_intake_wait_seconds_count", 0)
    wait_sum = v.get("edgerelay_spool_intake_wait_seconds_sum", 0)
    per = f"{writes / commits:.2f}" if commits else "n/a"
    # The time per commit, its syncs included.
    ms = f"{seconds * 1000 / commits:.3f}" if commits else "n/a"
    wait = f"{wait_sum * 1000 / waits:.3f}" if waits else "n/a"
    print(per, ms, wait)


def json_vars(path, prefix, specs):
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError):
        obj = {}
    for spec in specs:
        name, _, dotted = spec.partition("=")
        v = obj
        for part in (dotted or name).split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is None:
            text = ""
        elif isinstance(v, bool):
            text = "True" if v else "False"
        elif isinstance(v, float):
            text = f"{v:.3f}"
        elif isinstance(v, (dict, list)):
            text = json.dumps(v, separators=(",", ":"))
        else:
            text = str(v)
        print(f"{prefix}_{name}={shlex.quote(text)}")


# ---------------------------------------------------------------- report

def _load_results(path):
    """Lines 'key value'; repeated keys (several rounds) become lists."""
    res = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(" ")
            res.setdefault(key, []).append(value)
    return res


def _num(res, key):
    vals = []
    for v in res.get(key, []):
        try:
            vals.append(float(v))
        except ValueError:
            pass
    if not vals:
        return None
    return statistics.median(vals)


def _fmt(v, unit="", digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def _cpu_count(cpu_list):
    """CPUs in a taskset list such as "0", "0-1" or "0,2-3"; None for "all" or garbage."""
    count = 0
    for part in cpu_list.split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        count += int(hi or lo) - int(lo) + 1
    return count or None


def _placement(text):
    """(server CPUs, load CPUs) from "server=0 load=1"; None where a side shares every core."""
    fields = dict(f.split("=", 1) for f in text.split() if "=" in f)
    return _cpu_count(fields.get("server", "all")), _cpu_count(fields.get("load", "all"))


def report(path):
    res = _load_results(path)
    g = lambda k: _num(res, k)
    rounds = len(res.get("ceiling_rate", res.get("postfix_rate", res.get("edgerelay_rate", [1]))))
    lines = []
    p = lines.append

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    p("")
    p("==================== edgerelay intake benchmark ====================")
    for k in ("date", "host", "cpus", "kernel", "loadavg_start", "loadavg_end", "filesystem", "postfix_version", "postfix_down", "edgerelay_bin", "cpu_placement",
              "messages", "sessions", "size", "latency_messages", "idle_connections"):
        if k in res:
            p(f"  {k:<18} {res[k][-1]}")
    if rounds > 1:
        p(f"  rounds             {rounds} (figures below are medians; every round listed after)")
    p("")
    p("  1-3. intake, {} x {} B messages, {} sessions, 1 message/connection (msgs/s)".format(
        res.get("messages", ["?"])[-1], res.get("size", ["?"])[-1], res.get("sessions", ["?"])[-1]))
    ceiling, pf, er = g("ceiling_rate"), g("postfix_rate"), g("edgerelay_rate")
    p(f"     smtp-source -> smtp-sink (tools ceiling)   {_fmt(ceiling, digits=0):>10}")
    p(f"     smtp-source -> Postfix, destination down   {_fmt(pf, digits=0):>10}   queued {res.get('postfix_queued', ['n/a'])[-1]} ({res.get('postfix_valid', ['n/a'])[-1]})")
    p(f"     smtp-source -> edgerelay, destination down {_fmt(er, digits=0):>10}   queued {res.get('edgerelay_queued', ['n/a'])[-1]} ({res.get('edgerelay_valid', ['n/a'])[-1]})")
    tmpfs = g("edgerelay_tmpfs_rate")
    if tmpfs is not None:
        p(f"     diagnostic, not durable: edgerelay, spool on tmpfs {_fmt(tmpfs, digits=0):>4}   ({_fmt(ratio(tmpfs, pf), 'x', 2)} Postfix; the gap to the line above is waiting for the disk)")
    cpu = [(w, g(f"{w}_cpu_per_msg_us")) for w in ("ceiling", "postfix", "edgerelay")]
    if any(v is not None for _, v in cpu):
        names = {"ceiling": "smtp-sink", "postfix": "Postfix (all processes)", "edgerelay": "edgerelayd"}
        p("     server CPU per message: " + ", ".join(f"{names[w]} {_fmt(v, ' us', 0)}" for w, v in cpu))
    src = [(w, g(f"{w}_source_cpu_per_msg_us")) for w in ("ceiling", "postfix", "edgerelay")]
    if any(v is not None for _, v in src):
        names = {"ceiling": "into smtp-sink", "postfix": "into Postfix", "edgerelay": "into edgerelay"}
        p("     load tool CPU per message (smtp-source): " + ", ".join(f"{names[w]} {_fmt(v, ' us', 0)}" for w, v in src))
    # At 8x Postfix's rate the cores allow this much CPU per message, however fast the
    # disk: shared, for server and load tool together; placed apart, for each on its own.
    cores, er_cpu, er_src = g("cpus"), g("edgerelay_cpu_per_msg_us"), g("edgerelay_source_cpu_per_msg_us")
    server_cpus, load_cpus = _placement(res.get("cpu_placement", [""])[-1])
    if pf and cores and er_cpu is not None and er_src is not None:
        if server_cpus and load_cpus:
            p(f"     CPU budget at 8x Postfix ({8 * pf:,.0f} msgs/s): {server_cpus * 1e6 / (8 * pf):,.0f} us per message on the "
              f"server's {server_cpus} core(s), edgerelayd used {er_cpu:,.0f}; {load_cpus * 1e6 / (8 * pf):,.0f} us on the "
              f"load tool's {load_cpus}, smtp-source used {er_src:,.0f}")
        else:
            budget = cores * 1e6 / (8 * pf)
            p(f"     CPU budget at 8x Postfix ({8 * pf:,.0f} msgs/s on {cores:.0f} cores): {budget:,.0f} us per message for "
              f"server and load tool; the edgerelay phase used {er_cpu + er_src:,.0f} us "
              f"(edgerelayd {er_cpu:,.0f} + smtp-source {er_src:,.0f})")
    for prefix, label in (("edgerelay", "edgerelay"), ("edgerelay_tmpfs", "tmpfs")):
        if g(f"{prefix}_writes_per_commit") is not None:
            p(f"     spool writer, {label + ':':<10} {_fmt(g(f'{prefix}_writes_per_commit'), digits=2)} writes per commit, "
              f"{_fmt(g(f'{prefix}_commit_ms'), ' ms', 3)} per commit, "
              f"{_fmt(g(f'{prefix}_intake_wait_ms'), ' ms', 3)} from handing a message over to durable")
    p("")
    p("  4. accept latency, one session, end of data -> 250 (ms)")
    p("                     p50       p90       p99       max     msgs/s")
    for who in ("postfix", "edgerelay"):
        if g(f"{who}_lat_p50") is None:
            p(f"     {who:<10}   n/a")
            continue
        p("     {:<10} {:>8} {:>9} {:>9} {:>9} {:>10}   ({})".format(
            who, _fmt(g(f"{who}_lat_p50"), digits=3), _fmt(g(f"{who}_lat_p90"), digits=3),
            _fmt(g(f"{who}_lat_p99"), digits=3), _fmt(g(f"{who}_lat_max"), digits=3),
            _fmt(g(f"{who}_lat_rate"), digits=0), res.get(f"{who}_lat_valid", ["n/a"])[-1]))
    p("")
    p("  5. idle connections (banner read, EHLO answered, then held)")
    if g("edgerelay_idle_open") is not None:
        p("     edgerelay: {} of {} open, VmRSS {} before, {} with them ({})".format(
            int(g("edgerelay_idle_open")), res.get("idle_connections", ["?"])[-1],
            _fmt(g("edgerelay_idle_rss0_mib"), " MiB", 1), _fmt(g("edgerelay_idle_rss_mib"), " MiB", 1),
            res.get("edgerelay_idle_valid", ["n/a"])[-1]))
        p("                {} per connection (total RSS / connections), {} per connection (growth / connections)".format(
            _fmt(g("edgerelay_idle_kib_per_conn"), " KiB", 1), _fmt(g("edgerelay_idle_kib_per_conn_delta"), " KiB", 1)))
    else:
        p("     edgerelay: n/a")
    if g("postfix_idle_open") is not None:
        p("     Postfix:   {} open; growth of master+children RSS sum {} per connection, of PSS sum {} per connection".format(
            int(g("postfix_idle_open")), _fmt(g("postfix_idle_rss_kib_per_conn"), " KiB", 0),
            _fmt(g("postfix_idle_pss_kib_per_conn"), " KiB", 0)))
    p("")
    p("  Ratios (same run)")

    r = ratio(er, pf)
    p(f"     edgerelay / Postfix intake        {_fmt(r, 'x', 2):>9}   target >= 8x    {_verdict(r, lambda x: x >= 8)}")
    r = ratio(er, ceiling)
    p(f"     edgerelay / tools ceiling         {_fmt(r, 'x', 2):>9}   (as close to 1 as possible)")
    r = ratio(pf, ceiling)
    p(f"     Postfix / tools ceiling           {_fmt(r, 'x', 2):>9}")
    r = ratio(g("edgerelay_lat_p99"), g("postfix_lat_p99"))
    p(f"     latency p99 edgerelay / Postfix   {_fmt(r, 'x', 2):>9}   target <= 1     {_verdict(r, lambda x: x <= 1)}")
    r = ratio(g("edgerelay_lat_p50"), g("postfix_lat_p50"))
    p(f"     latency p50 edgerelay / Postfix   {_fmt(r, 'x', 2):>9}")
    rss = g("edgerelay_idle_rss_mib")
    p(f"     edgerelay RSS with {res.get('idle_connections', ['?'])[-1]} connections {_fmt(rss, ' MiB', 1):>11}   target < 256 MiB {_verdict(rss, lambda x: x < 256) if g('edgerelay_idle_open') == float(res.get('idle_connections', ['-1'])[-1]) else ('n/a' if rss is None else 'NOT ALL CONNECTIONS OPEN')}")
    pairs = []
    for a, b in zip(res.get("edgerelay_rate", []), res.get("postfix_rate", [])):
        try:
            pairs.append(float(a) / float(b))
        except (ValueError, ZeroDivisionError):
            pass
    if len(pairs) > 1:
        p(f"     edgerelay / Postfix, per round    {' '.join(f'{x:.2f}x' for x in pairs)} (median {statistics.median(pairs):.2f}x)")
    if rounds > 1:
        p("")
        p("  Every round:")
        for k in ("ceiling_rate", "postfix_rate", "edgerelay_rate", "edgerelay_tmpfs_rate", "postfix_lat_p99", "edgerelay_lat_p99"):
            if k in res:
                p(f"     {k:<20} {' '.join(res[k])}")
    invalid = [k for k, v in res.items() if k.endswith("_valid") and any(x != "valid" for x in v)]
    p("")
    if invalid:
        p("  RUN INVALID: " + ", ".join(f"{k}={','.join(res[k])}" for k in invalid))
    else:
        p("  All measured phases valid (queue counts matched what was sent).")
    p("=====================================================================")
    print("\n".join(lines))
    return 3 if invalid else 0


def _verdict(v, ok):
    if v is None:
        return "n/a"
    return "PASS" if ok(v) else "FAIL"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "free-ports":
        free_ports(int(args[0]) if args else 1)
    elif cmd == "wait-banner":
        return wait_banner(*args[:3])
    elif cmd == "count-json":
        count_json(args[0], args[1])
    elif cmd == "count-jsonl":
        count_jsonl(args[0])
    elif cmd == "proc-mem":
        proc_mem(args[0], "--tree" in args[1:])
    elif cmd == "cpu-seconds":
        cpu_seconds(args[0])
    elif cmd == "http-get":
        http_get(args[0], args[1] if len(args) > 1 else 5)
    elif cmd == "spool-commits":
        spool_commits(*args[:2])
    elif cmd == "json-vars":
        json_vars(args[0], args[1], args[2:])
    elif cmd == "report":
        return report(args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
