"""The delivery SMTP client (relay/smtp_client.cpp) against real peers on loopback:
aiosmtpd for a real server, and a tiny scripted asyncio server for the replies a real
server rarely gives on demand (refusals, CHUNKING, silence). The client is driven by
tests/tools/smtp_send, which prints one JSON object per run."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.2"
SENDER = "alice@sender.test"
MESSAGE = (b"From: alice@sender.test\r\nTo: bob@rcpt.test\r\nSubject: client test\r\n\r\n"
           b"first line\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nlast line\r\n")


def driver() -> str:
    p = os.environ.get("EDGERELAY_SMTP_SEND")
    if not p:
        d = os.environ.get("EDGERELAY_BIN_DIR")
        if not d:
            raise RuntimeError("set EDGERELAY_SMTP_SEND or EDGERELAY_BIN_DIR (the build's programs/ folder)")
        p = str(Path(d).parent / "tests" / "smtp_send")
    if not Path(p).exists():
        raise RuntimeError(f"{p} does not exist; build the smtp_send target first")
    return p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def send(tmp_path, port, recipients, message=MESSAGE, *, extra=(), env=None, timeout=30):
    msg = tmp_path / f"message-{time.monotonic_ns()}.eml"
    msg.write_bytes(message)
    args = [driver(), "--address", HOST, "--port", str(port), "--from", SENDER, "--message", str(msg),
            "--helo", "client.test", "--command-timeout-ms", "5000", "--connect-timeout-ms", "5000"]
    for r in recipients:
        args += ["--to", r]
    args += list(extra)
    full_env = dict(os.environ)
    full_env.pop("SSL_CERT_FILE", None)
    full_env.pop("SSL_CERT_DIR", None)
    full_env.update(env or {})
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=full_env)
    assert r.returncode == 0, r.stderr
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def replies(result, message=0):
    return [(x["code"], x["enhanced"]) for x in result["messages"][message]["replies"]]


# ------------------------------------------------------------------ aiosmtpd, a real server

class Recorder:
    """aiosmtpd handler: keeps every envelope; refuses what it is told to."""

    def __init__(self, refuse_rcpt=(), mail_reply=None, data_reply=None):
        self.refuse_rcpt = set(refuse_rcpt)
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.envelopes = []
        self.peers = set()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.peers.add(session.peer)
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append({"sender": envelope.mail_from, "recipients": list(envelope.rcpt_tos),
                               "options": list(envelope.mail_options), "content": envelope.original_content,
                               "tls": session.ssl is not None, "peer": session.peer})
        return self.data_reply or "250 2.0.0 OK queued"


class Aiosmtpd:
    def __init__(self, handler, **kwargs):
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(handler, hostname=HOST, port=self.port, server_hostname="mx.test", **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for mx.test, made with the openssl CLI; it is its own CA."""
    d = tmp_path_factory.mktemp("client-tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mx.test",
                    "-addext", "subjectAltName=DNS:mx.test"],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return cert, ctx


# ------------------------------------------------------------------ scripted server

SILENT = object()  # a reply never sent: the server goes quiet
CLOSE = object()   # the server closes the connection instead of replying
DEFAULT_REPLIES = {
    "HELO": "250 scripted.test", "MAIL": "250 2.1.0 ok", "RCPT": "250 2.1.5 ok", "DATA": "354 go ahead",
    ".": "250 2.0.0 queued", "BDAT": "250 2.0.0 chunk ok", "BDAT LAST": "250 2.0.0 queued as CHUNKED",
    "RSET": "250 2.0.0 ok", "QUIT": "221 2.0.0 bye", "NOOP": "250 2.0.0 ok",
}


