"""Intake happy paths: what well-behaved clients do, and what ends up in the spool."""

from __future__ import annotations

import re
import smtplib
import subprocess

from edgerelay_harness import (HOSTNAME, ROUTE_DOMAIN, SHARED_MAX_MESSAGE_SIZE, crlf, expect, header_section,
                               make_message, message_id_from_headers, queue_id_of, strip_angle, unique)

RCPT = f"bob@{ROUTE_DOMAIN}"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


def find_by_message_id(daemon, message_id: str) -> dict:
    for m in daemon.queue_list():
        if strip_angle(m.get("message_id")) == message_id:
            return m
    raise AssertionError(f"no queued message with Message-ID <{message_id}>")


def stored_prefix(show: dict, original: bytes) -> str:
    """The header lines the relay put before the client's own header section, checking
    that the client's headers are stored byte for byte."""
    headers = crlf(show["headers"])
    orig = header_section(original).decode("utf-8")
    i = headers.find(orig)
    assert i >= 0, f"stored headers do not contain the client's header section verbatim:\n{headers!r}\n" \
                   f"expected to contain:\n{orig!r}"
    rest = headers[i + len(orig):]
    assert rest in ("", "\r\n"), f"stored headers have extra text after the client's: {rest!r}"
    return headers[:i]


def test_banner(relay):
    c = relay.connect()
    assert c.banner.line == f"220 {HOSTNAME} ESMTP edgerelay"
    assert len(c.banner.lines) == 1
    c.close()


