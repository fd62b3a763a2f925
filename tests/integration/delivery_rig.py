"""Rig for the delivery tests: an authoritative-looking DNS server whose records the test
changes while the daemon runs (dnslib, UDP and TCP on 127.0.0.1), mailbox "sites"
(aiosmtpd) on 127.0.0.x that record what they receive, listeners that only count
connections, and a daemon whose config points its resolver and its delivery port at
them.

It reuses edgerelay_harness (Daemon, ports, queue list, log reading); only the contract
(SPEC §3-§4 and the delivery contract of the tests) is used.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from aiosmtpd.controller import Controller
from dnslib import AAAA, MX, QTYPE, RCODE, RR, SOA, A, DNSLabel, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSServer

from edgerelay_harness import HOSTNAME, ROUTE_DOMAIN, Daemon, free_port, strip_angle, toml_value, unique

SENDER_DOMAIN = "senders.example"
DSN_SITE_IP = "127.0.0.5"  # where [[route]] senders.example leads: DSNs land there
INBOUND = f"inbound.{ROUTE_DOMAIN}"


# ---------------------------------------------------------------------------- waiting

def wait_until(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.1,
               detail: Callable[[], str] | None = None):
    """Poll pred() until it returns something truthy (returned); fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            extra = ""
            if detail is not None:
                try:
                    extra = "\n" + detail()
                except Exception as e:  # the detail is only for the report
                    extra = f"\n(detail failed: {e!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


# ---------------------------------------------------------------------------- DNS

def _norm(name: str) -> str:
    return str(name).lower().rstrip(".")


class _Resolver(BaseResolver):
    def __init__(self, rig: "DnsRig"):
        self.rig = rig

    def resolve(self, request, handler):
        return self.rig._answer(request)


class _QuietLogger:
    """dnslib's logger interface, silent except for errors (kept for the report)."""

    def __init__(self):
        self.errors: list[str] = []

    def log_error(self, handler, e):
        self.errors.append(str(e))

    def __getattr__(self, name):
        return lambda *a, **k: None


