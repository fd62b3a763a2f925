"""Harness for the integration tests: start edgerelayd on loopback with a config of the
test's choosing, talk SMTP to it byte for byte, and read what it stored (edgerelayctl)
and logged (the JSON-lines log).

Nothing here knows the daemon's internals: only the contract (SPEC §2-§4) is used.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

ROUTE_DOMAIN = "rockerduck.example"
HOSTNAME = "edge.test"
QUEUE_ID_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]{16})$")
START_TIMEOUT = 10.0

# Limits of the shared daemons, small enough to reach in a test.
SHARED_SERVER = {
    "max_message_size": "100KiB",
    "max_recipients": 5,
    "max_received_headers": 5,
    "max_errors": 10,
}
SHARED_MAX_MESSAGE_SIZE = 100 * 1024


# ---------------------------------------------------------------------------- programs

def bin_dir() -> Path:
    d = os.environ.get("EDGERELAY_BIN_DIR")
    if not d:
        raise RuntimeError("EDGERELAY_BIN_DIR is not set (the build's programs/ folder)")
    return Path(d)


def program(name: str) -> str:
    p = bin_dir() / name
    if not p.exists():
        raise RuntimeError(f"{p} does not exist; build the {name} target first")
    return str(p)


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free right now, and never one this process was given before: ports are
    picked before anything listens on them (a daemon's SMTP and admin ports, a rig's site
    ports), so a port picked earlier still looks free and could be picked again."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


# ---------------------------------------------------------------------------- config

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string for what we write
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def render_config(workdir: Path, smtp_port: int, admin_port: int, server: dict | None = None,
                  extra: str = "", spool: dict | None = None) -> str:
    """A complete config for a test daemon: everything under workdir, everything on
    loopback; `server` and `spool` add or override keys of those sections, `extra` is
    appended as it stands."""
    srv = {
        "hostname": HOSTNAME,
        "listen": [f"127.0.0.1:{smtp_port}"],
        # 127.0.0.1 (where the tests connect from by default) is OUTSIDE relay_networks;
        # tests that need a trusted client bind their socket to 127.0.0.5.
        "relay_networks": ["127.0.0.5/32"],
    }
    srv.update(server or {})
    lines = ["[server]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in srv.items() if v is not None]
    lines += [
        "",
        "[spool]",
        f"path = {toml_value(str(workdir / 'spool'))}",
        *[f"{k} = {toml_value(v)}" for k, v in (spool or {}).items()],
        "",
        "[dns]",
        # Nobody listens there: any lookup stays on loopback and fails.
        f"nameservers = {toml_value([f'127.0.0.1:{free_port()}'])}",
        "",
        "[log]",
        f"path = {toml_value(str(workdir / 'edgerelay.log'))}",
        "",
        "[admin]",
        f"listen = {toml_value(f'127.0.0.1:{admin_port}')}",
        "",
        "[[route]]",
        f'domain = "{ROUTE_DOMAIN}"',
        'next_hop = "[127.0.0.2]:2599"',
        'tls = "none"',
        "",
    ]
    return "\n".join(lines) + extra


class Daemon:
    """One edgerelayd in the foreground, its config, spool and log under `workdir`."""

    def __init__(self, workdir: Path, server: dict | None = None, extra: str = "", spool: dict | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = self.dir / "edgerelay.toml"
        self.log_path = self.dir / "edgerelay.log"
        self.output_path = self.dir / "edgerelayd.out"
        self.config_path.write_text(render_config(self.dir, self.port, self.admin_port, server, extra, spool))
        self.proc: subprocess.Popen | None = None
        self.exit_codes: list[int] = []

    # -- life cycle

    def start(self, timeout: float = START_TIMEOUT) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.output_path, "ab") as out:
            out.write(f"--- edgerelayd --config {self.config_path} ({time.strftime('%H:%M:%S')})\n".encode())
            out.flush()
            self.proc = subprocess.Popen([program("edgerelayd"), "--config", str(self.config_path)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.dir)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll-connect until the 220 banner arrives; say goodbye properly."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgerelayd exited with status {self.proc.returncode} while starting:\n"
                                   + self.output_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    f = s.makefile("rb")
                    line = f.readline()
                    if line.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        f.readline()
                        return
                    last = line
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(f"edgerelayd did not greet with 220 on port {self.port} within {timeout}s "
                           f"(last: {last!r}):\n" + self.output_tail())

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_codes.append(self.proc.returncode)
                raise AssertionError(f"edgerelayd did not exit within {timeout}s of SIGTERM")
        self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash at an arbitrary moment."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output_tail(self, limit: int = 6000) -> str:
        text = self.output()
        return text if len(text) <= limit else "...\n" + text[-limit:]

    # -- talking to it

    def connect(self, source: str | None = None, timeout: float = 10.0, banner: bool = True) -> "SmtpConn":
        c = SmtpConn("127.0.0.1", self.port, source=source, timeout=timeout)
        if banner:
            c.banner = c.read_reply()
            assert c.banner.code == 220, f"banner: {c.banner}"
        return c

    def session(self, helo: str = "client.test", source: str | None = None) -> "SmtpConn":
        c = self.connect(source=source)
        r = c.cmd(f"EHLO {helo}")
        assert r.code == 250, f"EHLO: {r}"
        return c

    # -- inspection

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([program("edgerelayctl"), "--config", str(self.config_path), *args],
                              capture_output=True, timeout=timeout, cwd=self.dir)

    def queue_list(self) -> list[dict]:
        p = self.ctl("queue", "list", "--json")
        assert p.returncode == 0, f"queue list --json: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError(f"queue list --json printed no JSON ({e}): {p.stdout[:2000]!r}")
        assert isinstance(doc, dict) and isinstance(doc.get("messages"), list), f"queue list --json: {doc!r:.2000}"
        return doc["messages"]

    def queue_show(self, queue_id: str) -> dict:
        p = self.ctl("queue", "show", queue_id, "--json")
        assert p.returncode == 0, f"queue show {queue_id} --json: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError(f"queue show --json printed no JSON ({e}): {p.stdout[:2000]!r}")
        msgs = doc.get("messages") if isinstance(doc, dict) else None
        assert isinstance(msgs, list) and len(msgs) == 1, f"queue show {queue_id} --json: {doc!r:.2000}"
        assert msgs[0].get("queue_id") == queue_id, f"queue show {queue_id} returned {msgs[0].get('queue_id')}"
        return msgs[0]

    def queued(self, queue_id: str) -> dict | None:
        for m in self.queue_list():
            if m.get("queue_id") == queue_id:
                return m
        return None

    def messages_from(self, sender: str) -> list[dict]:
        return [m for m in self.queue_list() if strip_angle(m.get("sender")) == sender]

    def log_events(self) -> list[dict]:
        return read_log(self.log_path)

    def wait_log(self, pred: Callable[[dict], bool], timeout: float = 5.0, what: str = "event") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            events = self.log_events()
            for e in events:
                if pred(e):
                    return e
            if time.monotonic() >= deadline:
                tail = "\n".join(json.dumps(e) for e in events[-15:])
                raise AssertionError(f"no {what} in {self.log_path} within {timeout}s; last events:\n{tail}")
            time.sleep(0.1)


def read_log(path: Path) -> list[dict]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    events = []
    for line in data.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(obj, dict):
            events.append(obj)
    return events


def strip_angle(s) -> str:
    if s is None:
        return ""
    s = str(s).strip()
    if s.startswith("<") and s.endswith(">"):
        s = s[1:-1]
    return s


# ---------------------------------------------------------------------------- SMTP, raw

class Reply:
    """One SMTP reply, possibly multi-line. `line` is the first line without CRLF."""

    def __init__(self, code: int, lines: list[str]):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN "

    @property
    def line(self) -> str:
        return f"{self.code} {self.lines[0]}" if self.lines[0] else str(self.code)

    @property
    def last_line(self) -> str:
        return f"{self.code} {self.lines[-1]}"

    @property
    def enhanced(self) -> str | None:
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)", self.lines[-1])
        return m.group(1) if m else None

    def __str__(self) -> str:
        return " | ".join(f"{self.code} {l}" for l in self.lines)

    __repr__ = __str__


class SmtpClosed(Exception):
    pass


REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$", re.S)


class SmtpConn:
    """A byte-exact SMTP client over a plain socket (optionally upgraded to TLS)."""

    def __init__(self, host: str, port: int, source: str | None = None, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        try:
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.timeout = timeout
        self.banner: Reply | None = None
        self.tls = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout: float | None) -> None:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SmtpClosed("connection closed by the server")
        self.buf += chunk

    def read_line(self, timeout: float | None = None) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                assert line.endswith(b"\r\n"), f"reply line not ended by CRLF: {line!r}"
                return line[:-2]
            try:
                self._fill(timeout)
            except ConnectionResetError as e:
                raise SmtpClosed(f"connection reset by the server ({e})")

    def read_reply(self, timeout: float | None = None) -> Reply:
        lines: list[str] = []
        code = None
        while True:
            raw = self.read_line(timeout)
            m = REPLY_LINE.match(raw)
            assert m, f"malformed reply line {raw!r}"
            c = int(m.group(1))
            assert code is None or c == code, f"multi-line reply changed code: {raw!r} after {lines}"
            code = c
            lines.append(m.group(3).decode("utf-8", errors="replace"))
            if m.group(2) == b" ":
                return Reply(code, lines)

    def cmd(self, line: str, timeout: float | None = None) -> Reply:
        self.send(line + "\r\n")
        return self.read_reply(timeout)

    def pending(self, wait: float = 0.3) -> bytes:
        """Whatever the server sent that we have not read, waiting up to `wait` s."""
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            return data
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return b""
        except OSError:
            return b""

    def wait_closed(self, timeout: float = 5.0) -> bytes:
        """Read until the server closes; returns what came before the close. Fails on
        timeout."""
        data = bytes(self.buf)
        self.buf.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server did not close the connection within {timeout}s (got {data!r:.300})")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                return data
            if not chunk:
                return data
            data += chunk

    def starttls(self, context: ssl.SSLContext | None = None, server_hostname: str = HOSTNAME) -> None:
        assert not self.buf, f"bytes after the STARTTLS reply, before the handshake: {bytes(self.buf)!r}"
        ctx = context or client_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.tls = True

    # -- a transaction

    def mail_rcpt_data(self, sender: str, rcpts: Iterable[str], message: bytes,
                       mail_params: str = "") -> Reply:
        r = self.cmd(f"MAIL FROM:<{sender}>{(' ' + mail_params) if mail_params else ''}")
        assert r.code == 250 and r.enhanced == "2.1.0", f"MAIL FROM:<{sender}>: {r}"
        for rc in rcpts:
            r = self.cmd(f"RCPT TO:<{rc}>")
            assert r.code == 250 and r.enhanced == "2.1.5", f"RCPT TO:<{rc}>: {r}"
        r = self.cmd("DATA")
        assert r.code == 354, f"DATA: {r}"
        self.send(dot_stuff(message) + b".\r\n")
        return self.read_reply()

    def send_message(self, sender: str, rcpts: Iterable[str], message: bytes, mail_params: str = "") -> str:
        """A whole transaction that must be queued; returns the queue id."""
        r = self.mail_rcpt_data(sender, rcpts, message, mail_params)
        return queue_id_of(r)


def queue_id_of(r: Reply) -> str:
    m = QUEUE_ID_RE.match(r.line)
    assert m, f"expected '250 2.0.0 Ok: queued as <16 hex>', got {r}"
    return m.group(1)


def expect(r: Reply, code: int, enhanced: str | None = None, what: str = "") -> None:
    ok = r.code == code and (enhanced is None or r.enhanced == enhanced)
    want = f"{code} {enhanced}" if enhanced else str(code)
    assert ok, f"{what + ': ' if what else ''}expected {want}, got {r}"


def client_tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------- messages

def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_message(message_id: str | None = None, subject: str = "test", body: bytes | str = b"Hello.\r\n",
                 headers: list[str] | None = None, sender: str = "alice@example.org",
                 to: str = f"bob@{ROUTE_DOMAIN}") -> bytes:
    """An RFC 5322 message with CRLF line ends. message_id None = no Message-ID header."""
    h = [f"From: Alice <{sender}>", f"To: <{to}>", f"Subject: {subject}",
         "Date: Thu, 26 Nov 2026 02:00:00 +0000"]
    if message_id is not None:
        h.append(f"Message-ID: <{message_id}>")
    h += headers or []
    if isinstance(body, str):
        body = body.encode("utf-8")
    return ("\r\n".join(h) + "\r\n\r\n").encode("utf-8") + body


def header_section(message: bytes) -> bytes:
    i = message.find(b"\r\n\r\n")
    return message[: i + 2]


def dot_stuff(message: bytes) -> bytes:
    """Transparency (RFC 5321 4.5.2); also ends the data with CRLF if it does not."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    out = b"." + message if message.startswith(b".") else message
    return out.replace(b"\r\n.", b"\r\n..")