def test_ehlo_advertises_extensions(relay):
    c = relay.connect()
    r = c.cmd("EHLO client.test")
    expect(r, 250)
    assert r.lines[0].split()[0] == HOSTNAME, f"EHLO greeting names {r.lines[0]!r}"
    kw = {l.split()[0].upper(): l for l in r.lines[1:]}
    for ext in ("PIPELINING", "SIZE", "VRFY", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"):
        assert ext in kw, f"EHLO does not advertise {ext}: {r}"
    assert kw["SIZE"].split() == ["SIZE", str(SHARED_MAX_MESSAGE_SIZE)]
    assert "STARTTLS" not in kw, f"STARTTLS advertised without a certificate: {r}"
    c.close()


def test_smtplib_sendmail(relay):
    mid = unique("smtplib") + "@client.test"
    sender = unique("s") + "@example.org"
    msg = make_message(mid, subject="smtplib", body="Line one.\r\nLine two.\r\n", sender=sender)
    with smtplib.SMTP("127.0.0.1", relay.port, local_hostname="client.test", timeout=10) as s:
        refused = s.sendmail(sender, [RCPT, f"carol@{ROUTE_DOMAIN}"], msg)
        assert refused == {}
    m = find_by_message_id(relay, mid)
    assert strip_angle(m["sender"]) == sender
    assert sorted(r["address"] for r in m["recipients"]) == sorted([RCPT, f"carol@{ROUTE_DOMAIN}"])


def test_queue_list_fields_of_a_new_message(relay):
    mid = unique("fields") + "@client.test"
    sender = unique("s") + "@example.org"
    c = relay.session()
    qid = c.send_message(sender, [RCPT], make_message(mid, sender=sender))
    c.cmd("QUIT")
    m = relay.queued(qid)
    assert m is not None, f"{qid} acknowledged but not in queue list"
    for key in ("queue_id", "message_id", "arrival", "sender", "recipients", "state", "attempts",
                "last_reply", "size"):
        assert key in m, f"queue list entry lacks {key!r}: {m}"
    assert strip_angle(m["message_id"]) == mid
    assert RFC3339_UTC.match(m["arrival"]), f"arrival not RFC 3339 UTC: {m['arrival']!r}"
    assert strip_angle(m["sender"]) == sender
    assert isinstance(m["size"], int) and m["size"] > 0
    assert len(m["recipients"]) == 1
    r = m["recipients"][0]
    for key in ("address", "state", "attempts", "last_reply"):
        assert key in r, f"recipient lacks {key!r}: {r}"
    assert r["address"] == RCPT
    # Delivery starts at once and this rig's next hop is down, so a slow listing may
    # already see the message deferred (by an attempt, or parked while the route is
    # down, which is no attempt of its own); the message and its recipient must agree.
    if m["state"] == "ready":
        assert m["attempts"] == 0 and r["state"] == "pending" and r["attempts"] == 0, m
    else:
        assert m["state"] == "deferred" and r["state"] == "deferred", m
        assert r["last_reply"] and m["last_reply"], m


def test_queue_show_json_and_text(relay):
    mid = unique("show") + "@client.test"
    sender = unique("s") + "@example.org"
    c = relay.session(helo="show-client.test")
    msg = make_message(mid, subject="Show me", sender=sender)
    qid = c.send_message(sender, [RCPT], msg)
    c.close()
    s = relay.queue_show(qid)
    for key in ("queue_id", "message_id", "arrival", "sender", "recipients", "state", "attempts",
                "last_reply", "size", "client_ip", "helo", "tls", "headers"):
        assert key in s, f"queue show lacks {key!r}: {s}"
    assert s["client_ip"] == "127.0.0.1"
    assert s["helo"] == "show-client.test"
    assert not s["tls"] or s["tls"] in ("none", "no"), f"tls {s['tls']!r} on a plain session"
    assert "Subject: Show me" in s["headers"]
    p = relay.ctl("queue", "show", qid)
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode("utf-8", errors="replace")
    assert qid in text and "Subject: Show me" in text and sender in text, text


def test_received_prepended_headers_verbatim_and_dot_unstuffing(relay):
    """The stored message is the client's, byte for byte, after one Received: header.
    Lines that start with a dot were sent doubled and must be stored once-dotted."""
    mid = unique("verbatim") + "@client.test"
    sender = unique("s") + "@example.org"
    body = (b"First line.\r\n"
            b".starts with one dot\r\n"
            b"..starts with two dots\r\n"
            b".\tdot tab\r\n"
            b"...\r\n"
            b"last line without a dot\r\n")
    msg = make_message(mid, subject="  spaced   subject  ", sender=sender, body=body,
                       headers=["X-Folded: first part", "\tsecond part", "  third part",
                                "X-Trailing: value \t", "x-lower-case:no space"])
    c = relay.session(helo="verbatim.test")
    qid = c.send_message(sender, [RCPT], msg)
    c.close()
    s = relay.queue_show(qid)
    prefix = stored_prefix(s, msg)
    assert prefix.startswith("Received:"), f"stored headers do not start with Received:: {prefix!r}"
    assert HOSTNAME in prefix, f"Received: header does not name {HOSTNAME}: {prefix!r}"
    # Only the Received: header (and its folded lines) was added.
    for line in prefix.split("\r\n")[1:]:
        assert line == "" or line[0] in " \t", f"unexpected header added before the client's: {line!r}"
    assert message_id_from_headers(s["headers"]) == [f"<{mid}>"]
    # The body is not shown, but its size is: the stored size (or the size as received),
    # counting the unstuffed body. A relay that kept the stuffing would be 2 octets off.
    stored = len(prefix.encode()) + len(msg)
    assert s["size"] in (stored, len(msg)), \
        f"size {s['size']}: expected {stored} (stored) or {len(msg)} (as received)"


def test_message_id_added_when_missing(relay):
    sender = unique("noid") + "@example.org"
    msg = make_message(None, subject="no id", sender=sender)
    c = relay.session()
    qid = c.send_message(sender, [RCPT], msg)
    c.close()
    s = relay.queue_show(qid)
    ids = message_id_from_headers(s["headers"])
    assert len(ids) == 1, f"expected one added Message-ID header, headers:\n{s['headers']}"
    assert re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", ids[0]), ids[0]
    assert strip_angle(s["message_id"]) == strip_angle(ids[0])
    assert crlf(s["headers"]).startswith("Received:")


def test_pipelining_replies_in_order(relay):
    c = relay.session()
    s1, s2 = unique("p1") + "@example.org", unique("p2") + "@example.org"
    m1 = make_message(unique("pipe") + "@client.test", sender=s1)
    m2 = make_message(unique("pipe") + "@client.test", sender=s2)
    c.send(f"MAIL FROM:<{s1}>\r\nRCPT TO:<{RCPT}>\r\nRCPT TO:<someone@evil.test>\r\n"
           f"RCPT TO:<carol@{ROUTE_DOMAIN}>\r\nDATA\r\n")
    expect(c.read_reply(), 250, "2.1.0", "MAIL")
    expect(c.read_reply(), 250, "2.1.5", "RCPT 1")
    expect(c.read_reply(), 554, "5.7.1", "RCPT to a domain not served")
    expect(c.read_reply(), 250, "2.1.5", "RCPT 3")
    expect(c.read_reply(), 354, None, "DATA")
    # End of data, then a whole second transaction, in one write.
    c.send(m1 + b".\r\n" + f"MAIL FROM:<{s2}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
    q1 = queue_id_of(c.read_reply())
    expect(c.read_reply(), 250, "2.1.0", "MAIL 2")
    expect(c.read_reply(), 250, "2.1.5", "RCPT 2")
    expect(c.read_reply(), 354, None, "DATA 2")
    c.send(m2 + b".\r\nNOOP\r\nQUIT\r\n")
    q2 = queue_id_of(c.read_reply())
    expect(c.read_reply(), 250, "2.0.0", "NOOP")
    expect(c.read_reply(), 221, "2.0.0", "QUIT")
    c.wait_closed()
    assert q1 != q2
    e1 = relay.queued(q1)
    assert e1 and sorted(r["address"] for r in e1["recipients"]) == sorted([RCPT, f"carol@{ROUTE_DOMAIN}"])
    assert relay.queued(q2)


def test_bdat_chunking(relay):
    mid = unique("bdat") + "@client.test"
    sender = unique("s") + "@example.org"
    # BDAT data is not dot-stuffed: lines with dots, and a CRLF.CRLF, are message text.
    msg = make_message(mid, subject="chunks", sender=sender,
                       body=b"hello world\r\n..two dots stay two\r\n.\r\nafter a lone dot\r\n")
    chunks = [msg[:5], msg[5:60], msg[60:]]
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    for ch in chunks:
        c.send(f"BDAT {len(ch)}\r\n".encode() + ch)
        expect(c.read_reply(), 250, "2.0.0", "BDAT chunk")
    qid = queue_id_of(c.cmd("BDAT 0 LAST"))
    # A second message in one pipelined write, data on the LAST chunk.
    mid2 = unique("bdat2") + "@client.test"
    msg2 = make_message(mid2, sender=sender, body=b"second\r\n")
    c.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{RCPT}>\r\nBDAT 7\r\n".encode() + msg2[:7]
           + f"BDAT {len(msg2) - 7} LAST\r\n".encode() + msg2[7:] + b"NOOP\r\n")
    expect(c.read_reply(), 250, "2.1.0")
    expect(c.read_reply(), 250, "2.1.5")
    expect(c.read_reply(), 250, "2.0.0", "BDAT 7")
    qid2 = queue_id_of(c.read_reply())
    expect(c.read_reply(), 250, "2.0.0", "NOOP after BDAT LAST")
    c.close()
    s = relay.queue_show(qid)
    assert strip_angle(s["message_id"]) == mid
    prefix = stored_prefix(s, msg)
    assert s["size"] in (len(prefix.encode()) + len(msg), len(msg)), \
        f"size {s['size']} does not match the chunks sent ({len(msg)} octets + {len(prefix.encode())} added)"
    assert strip_angle(relay.queue_show(qid2)["message_id"]) == mid2


def test_8bitmime(relay):
    mid = unique("8bit") + "@client.test"
    sender = unique("s") + "@example.org"
    body = "Grüße aus Köln — ünïcödé\r\n".encode("utf-8") + bytes(range(0x80, 0x100)).replace(b"\r", b"") + b"\r\n"
    msg = make_message(mid, sender=sender, body=body,
                       headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                                "Content-Transfer-Encoding: 8bit"])
    c = relay.session()
    qid = c.send_message(sender, [RCPT], msg, mail_params="BODY=8BITMIME")
    expect(c.cmd(f"MAIL FROM:<{sender}> BODY=7BIT"), 250, "2.1.0")
    c.close()
    s = relay.queue_show(qid)
    prefix = stored_prefix(s, msg)
    assert s["size"] in (len(prefix.encode()) + len(msg), len(msg))