class Scripted:
    """A raw SMTP server on asyncio in its own thread, answering from a table (a value
    may be a function of the command line). It records the commands grouped by the read
    that brought them (pipelined commands arrive together), the data and BDAT chunks."""

    def __init__(self, *, greeting="220 scripted.test ESMTP", extensions=("PIPELINING", "8BITMIME"),
                 replies=None, silent=False):
        self.greeting = greeting
        self.extensions = list(extensions)
        self.replies = dict(DEFAULT_REPLIES)
        self.replies.update(replies or {})
        self.silent = silent
        self.connections = 0
        self.batches: list[list[str]] = []
        self.commands: list[str] = []
        self.data: list[bytes] = []   # as sent, dot-stuffed, without the final "." line
        self.chunks: list[tuple[int, bool, bytes]] = []
        self.tasks: set[asyncio.Task] = set()

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, HOST, 0), self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        async def stop():
            self.server.close()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def _reply(self, key, line):
        r = self.replies.get(key)
        if r is None:
            return "500 5.5.2 unknown command"
        return r(line) if callable(r) else r

    async def _handle(self, reader, writer):
        self.tasks.add(asyncio.current_task())
        self.connections += 1
        buf = bytearray()

        async def fill():
            data = await reader.read(65536)
            buf.extend(data)
            return bool(data)

        async def line():
            fresh = False
            while b"\r\n" not in buf:
                if not await fill():
                    return None, fresh
                fresh = True
            i = buf.index(b"\r\n")
            out = bytes(buf[:i])
            del buf[:i + 2]
            return out, fresh

        async def exact(n):
            while len(buf) < n:
                if not await fill():
                    return None
            out = bytes(buf[:n])
            del buf[:n]
            return out

        def say(text):
            if text is CLOSE:
                raise ConnectionResetError("scripted close")
            if text is not SILENT:
                writer.write(text.encode() + b"\r\n")

        try:
            if self.silent:
                await reader.read()  # never a word, until the client goes
                return
            say(self.greeting)
            while True:
                raw, fresh = await line()
                if raw is None:
                    return
                text = raw.decode("utf-8", "replace")
                verb = text.split(" ", 1)[0].upper()
                if fresh or not self.batches:
                    self.batches.append([])
                self.batches[-1].append(verb)
                self.commands.append(text)
                if verb == "EHLO":
                    reply = self.replies.get("EHLO")
                    if reply is None:
                        lines = ["scripted.test"] + self.extensions
                        reply = "\r\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{l}"
                                            for i, l in enumerate(lines))
                    say(reply)
                elif verb == "DATA":
                    reply = self._reply("DATA", text)
                    say(reply)
                    if isinstance(reply, str) and reply.startswith("354"):
                        data = bytearray()
                        while True:
                            l, _ = await line()
                            if l is None:
                                return
                            if l == b".":
                                break
                            data += l + b"\r\n"
                        self.data.append(bytes(data))
                        say(self._reply(".", text))
                elif verb == "BDAT":
                    parts = text.split()
                    size, last = int(parts[1]), len(parts) > 2 and parts[2].upper() == "LAST"
                    chunk = await exact(size)
                    if chunk is None:
                        return
                    self.chunks.append((size, last, chunk))
                    say(self._reply("BDAT LAST" if last else "BDAT", text))
                elif verb == "QUIT":
                    say(self._reply("QUIT", text))
                    await writer.drain()
                    return
                else:
                    say(self._reply(verb, text))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.tasks.discard(asyncio.current_task())


def unstuff(data: bytes) -> bytes:
    return b"".join(l[1:] if l.startswith(b".") else l for l in data.splitlines(keepends=True))


# ------------------------------------------------------------------ delivery to aiosmtpd

def test_delivers_envelope_and_content_byte_for_byte(tmp_path):
    with Aiosmtpd(Recorder()) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test", "carol@rcpt.test"], extra=["--8bitmime"])
    assert result["connected"] and not result["tls"]
    assert replies(result) == [(250, "2.0.0"), (250, "2.0.0")]
    assert result["messages"][0]["replies"][0]["line"] == "250 2.0.0 OK queued"
    assert result["messages"][0]["reusable"]
    [env] = server.handler.envelopes
    assert env["sender"] == SENDER
    assert env["recipients"] == ["bob@rcpt.test", "carol@rcpt.test"]
    assert env["content"] == MESSAGE  # dot-stuffed on the wire, unstuffed by the server
    assert f"SIZE={len(MESSAGE)}" in env["options"] and "BODY=8BITMIME" in env["options"]


