"""Next-hop resolution end to end: the real resolver (libunbound) asks a DNS server on
loopback whose records each test sets and changes, through the resolve_next_hop test
driver (tests/tools/resolve_next_hop.cpp), which prints one JSON line per resolution.

Every test uses names of its own, so tests share one server but never an answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, SOA, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

ZONE = "example.test"
NEGATIVE_TTL = 60  # SOA minimum: how long "no such record" may be cached


def driver() -> str:
    d = os.environ.get("EDGERELAY_TOOLS_DIR")
    if d:
        p = Path(d) / "resolve_next_hop"
    else:
        bin_dir = os.environ.get("EDGERELAY_BIN_DIR")
        p = Path(bin_dir).parent / "tests" / "resolve_next_hop" if bin_dir else Path("resolve_next_hop")
    if not p.exists():
        # The default build makes it; a missing driver is a broken build, not a skip.
        pytest.fail(f"{p} is not built (target resolve_next_hop)")
    return str(p)


class Zone(BaseResolver):
    """Authoritative answers for *.example.test from a table the test changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records: dict[tuple[str, str], list[RR]] = {}
        self.rcodes: dict[str, int] = {}  # name -> forced rcode (SERVFAIL, REFUSED)
        self.queries: list[tuple[str, str]] = []

    def set(self, name: str, rtype: str, values: list[str], ttl: int = 300) -> None:
        rrs = [RR.fromZone(f"{name}. {ttl} IN {rtype} {v}")[0] for v in values]
        with self.lock:
            self.records[(name.lower(), rtype)] = rrs

    def fail(self, name: str, rcode: int) -> None:
        with self.lock:
            self.rcodes[name.lower()] = rcode

    def count(self, name: str, rtype: str) -> int:
        with self.lock:
            return self.queries.count((name.lower(), rtype))

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        name = str(request.q.qname).rstrip(".").lower()
        rtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, rtype))
            if name in self.rcodes:
                reply.header.rcode = self.rcodes[name]
                return reply
            for _ in range(8):  # follow CNAMEs inside the zone, as an authority does
                cname = self.records.get((name, "CNAME"))
                if cname and rtype != "CNAME":
                    reply.add_answer(*cname)
                    name = str(cname[0].rdata.label).rstrip(".").lower()
                    continue
                break
            answers = self.records.get((name, rtype))
            if answers:
                reply.add_answer(*answers)
                return reply
            exists = any(n == name for n, _ in self.records)
            if not exists and not reply.rr:
                reply.header.rcode = RCODE.NXDOMAIN
            soa = SOA(f"ns.{ZONE}.", f"hostmaster.{ZONE}.", (1, 3600, 600, 86400, NEGATIVE_TTL))
            reply.add_auth(RR(DNSLabel(ZONE + "."), QTYPE.SOA, rdata=soa, ttl=NEGATIVE_TTL))
        return reply


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


@pytest.fixture(scope="module")
def dns():
    zone = Zone()
    port = free_port()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, logger=quiet) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    zone.port = port
    yield zone
    for s in servers:
        s.stop()


@pytest.fixture
def names():
    """A fresh label under the zone, so no answer is shared with another test."""
    tag = "t" + uuid.uuid4().hex[:10]
    return lambda label="": f"{label}.{tag}.{ZONE}" if label else f"{tag}.{ZONE}"


