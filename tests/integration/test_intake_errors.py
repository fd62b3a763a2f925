"""Every row of the SPEC §4 reply table that the shared daemon can reach: the exact
code and enhanced status code, nothing queued on a refused message, and the session
still usable afterwards (except where the reply is a 421)."""

from __future__ import annotations

import time

import pytest

from edgerelay_harness import (ROUTE_DOMAIN, SHARED_MAX_MESSAGE_SIZE, SHARED_SERVER, expect, make_message,
                               queue_id_of, unique)

RCPT = f"bob@{ROUTE_DOMAIN}"
MAX_RCPT = SHARED_SERVER["max_recipients"]
MAX_RECEIVED = SHARED_SERVER["max_received_headers"]
MAX_ERRORS = SHARED_SERVER["max_errors"]


def still_works(daemon, c, sender: str | None = None) -> str:
    """The session accepts a whole new message after an error; returns its queue id."""
    sender = sender or unique("after") + "@example.org"
    return c.send_message(sender, [RCPT], make_message(unique("after") + "@c.test", sender=sender))


def refused_data(daemon, raw_data: bytes, code: int, enhanced: str):
    """Send raw_data (already stuffed, ending with CRLF.CRLF) after DATA; expect the refusal
    after the end of data, nothing queued for the transaction, and the session usable."""
    sender = unique("refused") + "@example.org"
    c = daemon.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    expect(c.cmd("DATA"), 354)
    c.send(raw_data)
    expect(c.read_reply(), code, enhanced, "reply after the end of data")
    expect(c.cmd("NOOP"), 250, "2.0.0", "NOOP after the refused message")
    qid = still_works(daemon, c)
    c.cmd("QUIT")
    assert daemon.messages_from(sender) == [], "a refused message was queued"
    assert daemon.queued(qid), "the message after the refused one is not queued"


# ---------------------------------------------------------------------------- sequence

def test_mail_before_helo(relay):
    c = relay.connect()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1", "MAIL before EHLO")
    expect(c.cmd("EHLO client.test"), 250)
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")


def test_rcpt_before_mail(relay):
    c = relay.session()
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 503, "5.5.1", "RCPT before MAIL")
    still_works(relay, c)


def test_data_before_mail_and_before_rcpt(relay):
    c = relay.session()
    expect(c.cmd("DATA"), 503, "5.5.1", "DATA before MAIL")
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("DATA"), 503, "5.5.1", "DATA before RCPT")
    expect(c.cmd("RSET"), 250, "2.0.0")
    still_works(relay, c)


def test_data_when_every_rcpt_was_rejected(relay):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<someone@evil.test>"), 554, "5.7.1")
    expect(c.cmd("DATA"), 554, "5.5.1", "DATA with no valid recipient")
    expect(c.cmd("RSET"), 250, "2.0.0")
    still_works(relay, c)


def test_nested_mail(relay):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("MAIL FROM:<b@example.org>"), 503, "5.5.1", "nested MAIL")


def test_bdat_before_mail_consumes_the_chunk(relay):
    """RFC 3030: the chunk is read even when BDAT is refused; its bytes are not commands."""
    c = relay.session()
    chunk = b"QUIT\r\nabcd"
    c.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
    expect(c.read_reply(), 503, "5.5.1", "BDAT before MAIL")
    expect(c.cmd("NOOP"), 250, "2.0.0", "NOOP after the refused chunk (was its QUIT run?)")


# ---------------------------------------------------------------------------- commands