def test_message_without_trailing_crlf_gets_one(tmp_path):
    message = b"Subject: no end\r\n\r\n.starts with a dot\r\nno CRLF at the end"
    with Aiosmtpd(Recorder()) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], message)
    assert replies(result) == [(250, "2.0.0")]
    assert server.handler.envelopes[0]["content"] == message + b"\r\n"


def test_null_sender(tmp_path):
    with Scripted(extensions=["SIZE"]) as server:
        msg = tmp_path / "m.eml"
        msg.write_bytes(MESSAGE)
        r = subprocess.run([driver(), "--address", HOST, "--port", str(server.port), "--from", "", "--to",
                            "bob@rcpt.test", "--message", str(msg)], capture_output=True, text=True, timeout=30)
        result = json.loads(r.stdout)
    assert replies(result) == [(250, "2.0.0")]
    assert server.commands[1] == f"MAIL FROM:<> SIZE={len(MESSAGE)}"  # "SIZE" alone: no limit


def test_one_recipient_refused_other_delivered(tmp_path):
    with Aiosmtpd(Recorder(refuse_rcpt={"nobody@rcpt.test"})) as server:
        result = send(tmp_path, server.port, ["nobody@rcpt.test", "bob@rcpt.test"])
    assert replies(result) == [(550, "5.1.1"), (250, "2.0.0")]
    assert result["messages"][0]["replies"][0]["text"] == "<nobody@rcpt.test>: no such user"
    assert server.handler.envelopes[0]["recipients"] == ["bob@rcpt.test"]


def test_every_recipient_refused_sends_no_data(tmp_path):
    with Aiosmtpd(Recorder(refuse_rcpt={"a@rcpt.test", "b@rcpt.test"})) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test", "b@rcpt.test"])
    assert replies(result) == [(550, "5.1.1"), (550, "5.1.1")]
    assert result["messages"][0]["reusable"]
    assert server.handler.envelopes == []


def test_mail_refused_applies_to_everyone(tmp_path):
    with Aiosmtpd(Recorder(mail_reply="451 4.3.0 try again later")) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test", "carol@rcpt.test"])
    assert replies(result) == [(451, "4.3.0"), (451, "4.3.0")]
    assert result["messages"][0]["replies"][1]["line"] == "451 4.3.0 try again later"
    assert result["messages"][0]["reusable"]
    assert server.handler.envelopes == []


def test_final_reply_554_for_every_accepted_recipient(tmp_path):
    with Aiosmtpd(Recorder(refuse_rcpt={"x@rcpt.test"}, data_reply="554 5.7.1 message refused")) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test", "x@rcpt.test", "carol@rcpt.test"])
    assert replies(result) == [(554, "5.7.1"), (550, "5.1.1"), (554, "5.7.1")]
    assert result["messages"][0]["replies"][0]["line"] == "554 5.7.1 message refused"


def test_connection_reuse_two_messages_one_connection(tmp_path):
    with Aiosmtpd(Recorder()) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--messages", "2"])
    assert [m["reusable"] for m in result["messages"]] == [True, True]
    assert replies(result, 0) == replies(result, 1) == [(250, "2.0.0")]
    assert len(server.handler.envelopes) == 2
    assert len(server.handler.peers) == 1  # the same client address and port: one connection
    assert all(e["content"] == MESSAGE for e in server.handler.envelopes)


