"""STARTTLS (RFC 3207): offered only with a certificate, usable by real clients, and
no plaintext command survives the upgrade."""

from __future__ import annotations

import re
import smtplib
import ssl
import subprocess

from edgerelay_harness import (HOSTNAME, ROUTE_DOMAIN, client_tls_context, expect, make_message, strip_angle,
                               unique)

RCPT = f"bob@{ROUTE_DOMAIN}"


def ehlo_keywords(r) -> set[str]:
    return {l.split()[0].upper() for l in r.lines[1:]}


def test_starttls_offered_only_with_certificate(relay, tls_relay):
    with relay.connect() as c:
        assert "STARTTLS" not in ehlo_keywords(c.cmd("EHLO client.test"))
        expect(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS when not offered")
        expect(c.cmd("NOOP"), 250, "2.0.0", "session after refused STARTTLS")
    with tls_relay.connect() as c:
        assert "STARTTLS" in ehlo_keywords(c.cmd("EHLO client.test"))


def test_smtplib_starttls_send(tls_relay, tls_files):
    cert, _ = tls_files
    mid = unique("tls-smtplib") + "@client.test"
    sender = unique("tls") + "@example.org"
    ctx = ssl.create_default_context(cafile=str(cert))  # verifies: the cert names 127.0.0.1
    with smtplib.SMTP("127.0.0.1", tls_relay.port, local_hostname="tls-client.test", timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS advertised again inside TLS"
        assert s.sock.version() is not None
        assert s.sendmail(sender, [RCPT], make_message(mid, sender=sender)) == {}
    msgs = [m for m in tls_relay.queue_list() if strip_angle(m.get("message_id")) == mid]
    assert len(msgs) == 1
    qid = msgs[0]["queue_id"]
    assert tls_relay.queue_show(qid)["tls"] not in (False, None, "", "none", "no")
    e = tls_relay.wait_log(lambda e: e.get("event") == "receive" and e.get("queue_id") == qid,
                           what=f"receive event for {qid}")
    assert e["tls"] is True, f"receive event of a TLS session: {e}"
    assert e["helo"] == "tls-client.test"


def test_swaks_starttls_send(tls_relay):
    mid = unique("tls-swaks") + "@client.test"
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(tls_relay.port), "--tls",
                        "--from", "swaks-tls@example.org", "--to", RCPT, "--helo", "swaks-tls.test",
                        "--header", f"Message-Id: <{mid}>", "--timeout", "10"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, f"swaks --tls exit {p.returncode}:\n{out}\n{p.stderr.decode(errors='replace')}"
    assert "TLS started" in out, out
    m = re.search(r"<~\s+250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", out)
    assert m, f"no queued reply inside TLS in swaks output:\n{out}"
    qid = m.group(1)
    assert strip_angle(tls_relay.queue_show(qid)["message_id"]) == mid
    e = tls_relay.wait_log(lambda e: e.get("event") == "receive" and e.get("queue_id") == qid,
                           what=f"receive event for {qid}")
    assert e["tls"] is True and e["helo"] == "swaks-tls.test"


def test_pipelined_command_after_starttls_is_discarded(tls_relay):
    """RFC 3207 §4.2 / CVE-2011-0411: 'STARTTLS\\r\\nNOOP\\r\\n' in one write; the NOOP
    must be answered neither in plaintext nor inside TLS."""
    c = tls_relay.connect()
    c.cmd("EHLO client.test")
    c.send(b"STARTTLS\r\nNOOP\r\n")
    expect(c.read_reply(), 220, "2.0.0", "STARTTLS")
    leaked = c.pending(wait=0.5)
    assert leaked == b"", f"server answered the pipelined NOOP in plaintext: {leaked!r}"
    c.starttls()  # a server that fed 'NOOP\r\n' to TLS fails the handshake here
    r = c.cmd("EHLO client.test")
    assert r.code == 250 and r.lines[0].split()[0] == HOSTNAME, \
        f"first reply inside TLS is not the EHLO reply (the NOOP was run?): {r}"
    assert "STARTTLS" not in ehlo_keywords(r)
    expect(c.cmd("NOOP"), 250, "2.0.0")
    assert c.pending(wait=0.3) == b"", "extra replies inside TLS"
    expect(c.cmd("QUIT"), 221, "2.0.0")
    c.close()


def test_pipelined_mail_after_starttls_is_discarded(tls_relay):
    c = tls_relay.connect()
    c.cmd("EHLO client.test")
    sender = unique("injected") + "@example.org"
    c.send(f"STARTTLS\r\nMAIL FROM:<{sender}>\r\n".encode())
    expect(c.read_reply(), 220, "2.0.0", "STARTTLS")
    assert c.pending(wait=0.5) == b""
    c.starttls()
    expect(c.cmd("EHLO client.test"), 250)
    # Had the MAIL been kept, this would be a nested MAIL (503).
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", "MAIL inside TLS")
    c.close()


def test_ehlo_required_again_after_starttls(tls_relay):
    c = tls_relay.connect()
    c.cmd("EHLO client.test")
    expect(c.cmd("STARTTLS"), 220, "2.0.0")
    c.starttls()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1", "MAIL before EHLO inside TLS")
    expect(c.cmd("EHLO client.test"), 250)
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    c.close()


def test_starttls_inside_tls_and_with_parameter(tls_relay):
    c = tls_relay.connect()
    c.cmd("EHLO client.test")
    expect(c.cmd("STARTTLS now"), 501, "5.5.4", "STARTTLS with a parameter")
    expect(c.cmd("STARTTLS"), 220, "2.0.0")
    c.starttls()
    c.cmd("EHLO client.test")
    expect(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS inside TLS")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    c.close()


def test_tls_session_queues_with_tls_flag(tls_relay):
    c = tls_relay.connect()
    c.cmd("EHLO client.test")
    expect(c.cmd("STARTTLS"), 220, "2.0.0")
    c.starttls(client_tls_context())
    c.cmd("EHLO raw-tls.test")
    mid = unique("rawtls") + "@client.test"
    qid = c.send_message("raw@example.org", [RCPT], make_message(mid))
    c.close()
    s = tls_relay.queue_show(qid)
    assert s["helo"] == "raw-tls.test"
    assert s["tls"] not in (False, None, "", "none", "no")