def message_id_from_headers(headers: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"(?im)^message-id:[ \t]*(.*?)[ \t\r]*$", headers)]


def crlf(text: str) -> str:
    """The header text as CRLF lines, whichever line ending the tool printed."""
    if "\r\n" in text:
        return text
    return text.replace("\n", "\r\n")


def send_until_stopped(port: int, stop, record: Callable[[str, str, list], None], *, helo: str, sender: str,
                       recipients: Callable[[], list], message: Callable[[int], tuple], pause: Callable[[], float]
                       = lambda: 0.0) -> None:
    """A crash-test client: sends one message after another (reconnecting while the
    daemon restarts) until `stop` is set, and calls record(queue_id, message_id,
    recipients) for every message that got its 250. message(seq) gives (message_id,
    bytes without the final dot)."""
    seq = 0
    while not stop.is_set():
        try:
            c = SmtpConn("127.0.0.1", port, timeout=5)
        except OSError:
            time.sleep(0.02)
            continue
        try:
            if c.read_reply().code != 220 or c.cmd(f"EHLO {helo}").code != 250:
                continue
            while not stop.is_set():
                seq += 1
                rcpts = recipients()
                mid, data = message(seq)
                if c.cmd(f"MAIL FROM:<{sender}>").code != 250:
                    break
                if any(c.cmd(f"RCPT TO:<{r}>").code != 250 for r in rcpts):
                    break
                if c.cmd("DATA").code != 354:
                    break
                c.send(data + b".\r\n")
                m = QUEUE_ID_RE.match(c.read_reply().line)
                if not m:
                    break
                record(m.group(1), mid, rcpts)
                time.sleep(pause())
        except (OSError, SmtpClosed, AssertionError):
            pass  # the daemon died under us; what was not acknowledged does not count
        finally:
            c.close()