def test_size_limit_smaller_than_message_refused_locally(tmp_path):
    with Aiosmtpd(Recorder(), data_size_limit=100) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test", "carol@rcpt.test"], b"x" * 200 + b"\r\n")
    assert replies(result) == [(552, "5.3.4"), (552, "5.3.4")]
    assert "too big" in result["messages"][0]["replies"][0]["text"]
    assert result["messages"][0]["reusable"] and result["usable"]
    assert server.handler.peers == set()  # no MAIL was sent


def test_smtputf8_needed_but_not_offered(tmp_path):
    with Scripted() as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--smtputf8"])
    assert replies(result) == [(553, "5.6.7")]
    assert "SMTPUTF8" in result["messages"][0]["replies"][0]["text"]
    assert not any(c.upper().startswith("MAIL") for c in server.commands)


def test_smtputf8_offered(tmp_path):
    with Aiosmtpd(Recorder(), enable_SMTPUTF8=True) as server:
        result = send(tmp_path, server.port, ["bøb@rcpt.test"], extra=["--smtputf8"])
    assert replies(result) == [(250, "2.0.0")]
    assert "SMTPUTF8" in server.handler.envelopes[0]["options"]
    assert server.handler.envelopes[0]["recipients"] == ["bøb@rcpt.test"]


# ------------------------------------------------------------------ STARTTLS

def test_starttls_may_with_untrusted_certificate(tmp_path, cert):
    _, ctx = cert
    with Aiosmtpd(Recorder(), tls_context=ctx) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "may", "--host-name", "mx.test"])
    assert result["tls"] is True
    assert replies(result) == [(250, "2.0.0")]
    assert server.handler.envelopes[0]["tls"] is True
    assert server.handler.envelopes[0]["content"] == MESSAGE


def test_tls_none_stays_plaintext(tmp_path, cert):
    _, ctx = cert
    with Aiosmtpd(Recorder(), tls_context=ctx) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "none"])
    assert result["tls"] is False
    assert server.handler.envelopes[0]["tls"] is False


def test_starttls_verify_with_trusted_ca_and_matching_name(tmp_path, cert):
    cert_file, ctx = cert
    with Aiosmtpd(Recorder(), tls_context=ctx) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "verify", "--host-name", "mx.test"],
                      env={"SSL_CERT_FILE": str(cert_file)})
    assert result["tls"] is True
    assert replies(result) == [(250, "2.0.0")]


def test_starttls_verify_name_mismatch_fails(tmp_path, cert):
    cert_file, ctx = cert
    with Aiosmtpd(Recorder(), tls_context=ctx) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"],
                      extra=["--tls", "verify", "--host-name", "other.test"], env={"SSL_CERT_FILE": str(cert_file)})
    assert result["connected"] is False
    assert result["failure"]["code"] == 0
    assert "TLS handshake failed" in result["failure"]["text"]
    assert server.handler.envelopes == []


def test_starttls_verify_untrusted_certificate_fails(tmp_path, cert):
    _, ctx = cert
    with Aiosmtpd(Recorder(), tls_context=ctx) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "verify", "--host-name", "mx.test"],
                      env={"SSL_CERT_FILE": "/nonexistent"})
    assert result["connected"] is False
    assert result["failure"]["code"] == 0 and "certificate" in result["failure"]["text"]


def test_starttls_verify_not_offered(tmp_path):
    with Aiosmtpd(Recorder()) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "verify", "--host-name", "mx.test"])
    assert result["connected"] is False
    assert result["failure"] == {"code": 0, "enhanced": "", "text": "STARTTLS not offered",
                                 "line": "STARTTLS not offered"}


def test_starttls_may_handshake_failure_is_reported(tmp_path):
    # The server says 220 to STARTTLS and then speaks no TLS at all.
    with Scripted(extensions=["PIPELINING", "STARTTLS"], replies={"STARTTLS": "220 2.0.0 go ahead"}) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "may", "--command-timeout-ms", "2000"])
    assert result["connected"] is False and result["failure"]["code"] == 0