def run(port: int, next_hop: str, *args: str, timeout: float = 30) -> list[dict]:
    proc = subprocess.Popen([driver(), "--nameserver", f"127.0.0.1:{port}", *args, next_hop],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def resolve(dns: Zone, next_hop: str, *args: str, timeout: float = 30) -> dict:
    return run(dns.port, next_hop, *args, timeout=timeout)[0]


class Session:
    """One driver process (one resolver, one cache) resolving on demand."""

    def __init__(self, port: int, *args: str):
        self.proc = subprocess.Popen([driver(), "--nameserver", f"127.0.0.1:{port}", *args, "--stdin"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def resolve(self, next_hop: str) -> dict:
        self.proc.stdin.write(next_hop + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "driver exited"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def session(dns):
    opened = []

    def open_session(*args: str) -> Session:
        s = Session(dns.port, *args)
        opened.append(s)
        return s

    yield open_session
    for s in opened:
        s.close()


# ----------------------------------------------------------------------------- MX forms

def test_equal_preferences_all_appear_in_shuffled_order(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('a')}.", f"10 {names('b')}.", f"20 {names('c')}."])
    dns.set(names("a"), "A", ["192.0.2.1"])
    dns.set(names("b"), "A", ["192.0.2.2"])
    dns.set(names("c"), "A", ["192.0.2.3"])
    results = run(dns.port, domain, "--repeat", "40")
    firsts = set()
    for r in results:
        assert r["outcome"] == "ok"
        assert [h["preference"] for h in r["hosts"]] == [10, 10, 20]
        assert {h["name"] for h in r["hosts"][:2]} == {names("a"), names("b")}
        assert r["hosts"][2]["name"] == names("c")
        assert r["host_set"] == "192.0.2.1:25,192.0.2.2:25,192.0.2.3:25"
        firsts.add(r["hosts"][0]["name"])
    assert firsts == {names("a"), names("b")}, "equal preferences are not shuffled"
    assert dns.count(domain, "MX") == 1, "repeated resolutions did not use the cache"


def test_preference_order_and_port(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"30 {names('c')}.", f"5 {names('a')}.", f"20 {names('b')}."])
    for label, ip in (("a", "192.0.2.1"), ("b", "192.0.2.2"), ("c", "192.0.2.3")):
        dns.set(names(label), "A", [ip])
    dns.set(names("b"), "AAAA", ["2001:db8::2"])
    r = resolve(dns, domain + ":2525")
    assert r["outcome"] == "ok" and not r["implicit_mx"]
    assert [(h["name"], h["preference"], h["port"]) for h in r["hosts"]] == [
        (names("a"), 5, 2525), (names("b"), 20, 2525), (names("c"), 30, 2525)]
    assert r["hosts"][1]["addresses"] == ["192.0.2.2", "2001:db8::2"]  # IPv4 first
    assert r["host_set"] == "192.0.2.1:2525,192.0.2.2:2525,192.0.2.3:2525,[2001:db8::2]:2525"


def test_implicit_mx_is_the_host_itself(dns, names):
    domain = names()
    dns.set(domain, "A", ["192.0.2.7"])
    dns.set(domain, "AAAA", ["2001:db8::7"])
    r = resolve(dns, domain, "--port", "2526")
    assert r["outcome"] == "ok" and r["implicit_mx"]
    assert r["hosts"] == [{"name": domain, "preference": 0, "addresses": ["192.0.2.7", "2001:db8::7"], "port": 2526}]


def test_mx_host_without_address_is_skipped(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('gone')}.", f"20 {names('b')}."])
    dns.set(names("b"), "A", ["192.0.2.2"])
    r = resolve(dns, domain)
    assert r["outcome"] == "ok"
    assert [h["name"] for h in r["hosts"]] == [names("b")]


def test_no_mx_host_with_an_address_is_temporary(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('gone')}."])
    r = resolve(dns, domain)
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.3")
    assert r["host_set"] == ""


def test_cname_is_followed(dns, names):
    domain = names()
    dns.set(domain, "CNAME", [f"{names('real')}."])
    dns.set(names("real"), "MX", [f"10 {names('mx')}."])
    dns.set(names("mx"), "CNAME", [f"{names('box')}."])
    dns.set(names("box"), "A", ["192.0.2.9"])
    r = resolve(dns, domain)
    assert r["outcome"] == "ok"
    assert r["hosts"][0]["name"] == names("mx") and r["hosts"][0]["addresses"] == ["192.0.2.9"]


# ------------------------------------------------------------------- [host] and literals

def test_bracketed_host_skips_mx(dns, names):
    host = names()
    dns.set(host, "MX", [f"10 {names('elsewhere')}."])
    dns.set(names("elsewhere"), "A", ["192.0.2.99"])
    dns.set(host, "A", ["192.0.2.10"])
    r = resolve(dns, f"[{host}]:587")
    assert r["outcome"] == "ok" and not r["implicit_mx"]
    assert r["hosts"] == [{"name": host, "preference": 0, "addresses": ["192.0.2.10"], "port": 587}]
    assert dns.count(host, "MX") == 0


def test_bracketed_host_without_address_is_temporary(dns, names):
    host = names()
    dns.set(host, "TXT", ['"no address here"'])
    r = resolve(dns, f"[{host}]")
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.3")


def test_bracketed_unknown_host_is_permanent(dns, names):
    r = resolve(dns, f"[{names('nowhere')}]")
    assert (r["outcome"], r["enhanced_status"]) == ("permanent_failure", "5.1.2")


def test_literal_needs_no_dns(dns):
    r = resolve(dns, "[192.0.2.44]:2525")
    assert r["outcome"] == "ok" and r["host_set"] == "192.0.2.44:2525"
    assert r["ttl"] >= 3600
    r = resolve(dns, "[IPv6:2001:db8::44]")
    assert r["hosts"][0]["addresses"] == ["2001:db8::44"] and r["host_set"] == "[2001:db8::44]:25"


# ------------------------------------------------------------------------------ failures

def test_null_mx_is_permanent(dns, names):
    domain = names()
    dns.set(domain, "MX", ["0 ."])
    r = resolve(dns, domain)
    assert (r["outcome"], r["enhanced_status"]) == ("permanent_failure", "5.1.10")
    assert r["host_set"] == "" and r["mx"] == [{"preference": 0, "exchange": ""}]


def test_null_mx_beside_real_ones_is_ignored(dns, names):
    domain = names()
    dns.set(domain, "MX", ["0 .", f"10 {names('a')}."])
    dns.set(names("a"), "A", ["192.0.2.1"])
    r = resolve(dns, domain)
    assert r["outcome"] == "ok" and r["host_set"] == "192.0.2.1:25"


def test_nxdomain_is_permanent(dns, names):
    r = resolve(dns, names("nowhere"))
    assert (r["outcome"], r["enhanced_status"]) == ("permanent_failure", "5.1.2")
    assert r["host_set"] == ""


@pytest.mark.parametrize("rcode", [RCODE.SERVFAIL, RCODE.REFUSED])
def test_server_failure_is_temporary(dns, names, rcode):
    domain = names()
    dns.fail(domain, rcode)
    r = resolve(dns, domain)
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.3")
    assert r["host_set"] == ""


def test_silent_server_is_temporary_within_the_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never read
        silent.bind(("127.0.0.1", 0))
        started = time.monotonic()
        r = run(silent.getsockname()[1], "mail.example.test", timeout=30)[0]
        elapsed = time.monotonic() - started
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.3")
    assert elapsed < 15, f"took {elapsed:.1f}s"


def test_resolver_destroyed_with_queries_outstanding():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        started = time.monotonic()
        r = run(silent.getsockname()[1], "[mail.example.test]", "--destroy-after-ms", "300", timeout=30)[0]
        elapsed = time.monotonic() - started
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.3")
    assert "shut down" in r["error"]
    assert elapsed < 5


def test_mx_pointing_at_us_is_a_loop(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('edge')}."])
    dns.set(names("edge"), "A", ["192.0.2.50"])
    r = resolve(dns, domain, "--self-name", names("edge"))
    assert (r["outcome"], r["enhanced_status"]) == ("temporary_failure", "4.4.6")
    assert "loops back to myself" in r["error"]


def test_only_hosts_preferred_over_us_are_kept(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"5 {names('primary')}.", f"10 {names('edge')}.", f"10 {names('peer')}.",
                           f"20 {names('backup')}."])
    for label, ip in (("primary", "192.0.2.1"), ("edge", "192.0.2.50"), ("peer", "192.0.2.51"),
                      ("backup", "192.0.2.52")):
        dns.set(names(label), "A", [ip])
    r = resolve(dns, domain, "--self-address", "192.0.2.50")  # recognised by address
    assert r["outcome"] == "ok"
    assert [h["name"] for h in r["hosts"]] == [names("primary")]


# ------------------------------------------------------------------------- TTL and cache

def test_ttl_is_the_shortest_answer_used(dns, names):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('a')}.", f"20 {names('b')}."], ttl=200)
    dns.set(names("a"), "A", ["192.0.2.1"], ttl=150)
    dns.set(names("a"), "AAAA", ["2001:db8::1"], ttl=300)
    dns.set(names("b"), "A", ["192.0.2.2"], ttl=45)
    r = resolve(dns, domain)
    assert r["outcome"] == "ok"
    assert 40 <= r["ttl"] <= 45  # b's A; b's AAAA is absent for NEGATIVE_TTL = 60


def test_change_is_seen_after_the_ttl_and_not_before(dns, names, session):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('dallas')}."], ttl=2)
    dns.set(names("dallas"), "A", ["192.0.2.1"], ttl=300)
    dns.set(names("la"), "A", ["198.51.100.1"], ttl=300)
    s = session()
    started = time.monotonic()
    assert s.resolve(domain)["host_set"] == "192.0.2.1:25"
    dns.set(domain, "MX", [f"10 {names('la')}."], ttl=2)
    # Within the TTL the cached answer stands, however often we ask.
    for _ in range(2):
        r = s.resolve(domain)
        assert time.monotonic() - started < 1.8, "too slow to test within the TTL"
        assert r["host_set"] == "192.0.2.1:25"
        assert r["ttl"] <= 2
    # libunbound counts in whole seconds: an answer may be served until TTL + 1 s.
    time.sleep(max(0.0, started + 3.3 - time.monotonic()))
    assert s.resolve(domain)["host_set"] == "198.51.100.1:25"


def test_max_ttl_caps_the_cache(dns, names, session):
    domain = names()
    dns.set(domain, "MX", [f"10 {names('dallas')}."], ttl=300)
    dns.set(names("dallas"), "A", ["192.0.2.1"], ttl=300)
    dns.set(names("la"), "A", ["198.51.100.1"], ttl=300)
    s = session("--max-ttl", "1s")
    r = s.resolve(domain)
    assert r["host_set"] == "192.0.2.1:25" and r["ttl"] <= 1
    dns.set(domain, "MX", [f"10 {names('la')}."], ttl=300)
    time.sleep(2.3)  # max_ttl, plus libunbound's whole-second clock
    assert s.resolve(domain)["host_set"] == "198.51.100.1:25"