class DnsRig:
    """A DNS server for the test's zone. Records are mutable at run time, each with its
    own TTL. A name with no record at all answers NXDOMAIN; a name with records but none
    of the asked type answers NOERROR/no data; both with an SOA (minimum 1 s) so negative
    answers are cached only briefly. set_servfail / set_timeout make a name fail."""

    SOA_TTL = 1

    def __init__(self):
        self.lock = threading.Lock()
        self.records: dict[str, list[tuple[int, object, int]]] = {}  # name -> [(qtype, rdata, ttl)]
        self.servfail: set[str] = set()
        self.drop: set[str] = set()
        self.queries: list[tuple[float, str, str]] = []  # (monotonic, name, type)
        self.logger = _QuietLogger()
        self.port: int | None = None
        self.servers: list[DNSServer] = []

    # -- life cycle

    def start(self) -> "DnsRig":
        last = None
        for _ in range(20):
            port = free_port()
            try:
                udp = DNSServer(_Resolver(self), port=port, address="127.0.0.1", logger=self.logger)
                try:
                    tcp = DNSServer(_Resolver(self), port=port, address="127.0.0.1", logger=self.logger, tcp=True)
                except OSError:
                    udp.server.server_close()
                    raise
            except OSError as e:
                last = e
                continue
            self.port = port
            self.servers = [udp, tcp]
            for s in self.servers:
                s.start_thread()
            return self
        raise RuntimeError(f"no port for the DNS rig: {last}")

    def stop(self) -> None:
        for s in self.servers:
            try:
                s.stop()
                s.server.server_close()
            except Exception:
                pass
        self.servers = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- records

    def _set(self, name: str, qtype: int, rdatas: list, ttl: int) -> None:
        name = _norm(name)
        with self.lock:
            keep = [r for r in self.records.get(name, []) if r[0] != qtype]
            self.records[name] = keep + [(qtype, rd, ttl) for rd in rdatas]
            self.servfail.discard(name)
            self.drop.discard(name)

    def set_a(self, name: str, addresses: list[str] | str, ttl: int = 60) -> None:
        if isinstance(addresses, str):
            addresses = [addresses]
        self._set(name, QTYPE.A, [A(a) for a in addresses], ttl)

    def set_aaaa(self, name: str, addresses: list[str], ttl: int = 60) -> None:
        self._set(name, QTYPE.AAAA, [AAAA(a) for a in addresses], ttl)

    def set_mx(self, name: str, exchanges: list[tuple[int, str]], ttl: int = 60) -> None:
        """exchanges: [(preference, host)], served in this order."""
        self._set(name, QTYPE.MX, [MX(host.rstrip(".") + ".", pref) for pref, host in exchanges], ttl)

    def set_null_mx(self, name: str, ttl: int = 60) -> None:
        """RFC 7505: a single MX 0 ".". """
        self._set(name, QTYPE.MX, [MX(".", 0)], ttl)

    def set_servfail(self, name: str) -> None:
        with self.lock:
            self.servfail.add(_norm(name))

    def set_timeout(self, name: str) -> None:
        """Queries for the name get no answer at all."""
        with self.lock:
            self.drop.add(_norm(name))

    def delete(self, name: str) -> None:
        """The name ceases to exist: NXDOMAIN."""
        name = _norm(name)
        with self.lock:
            self.records.pop(name, None)
            self.servfail.discard(name)
            self.drop.discard(name)

    def query_count(self, name: str, qtype: str | None = None, since: float = 0.0) -> int:
        name = _norm(name)
        with self.lock:
            return sum(1 for t, n, q in self.queries if n == name and (qtype is None or q == qtype) and t >= since)

    # -- answering

    def _answer(self, request: DNSRecord) -> DNSRecord:
        q = request.q
        name = _norm(q.qname)
        qtype = q.qtype
        with self.lock:
            self.queries.append((time.monotonic(), name, QTYPE.get(qtype, str(qtype))))
            if name in self.drop:
                raise DNSError(f"dropping the query for {name} (simulated timeout)")
            reply = request.reply()  # the question as asked (0x20 case kept), AA and RA set
            if name in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            recs = self.records.get(name)
            if recs is None:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self._soa(name))
                return reply
            found = [r for r in recs if r[0] == qtype or (qtype == QTYPE.ANY)]
            for t, rd, ttl in found:
                reply.add_answer(RR(q.qname, t, rdata=rd, ttl=ttl))
            if not found:
                reply.add_auth(self._soa(name))
            return reply

    def _soa(self, name: str) -> RR:
        zone = ".".join(name.split(".")[-2:]) + "."
        return RR(DNSLabel(zone), QTYPE.SOA, ttl=self.SOA_TTL,
                  rdata=SOA("ns." + zone, "hostmaster." + zone, (1, 60, 60, 600, self.SOA_TTL)))

    # -- a client, to check the rig itself

    def ask(self, name: str, qtype: str = "A", tcp: bool = False, timeout: float = 2.0) -> DNSRecord:
        packet = DNSRecord.question(name, qtype).send("127.0.0.1", self.port, tcp=tcp, timeout=timeout)
        return DNSRecord.parse(packet)


# ---------------------------------------------------------------------------- sites

@dataclass
class Received:
    site: str
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: tuple
    at: float  # monotonic

    @property
    def message_id(self) -> str:
        m = re.search(rb"(?im)^message-id:[ \t]*<?([^>\r\n]*)>?", header_bytes(self.content))
        return m.group(1).decode("utf-8", "replace").strip() if m else ""


def header_bytes(content: bytes) -> bytes:
    i = content.find(b"\r\n\r\n")
    return content if i < 0 else content[: i + 2]


class _SiteHandler:
    def __init__(self, site: "MailSite"):
        self.site = site

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address  # "<>" for the null sender (aiosmtpd needs it non-empty)
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.site.rcpt_reply(address)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        with self.site.lock:
            self.site.rcpt_log.append((address, reply, time.monotonic()))
        return reply

    async def handle_DATA(self, server, session, envelope):
        if self.site.data_delay:
            await asyncio.sleep(self.site.data_delay)
        content = envelope.original_content if envelope.original_content is not None else envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        rec = Received(self.site.name, mail_from, list(envelope.rcpt_tos), bytes(content),
                       tuple(session.peer) if session.peer else (), time.monotonic())
        with self.site.lock:
            self.site.received.append(rec)
        return self.site.data_reply