def test_starttls_may_refused_continues_in_plaintext(tmp_path):
    with Scripted(extensions=["PIPELINING", "STARTTLS"], replies={"STARTTLS": "454 4.7.0 TLS not available"}) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "may"])
    assert result["tls"] is False
    assert replies(result) == [(250, "2.0.0")]
    assert server.commands[:3] == ["EHLO client.test", "STARTTLS", f"MAIL FROM:<{SENDER}>"]


def test_starttls_verify_refused_is_a_failure(tmp_path):
    with Scripted(extensions=["STARTTLS"], replies={"STARTTLS": "454 4.7.0 TLS not available"}) as server:
        result = send(tmp_path, server.port, ["bob@rcpt.test"], extra=["--tls", "verify", "--host-name", "mx.test"])
    assert result["connected"] is False
    assert result["failure"]["line"] == "454 4.7.0 TLS not available"
    assert server.commands == ["EHLO client.test", "STARTTLS", "QUIT"]


# ------------------------------------------------------------------ scripted dialogues

def test_pipelining_sends_mail_rcpt_data_together(tmp_path):
    with Scripted(extensions=["PIPELINING", "SIZE 1000000"]) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test", "b@rcpt.test"])
    assert replies(result) == [(250, "2.0.0"), (250, "2.0.0")]
    assert ["MAIL", "RCPT", "RCPT", "DATA"] in server.batches
    assert server.commands[1] == f"MAIL FROM:<{SENDER}> SIZE={len(MESSAGE)}"
    assert unstuff(server.data[0]) == MESSAGE
    assert b"\r\n..a line starting with a dot\r\n...two dots\r\n..\r\n" in server.data[0]


def test_without_pipelining_commands_go_one_by_one(tmp_path):
    with Scripted(extensions=["8BITMIME"]) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test", "b@rcpt.test"])
    assert replies(result) == [(250, "2.0.0"), (250, "2.0.0")]
    assert all(len(b) == 1 for b in server.batches), server.batches
    assert server.commands[1] == f"MAIL FROM:<{SENDER}>"  # no SIZE= without SIZE
    assert unstuff(server.data[0]) == MESSAGE