def test_smtputf8_addresses(relay):
    mid = unique("utf8") + "@client.test"
    sender = "jörg-" + unique("s") + "@exämple.org"
    rcpt = f"müller@{ROUTE_DOMAIN}"
    msg = make_message(mid, sender=sender, to=rcpt, subject="Ümlaut")
    c = relay.session()
    qid = c.send_message(sender, [rcpt], msg, mail_params="SMTPUTF8")
    c.close()
    m = relay.queued(qid)
    assert m is not None
    assert strip_angle(m["sender"]) == sender
    assert [r["address"] for r in m["recipients"]] == [rcpt]


def test_null_sender(relay):
    mid = unique("null") + "@client.test"
    c = relay.session()
    qid = c.send_message("", [RCPT], make_message(mid, sender="mailer-daemon@example.org"))
    c.close()
    m = relay.queued(qid)
    assert m is not None and strip_angle(m["sender"]) == ""


def test_rset_mid_transaction(relay):
    sender = unique("rset") + "@example.org"
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<first@{ROUTE_DOMAIN}>"), 250, "2.1.5")
    expect(c.cmd("RSET"), 250, "2.0.0")
    expect(c.cmd("DATA"), 503, "5.5.1", "DATA after RSET")
    qid = c.send_message(sender, [f"second@{ROUTE_DOMAIN}"], make_message(unique("rset") + "@c.test"))
    c.cmd("QUIT")
    m = relay.queued(qid)
    assert [r["address"] for r in m["recipients"]] == [f"second@{ROUTE_DOMAIN}"]
    assert len(relay.messages_from(sender)) == 1