class MailSite:
    """An aiosmtpd server on host:port that records every accepted message.
    rcpt_replies maps a recipient address (lower-case) to the reply its RCPT gets;
    others get 250. data_reply answers the end of data."""

    def __init__(self, name: str, host: str, port: int, rcpt_replies: dict[str, str] | None = None,
                 data_reply: str = "250 2.0.0 Ok: delivered", data_delay: float = 0.0,
                 idle_timeout: float | None = None):
        self.name, self.host, self.port = name, host, port
        # aiosmtpd closes a session idle this long (None: its default, 5 minutes).
        self.smtp_kwargs = {} if idle_timeout is None else {"timeout": idle_timeout}
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.data_reply = data_reply
        self.data_delay = data_delay
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_log: list[tuple[str, str, float]] = []  # (address, reply, monotonic)
        self.controller: Controller | None = None

    def rcpt_reply(self, address: str) -> str:
        return self.rcpt_replies.get(address.lower(), "250 2.1.5 Ok")

    def start(self) -> "MailSite":
        assert self.controller is None, f"site {self.name} already running"
        c = Controller(_SiteHandler(self), hostname=self.host, port=self.port, ready_timeout=15,
                       server_hostname=f"{self.name}.site.test", ident="site", decode_data=False,
                       enable_SMTPUTF8=True, data_size_limit=0, **self.smtp_kwargs)
        deadline = time.monotonic() + 10
        while True:
            try:
                c.start()
                break
            except OSError:  # the port of a site just stopped may linger a moment
                if time.monotonic() >= deadline:
                    raise
                c = Controller(_SiteHandler(self), hostname=self.host, port=self.port, ready_timeout=15,
                               server_hostname=f"{self.name}.site.test", ident="site", decode_data=False,
                               enable_SMTPUTF8=True, data_size_limit=0, **self.smtp_kwargs)
                time.sleep(0.2)
        self.controller = c
        return self

    def stop(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            finally:
                self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def by_message_id(self, mid: str) -> list[Received]:
        return [r for r in self.messages() if r.message_id == mid]

    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.messages()]

    def wait_message(self, mid: str, timeout: float = 15.0) -> Received:
        return wait_until(lambda: (self.by_message_id(mid) or [None])[0], timeout,
                          f"Message-ID <{mid}> at site {self.name} ({self.host}:{self.port})",
                          detail=lambda: f"site {self.name} has: {self.message_ids()[-10:]}")


class CountingListener:
    """Accepts TCP connections on host:port and closes them at once (a site that gives no
    answer), counting them."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self.connects: list[float] = []
        self.stop_event = threading.Event()
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> "CountingListener":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(512)
        s.settimeout(0.2)
        self.sock = s
        self.stop_event.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connects.append(time.monotonic())
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def count(self, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for t in self.connects if t >= since)


def site_port(hosts=("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")) -> int:
    """A TCP port free on every site address at once (free_port never gives one twice)."""
    for _ in range(50):
        port = free_port()
        socks = []
        try:
            for h in hosts:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on all site addresses")


# ---------------------------------------------------------------------------- the daemon

def render_delivery_config(workdir: Path, smtp_port: int, admin_port: int, dns_address: str, site_port: int,
                           routes: list[dict], delivery: dict | None = None, dns: dict | None = None,
                           server: dict | None = None, extra: str = "") -> str:
    srv = {"hostname": HOSTNAME, "listen": [f"127.0.0.1:{smtp_port}"], "relay_networks": ["127.0.0.5/32"]}
    srv.update(server or {})
    dn = {"nameservers": [dns_address], "max_ttl": "1h"}
    dn.update(dns or {})
    dl = {"retry_initial": "1m", "retry_max": "15m", "max_lifetime": "5d", "delay_warning": "0",
          "concurrency_per_destination": 20, "connect_timeout": "1s", "port": site_port}
    dl.update(delivery or {})

    def section(name, d):
        return [f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in d.items() if v is not None] + [""]

    lines = section("server", srv)
    lines += section("spool", {"path": str(workdir / "spool")})
    lines += section("dns", dn)
    lines += section("delivery", dl)
    lines += section("log", {"path": str(workdir / "edgerelay.log")})
    lines += section("admin", {"listen": f"127.0.0.1:{admin_port}"})
    for r in routes:
        lines += section("[route]", {"tls": "none", **r})
    return "\n".join(lines) + extra


class DeliveryDaemon(Daemon):
    """Daemon (edgerelay_harness) with a config for delivery: resolver = the DNS rig,
    [delivery] port = the sites' port, the given routes."""

    def __init__(self, workdir: Path, dns_address: str, site_port: int, routes: list[dict],
                 delivery: dict | None = None, dns: dict | None = None, server: dict | None = None,
                 extra: str = ""):
        super().__init__(workdir, server=server)
        self.site_port = site_port
        self.config_path.write_text(render_delivery_config(self.dir, self.port, self.admin_port, dns_address,
                                                           site_port, routes, delivery, dns, server, extra))

    # -- sending

    def send(self, sender: str, rcpts: list[str], message: bytes) -> str:
        c = self.session()
        try:
            qid = c.send_message(sender, rcpts, message)
            c.cmd("QUIT")
        finally:
            c.close()
        return qid

    # -- log

    def events(self, kind: str | None = None, queue_id: str | None = None, **match) -> list[dict]:
        out = []
        for e in self.log_events():
            if kind is not None and e.get("event") != kind:
                continue
            if queue_id is not None and e.get("queue_id") != queue_id:
                continue
            if any(e.get(k) != v for k, v in match.items()):
                continue
            out.append(e)
        return out

    def log_tail(self, n: int = 25) -> str:
        return "\n".join(json.dumps(e) for e in self.log_events()[-n:])

    def wait_event(self, kind: str, timeout: float = 15.0, queue_id: str | None = None, **match) -> dict:
        return wait_until(lambda: (self.events(kind, queue_id, **match) or [None])[0], timeout,
                          f"a {kind!r} event (queue_id={queue_id}, {match}) in {self.log_path}",
                          interval=0.2, detail=lambda: "last events:\n" + self.log_tail())

    # -- queue

    def wait_gone(self, queue_ids, timeout: float = 15.0) -> None:
        ids = {queue_ids} if isinstance(queue_ids, str) else set(queue_ids)

        def left():
            return ids & {m["queue_id"] for m in self.queue_list()}
        wait_until(lambda: not left(), timeout, f"{len(ids)} message(s) to leave the queue",
                   interval=0.3, detail=lambda: f"still queued: {sorted(left())[:10]}\nlog:\n" + self.log_tail())

    def wait_deferred(self, queue_id: str, timeout: float = 15.0) -> dict:
        def get():
            m = self.queued(queue_id)
            return m if m is not None and m.get("state") == "deferred" else None
        return wait_until(get, timeout, f"{queue_id} in state deferred", interval=0.3,
                          detail=lambda: f"queue entry: {self.queued(queue_id)}\nlog:\n" + self.log_tail())