def test_multiline_refusal_text(tmp_path):
    refusal = "550-5.1.1 first line\r\n550-5.1.1 second line\r\n550 5.1.1 third line"
    with Scripted(replies={"RCPT": refusal, "DATA": "554 5.5.1 no valid recipients"}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"])
    assert result["messages"][0]["replies"][0]["line"] == "550 5.1.1 first line second line third line"
    assert server.data == []
    assert server.commands[-2:] == ["RSET", "QUIT"]
    assert result["messages"][0]["reusable"]


def test_pipelined_data_accepted_without_recipients_gets_empty_message(tmp_path):
    # RFC 2920 3.1: a server may say 354 after refusing every RCPT; the client then
    # ends the data at once, sending nothing of the message.
    with Scripted(replies={"RCPT": "550 5.1.1 no"}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"])
    assert replies(result) == [(550, "5.1.1")]
    assert server.data == [b""]
    assert result["messages"][0]["reusable"]


def test_greeting_554_is_a_failure(tmp_path):
    with Scripted(greeting="554 5.7.1 go away") as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"])
    assert result["connected"] is False
    assert result["failure"]["code"] == 554 and result["failure"]["line"] == "554 5.7.1 go away"
    assert server.commands == []


def test_ehlo_refused_falls_back_to_helo(tmp_path):
    with Scripted(replies={"EHLO": "502 5.5.1 no EHLO here"}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"], extra=["--8bitmime"])
    assert replies(result) == [(250, "2.0.0")]
    assert server.commands[0] == "EHLO client.test" and server.commands[1] == "HELO client.test"
    assert server.commands[2] == f"MAIL FROM:<{SENDER}>"  # no extensions after HELO


def test_helo_refused_too(tmp_path):
    with Scripted(replies={"EHLO": "500 5.5.1 what", "HELO": "550 5.7.1 not you"}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"])
    assert result["connected"] is False and result["failure"]["line"] == "550 5.7.1 not you"


def test_421_during_rcpt_ends_the_connection(tmp_path):
    with Scripted(extensions=[], replies={"RCPT": lambda l: "421 4.3.2 shutting down" if "b@" in l else
                                          "250 2.1.5 ok"}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test", "b@rcpt.test", "c@rcpt.test"])
    assert replies(result) == [(421, "4.3.2")] * 3
    assert result["messages"][0]["reusable"] is False and result["usable"] is False


def test_chunking_uses_bdat_without_dot_stuffing(tmp_path):
    with Scripted(extensions=["PIPELINING", "CHUNKING", "8BITMIME"]) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"], extra=["--messages", "2"])
    assert replies(result) == [(250, "2.0.0")]
    assert result["messages"][0]["replies"][0]["text"] == "queued as CHUNKED"
    assert server.chunks == [(len(MESSAGE), True, MESSAGE)] * 2
    assert "DATA" not in [c.upper() for c in server.commands]
    assert server.connections == 1


def test_chunking_large_message_in_several_chunks(tmp_path):
    message = (b"x" * 998 + b"\r\n") * 2000  # 2 MB: more than one chunk
    with Scripted(extensions=["CHUNKING"]) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"], message)
    assert replies(result) == [(250, "2.0.0")]
    assert [last for _, last, _ in server.chunks] == [False] * (len(server.chunks) - 1) + [True]
    assert len(server.chunks) >= 2
    assert b"".join(c for _, _, c in server.chunks) == message


def test_large_message_with_data(tmp_path):
    message = b"".join(b".%06d line\r\n" % i for i in range(200000))  # 2.6 MB, every line dotted
    with Scripted() as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"], message)
    assert replies(result) == [(250, "2.0.0")]
    assert unstuff(server.data[0]) == message


def test_connect_to_closed_port(tmp_path):
    port = free_port()
    result = send(tmp_path, port, ["a@rcpt.test"])
    assert result["connected"] is False
    assert result["failure"]["code"] == 0 and "refused" in result["failure"]["text"].lower()


def test_silent_server_times_out(tmp_path):
    with Scripted(silent=True) as server:
        start = time.monotonic()
        result = send(tmp_path, server.port, ["a@rcpt.test"], extra=["--command-timeout-ms", "1000"])
        elapsed = time.monotonic() - start
    assert result["connected"] is False
    assert result["failure"]["code"] == 0 and "timeout" in result["failure"]["text"]
    assert elapsed < 4, elapsed


def test_server_silent_after_mail_times_out(tmp_path):
    with Scripted(extensions=[], replies={"MAIL": SILENT}) as server:
        start = time.monotonic()
        result = send(tmp_path, server.port, ["a@rcpt.test", "b@rcpt.test"], extra=["--command-timeout-ms", "800"])
        elapsed = time.monotonic() - start
    assert [r["line"] for r in result["messages"][0]["replies"]] == ["timeout after MAIL FROM"] * 2
    assert result["messages"][0]["reusable"] is False and result["usable"] is False
    assert elapsed < 4, elapsed


def test_server_silent_after_data_times_out(tmp_path):
    with Scripted(replies={".": SILENT}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"],
                      extra=["--command-timeout-ms", "800", "--data-timeout-ms", "800"])
    assert replies(result) == [(0, "")]
    assert result["messages"][0]["replies"][0]["text"] == "timeout after end of data"


def test_connection_lost_after_rcpt(tmp_path):
    with Scripted(extensions=[], replies={"RCPT": CLOSE}) as server:
        result = send(tmp_path, server.port, ["a@rcpt.test"])
    assert result["messages"][0]["replies"][0]["code"] == 0
    assert result["messages"][0]["replies"][0]["text"].startswith("connection lost after RCPT TO")