def test_several_messages_per_connection(relay):
    sender = unique("multi") + "@example.org"
    c = relay.session()
    qids = [c.send_message(sender, [RCPT], make_message(unique("multi") + "@c.test", sender=sender))
            for _ in range(4)]
    expect(c.cmd("QUIT"), 221, "2.0.0")
    assert len(set(qids)) == 4
    assert sorted(m["queue_id"] for m in relay.messages_from(sender)) == sorted(qids)


def test_helo_instead_of_ehlo(relay):
    c = relay.connect()
    r = c.cmd("HELO old-client.test")
    expect(r, 250)
    assert len(r.lines) == 1 and HOSTNAME in r.lines[0], f"HELO reply: {r}"
    sender = unique("helo") + "@example.org"
    qid = c.send_message(sender, [RCPT], make_message(unique("helo") + "@c.test", sender=sender))
    c.close()
    assert relay.queue_show(qid)["helo"] == "old-client.test"


def test_vrfy_help_noop_quit(relay):
    c = relay.session()
    expect(c.cmd(f"VRFY bob@{ROUTE_DOMAIN}"), 252, "2.5.0", "VRFY")
    expect(c.cmd("HELP"), 214, None, "HELP")
    expect(c.cmd("NOOP"), 250, "2.0.0", "NOOP")
    expect(c.cmd("noop lower case with argument"), 250, "2.0.0", "noop")
    expect(c.cmd("RSET"), 250, "2.0.0", "RSET")
    expect(c.cmd("QUIT"), 221, "2.0.0", "QUIT")
    c.wait_closed(timeout=5)


def test_relay_from_relay_networks(relay):
    """127.0.0.5 is in relay_networks: any recipient domain is accepted."""
    sender = unique("trusted") + "@example.org"
    c = relay.session(source="127.0.0.5")
    qid = c.send_message(sender, ["someone@evil.test", f"bob@{ROUTE_DOMAIN}"], make_message(unique("t") + "@c"))
    c.close()
    assert relay.queue_show(qid)["client_ip"] == "127.0.0.5"


def test_receive_log_event(relay):
    mid = unique("logged") + "@client.test"
    sender = unique("s") + "@example.org"
    c = relay.session(helo="logger.test")
    qid = c.send_message(sender, [RCPT, f"carol@{ROUTE_DOMAIN}"], make_message(mid, sender=sender))
    c.close()
    e = relay.wait_log(lambda e: e.get("event") == "receive" and e.get("queue_id") == qid,
                       what=f"receive event for {qid}")
    for key in ("time", "queue_id", "message_id", "client_ip", "helo", "tls", "sender", "recipients", "size"):
        assert key in e, f"receive event lacks {key!r}: {e}"
    assert RFC3339_UTC.match(e["time"]), e["time"]
    assert strip_angle(e["message_id"]) == mid
    assert e["client_ip"] == "127.0.0.1"
    assert e["helo"] == "logger.test"
    assert e["tls"] is False
    assert strip_angle(e["sender"]) == sender
    rcpts = [r["address"] if isinstance(r, dict) else r for r in e["recipients"]]
    assert sorted(rcpts) == sorted([RCPT, f"carol@{ROUTE_DOMAIN}"])
    assert isinstance(e["size"], int) and e["size"] > 0


def test_swaks_plain_send(relay):
    mid = unique("swaks") + "@client.test"
    sender = unique("swaks") + "@example.org"
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(relay.port), "--from", sender,
                        "--to", RCPT, "--helo", "swaks.test", "--header", f"Message-Id: <{mid}>",
                        "--body", "Sent by swaks.\n.leading dot\n", "--timeout", "10"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, f"swaks exit {p.returncode}:\n{out}\n{p.stderr.decode(errors='replace')}"
    m = re.search(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", out)
    assert m, out
    s = relay.queue_show(m.group(1))
    assert strip_angle(s["message_id"]) == mid and s["helo"] == "swaks.test"


def test_swaks_pipelined_send(relay):
    mid = unique("swakspipe") + "@client.test"
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(relay.port), "--pipeline",
                        "--from", "pipe@example.org", "--to", f"{RCPT},carol@{ROUTE_DOMAIN}",
                        "--header", f"Message-Id: <{mid}>", "--timeout", "10"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    assert find_by_message_id(relay, mid)