def event_message_id(e: dict) -> str:
    return strip_angle(e.get("message_id"))


# ---------------------------------------------------------------------------- DSNs

@dataclass
class Dsn:
    message: email.message.Message
    content_type: str
    report_type: str
    per_message: dict = field(default_factory=dict)
    recipients: list[dict] = field(default_factory=list)  # lower-case field names
    returned_headers: str | None = None
    human: str = ""


def parse_dsn(content: bytes) -> Dsn:
    """An RFC 3464 report: the per-message and per-recipient fields of its
    message/delivery-status part and the text of its text/rfc822-headers part."""
    msg = email.message_from_bytes(content, policy=email.policy.compat32)
    d = Dsn(msg, msg.get_content_type(), (msg.get_param("report-type") or "").lower())
    for part in msg.walk():
        ct = part.get_content_type()
        if ct == "message/delivery-status":
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            if not blocks:  # parsed as text: split blocks by blank lines
                text = part.get_payload(decode=True) or b""
                blocks = [email.message_from_bytes(b.strip() + b"\r\n", policy=email.policy.compat32)
                          for b in re.split(rb"\r?\n\r?\n", text) if b.strip()]
            for i, b in enumerate(blocks):
                fields = {k.lower(): str(v).strip() for k, v in b.items()}
                if i == 0 and "final-recipient" not in fields:
                    d.per_message = fields
                else:
                    d.recipients.append(fields)
        elif ct == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if raw is None:
                raw = str(part.get_payload()).encode("utf-8", "replace")
            d.returned_headers = raw.decode("utf-8", "replace")
        elif ct == "text/plain" and not d.human:
            d.human = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return d


def dsn_recipient(d: Dsn, address: str) -> dict:
    for r in d.recipients:
        fr = r.get("final-recipient", "")
        if fr.split(";", 1)[-1].strip().strip("<>").lower() == address.lower():
            return r
    raise AssertionError(f"the DSN has no Final-Recipient for {address}: {d.recipients}")


# ---------------------------------------------------------------------------- messages and their reports

def sender() -> str:
    return f"{unique('alice')}@{SENDER_DOMAIN}"


def mid_of(prefix: str) -> str:
    return f"{unique(prefix)}@client.test"