def test_unknown_command(relay):
    c = relay.session()
    expect(c.cmd("FROB the widget"), 500, "5.5.2")
    expect(c.cmd("MAILFROM:<a@example.org>"), 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("line", ["EXPN staff", "TURN", "ETRN rockerduck.example"])
def test_unimplemented_commands(relay, line):
    c = relay.session()
    expect(c.cmd(line), 502, "5.5.1", line)
    expect(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("setup, line", [
    ([], "HELO"),
    ([], "EHLO"),
    ([], "MAIL TO:<a@example.org>"),
    ([], "MAIL FROM:<a@example.org> SIZE=many"),
    (["MAIL FROM:<a@example.org>"], f"RCPT FROM:<{RCPT}>"),
    (["MAIL FROM:<a@example.org>", f"RCPT TO:<{RCPT}>"], "BDAT lots"),
])
def test_bad_syntax(relay, setup, line):
    c = relay.session()
    for s in setup:
        assert c.cmd(s).code == 250, s
    expect(c.cmd(line), 501, "5.5.4", line)
    expect(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("setup, line", [
    ([], "MAIL FROM:<a@example.org> AUTH=<>"),
    ([], "MAIL FROM:<a@example.org> FROBNICATE=YES"),
    (["MAIL FROM:<a@example.org>"], f"RCPT TO:<{RCPT}> NOTIFY=NEVER"),
    (["MAIL FROM:<a@example.org>"], f"RCPT TO:<{RCPT}> ORCPT=rfc822;{RCPT}"),
])
def test_unknown_parameter(relay, setup, line):
    c = relay.session()
    for s in setup:
        assert c.cmd(s).code == 250, s
    expect(c.cmd(line), 555, "5.5.4", line)
    expect(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("addr", ["user@", "user@@rockerduck.example", "a..b@rockerduck.example",
                                  "user@rockerduck..example", "us(er@rockerduck.example"])
def test_malformed_recipient(relay, addr):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{addr}>"), 501, "5.1.3", f"RCPT TO:<{addr}>")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")


@pytest.mark.parametrize("addr", ["a@", "a@@example.org", "a..b@example.org", "a@example..org", ".a@example.org"])
def test_malformed_sender(relay, addr):
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{addr}>"), 501, "5.1.7", f"MAIL FROM:<{addr}>")
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")


def test_non_ascii_sender_without_smtputf8(relay):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<jörg@example.org>"), 553, "5.6.7", "non-ASCII sender without SMTPUTF8")
    expect(c.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8"), 250, "2.1.0", "non-ASCII sender with SMTPUTF8")


def test_non_ascii_recipient_without_smtputf8(relay):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<müller@{ROUTE_DOMAIN}>"), 553, "5.6.7", "non-ASCII recipient without SMTPUTF8")
    expect(c.cmd("RSET"), 250, "2.0.0")
    expect(c.cmd("MAIL FROM:<a@example.org> SMTPUTF8"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<müller@{ROUTE_DOMAIN}>"), 250, "2.1.5")


# ---------------------------------------------------------------------------- command lines

def test_command_line_of_512_octets_is_accepted(relay):
    c = relay.session()
    line = "NOOP " + "x" * (512 - 5 - 2)
    assert len(line) + 2 == 512
    expect(c.cmd(line), 250, "2.0.0", "a 512-octet command line (CRLF included)")
    line = "NOOP " + "x" * (512 - 5 - 1)
    expect(c.cmd(line), 500, "5.5.2", "a 513-octet command line")
    expect(c.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("pad, split", [(507, False), (595, False), (595, True), (4091, False),
                                        (70000, True)])
def test_overlong_command_tail_is_never_run(relay, pad, split):
    """'NOOP xxx...xQUIT\\r\\n' longer than 512 octets: one 500 5.5.2, the QUIT (past
    octet 512) is discarded with the rest of the line, and the session goes on."""
    c = relay.session()
    head = ("NOOP " + "x" * pad).encode()
    if split:
        c.send(head[:300])
        time.sleep(0.05)
        c.send(head[300:])
        time.sleep(0.1)
        c.send(b"QUIT\r\n")
    else:
        c.send(head + b"QUIT\r\n")
    expect(c.read_reply(), 500, "5.5.2", f"{len(head) + 6}-octet command line")
    # Exactly one reply for the long line: the next one is the NOOP's.
    expect(c.cmd("NOOP"), 250, "2.0.0", "NOOP after the long line (QUIT run, or a second 500?)")
    expect(c.cmd("QUIT"), 221, "2.0.0")


def test_overlong_line_with_mail_tail_not_run(relay):
    c = relay.session()
    tail = f"MAIL FROM:<tail-{unique()}@example.org>\r\n"
    c.send("RSET " + " " * 600 + tail)
    expect(c.read_reply(), 500, "5.5.2")
    # Had the tail run, this MAIL would be nested (503) and an extra reply would be queued.
    expect(c.cmd("MAIL FROM:<ok@example.org>"), 250, "2.1.0", "MAIL after the long line")
    expect(c.cmd("NOOP"), 250, "2.0.0")


# ---------------------------------------------------------------------------- data

def test_bare_cr_in_data(relay):
    refused_data(relay, make_message(unique() + "@c", body=b"hello\rworld\r\n") + b".\r\n", 550, "5.5.2")


def test_bare_lf_in_data(relay):
    refused_data(relay, make_message(unique() + "@c", body=b"hello\nworld\r\n") + b".\r\n", 550, "5.5.2")


def test_bare_lf_dot_lf_does_not_end_data(relay):
    """'\\n.\\n' is not the end of data; it is a bare LF, refused when the real end comes."""
    refused_data(relay, make_message(unique() + "@c", body=b"one\n.\ntwo\r\n") + b".\r\n", 550, "5.5.2")


def test_bare_lf_in_headers(relay):
    msg = make_message(unique() + "@c").replace(b"Subject: test\r\n", b"Subject: test\n")
    refused_data(relay, msg + b".\r\n", 550, "5.5.2")


def test_text_line_over_1000_octets(relay):
    refused_data(relay, make_message(unique() + "@c", body=b"y" * 999 + b"\r\n") + b".\r\n", 550, "5.5.2")


def test_text_line_of_1000_octets_is_accepted(relay):
    c = relay.session()
    mid = unique("line1000") + "@c.test"
    qid = c.send_message("a@example.org", [RCPT], make_message(mid, body=b"y" * 998 + b"\r\n"))
    assert relay.queued(qid)


def test_size_parameter_over_limit(relay):
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<a@example.org> SIZE={SHARED_MAX_MESSAGE_SIZE + 1}"), 552, "5.3.4")
    expect(c.cmd(f"MAIL FROM:<a@example.org> SIZE={SHARED_MAX_MESSAGE_SIZE}"), 250, "2.1.0")


def big_message(total: int) -> bytes:
    line = b"z" * 76 + b"\r\n"
    return make_message(unique("big") + "@c.test", body=line * (total // len(line) + 1))


def test_actual_size_over_limit_data(relay):
    msg = big_message(SHARED_MAX_MESSAGE_SIZE + 4096)
    refused_data(relay, msg + b".\r\n", 552, "5.3.4")


def test_actual_size_over_declared_and_limit(relay):
    sender = unique("liar") + "@example.org"
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}> SIZE=1000"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    expect(c.cmd("DATA"), 354)
    c.send(big_message(SHARED_MAX_MESSAGE_SIZE * 2) + b".\r\n")
    expect(c.read_reply(), 552, "5.3.4")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    assert relay.messages_from(sender) == []


def test_actual_size_over_limit_bdat(relay):
    sender = unique("bigbdat") + "@example.org"
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{RCPT}>"), 250, "2.1.5")
    msg = big_message(SHARED_MAX_MESSAGE_SIZE + 4096)
    c.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg)
    expect(c.read_reply(), 552, "5.3.4", "one BDAT LAST chunk over the limit")
    expect(c.cmd("RSET"), 250, "2.0.0", "RSET after the refused chunk (chunk not consumed?)")
    still_works(relay, c)
    assert relay.messages_from(sender) == []


def test_too_many_recipients(relay):
    sender = unique("many") + "@example.org"
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    for i in range(MAX_RCPT):
        expect(c.cmd(f"RCPT TO:<r{i}@{ROUTE_DOMAIN}>"), 250, "2.1.5", f"recipient {i + 1}")
    expect(c.cmd(f"RCPT TO:<r{MAX_RCPT}@{ROUTE_DOMAIN}>"), 452, "4.5.3", f"recipient {MAX_RCPT + 1}")
    expect(c.cmd(f"RCPT TO:<r{MAX_RCPT + 1}@{ROUTE_DOMAIN}>"), 452, "4.5.3", f"recipient {MAX_RCPT + 2}")
    expect(c.cmd("DATA"), 354)
    c.send(make_message(unique() + "@c") + b".\r\n")
    qid = queue_id_of(c.read_reply())
    m = relay.queued(qid)
    assert sorted(r["address"] for r in m["recipients"]) == sorted(f"r{i}@{ROUTE_DOMAIN}" for i in range(MAX_RCPT))


def received_headers(n: int) -> list[str]:
    return [f"Received: from hop{i}.example.org by hop{i + 1}.example.org; Thu, 26 Nov 2026 01:0{i % 10}:00 +0000"
            for i in range(n)]


def test_too_many_received_headers(relay):
    msg = make_message(unique("loop") + "@c", headers=received_headers(MAX_RECEIVED + 1))
    refused_data(relay, msg + b".\r\n", 554, "5.4.6")


def test_received_headers_at_the_limit_and_in_the_body(relay):
    body = ("\r\n".join(received_headers(20)) + "\r\n").encode()
    mid = unique("hops") + "@c.test"
    c = relay.session()
    qid = c.send_message("a@example.org", [RCPT],
                         make_message(mid, headers=received_headers(MAX_RECEIVED), body=body))
    assert relay.queued(qid)


def test_max_errors_then_421(relay):
    c = relay.session()
    for i in range(MAX_ERRORS):
        expect(c.cmd(f"BOGUS{i}"), 500, "5.5.2", f"error {i + 1}")
    # The 421 may come at once, or as the answer to the next command.
    try:
        r = c.read_reply(timeout=1.0)
    except TimeoutError:
        c.send(b"NOOP\r\n")
        r = c.read_reply()
    expect(r, 421, "4.7.0", f"after {MAX_ERRORS} error replies")
    rest = c.wait_closed(timeout=5)
    assert rest == b"", f"data after the 421: {rest!r}"