def wait_dsn(site, original_sender: str, mid: str, timeout: float = 20.0, kind: str = "failed"):
    """The report about Message-ID mid that reached the sender's site, parsed."""
    def find():
        for r in site.messages():
            if r.mail_from == "" and [a.lower() for a in r.rcpt_tos] == [original_sender.lower()]:
                d = parse_dsn(r.content)
                if d.returned_headers is not None and mid in d.returned_headers \
                        and any(x.get("action", "").lower() == kind for x in d.recipients):
                    return r, d
        return None
    return wait_until(find, timeout, f"a DSN (Action: {kind}) about <{mid}> for {original_sender} at the sender's site",
                      detail=lambda: "the sender's site has: " + repr([(r.mail_from, r.rcpt_tos, r.content[:300])
                                                                      for r in site.messages()][-5:]))


def check_failed_dsn(received, dsn, original_sender: str, mid: str, subject: str, rcpt: str, status: str):
    assert received.mail_from == "", f"DSN not from the null sender: {received.mail_from!r}"
    assert received.rcpt_tos == [original_sender]
    assert dsn.content_type == "multipart/report", f"DSN content type {dsn.content_type}"
    assert dsn.report_type == "delivery-status", f"DSN report-type {dsn.report_type!r}"
    f = dsn_recipient(dsn, rcpt)
    assert f.get("action", "").lower() == "failed", f"Action: {f}"
    assert f.get("status") == status, f"Status: expected {status}, got {f}"
    assert dsn.returned_headers is not None, "no text/rfc822-headers part"
    assert f"Message-ID: <{mid}>" in dsn.returned_headers, f"original headers not returned:\n{dsn.returned_headers}"
    assert f"Subject: {subject}" in dsn.returned_headers
    return f


# ---------------------------------------------------------------------------- the fixture

class Rig:
    """Per test: the DNS server, a common site port, sites, listeners and daemons; all
    stopped at teardown."""

    def __init__(self, request, tmp_path: Path):
        self.request = request
        self.tmp = tmp_path
        self.dns = DnsRig().start()
        self.port = site_port()
        self.sites: list[MailSite] = []
        self.listeners: list[CountingListener] = []
        self.daemons: list[DeliveryDaemon] = []

    def site(self, name: str, host: str, port: int | None = None, start: bool = True, **kw) -> MailSite:
        s = MailSite(name, host, port or self.port, **kw)
        self.sites.append(s)
        if start:
            s.start()
        return s

    def dsn_site(self) -> MailSite:
        """The sender's site, where DSNs (route senders.example -> [127.0.0.5]) land."""
        return self.site("senders", DSN_SITE_IP)

    def listener(self, host: str, port: int | None = None) -> CountingListener:
        l = CountingListener(host, port or self.port).start()
        self.listeners.append(l)
        return l

    def daemon(self, routes: list[dict] | None = None, next_hop: str = INBOUND, delivery: dict | None = None,
               dns: dict | None = None, server: dict | None = None, start: bool = True) -> DeliveryDaemon:
        """By default: rockerduck.example -> next_hop, senders.example -> [127.0.0.5]."""
        if routes is None:
            routes = [{"domain": ROUTE_DOMAIN, "next_hop": next_hop}]
        if not any(r["domain"] == SENDER_DOMAIN for r in routes):
            routes = routes + [{"domain": SENDER_DOMAIN, "next_hop": f"[{DSN_SITE_IP}]"}]
        d = DeliveryDaemon(self.tmp / f"d{len(self.daemons)}", self.dns.address, self.port, routes,
                           delivery=delivery, dns=dns, server=server)
        self.daemons.append(d)
        node = self.request.node  # the conftest's report hook attaches output and config of these
        if not hasattr(node, "_edgerelay_daemons"):
            node._edgerelay_daemons = []
        node._edgerelay_daemons.append(d)
        if start:
            d.start()
        return d

    def close(self) -> list[str]:
        errors = []
        for d in self.daemons:
            try:
                d.terminate()
            except AssertionError as e:
                errors.append(f"{d.dir}: {e}")
        for s in self.sites:
            try:
                s.stop()
            except Exception as e:
                errors.append(f"site {s.name}: {e!r}")
        for l in self.listeners:
            l.stop()
        self.dns.stop()
        return errors


@pytest.fixture
def rig(request, tmp_path, binaries):
    r = Rig(request, tmp_path)
    try:
        yield r
    finally:
        errors = r.close()
    if errors:
        pytest.fail("; ".join(errors))
