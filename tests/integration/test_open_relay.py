"""No open relay: from outside relay_networks only the served domain is accepted, and
no address trick (source routes, %-hack, bang paths, quoting, trailing dots, literals)
reaches another domain. 127.0.0.1 is outside the shared daemons' relay_networks."""

from __future__ import annotations


import pytest

from edgerelay_harness import ROUTE_DOMAIN, expect, make_message, unique

ACCEPTED = [
    f"user@{ROUTE_DOMAIN}",
    "User@ROCKERDUCK.EXAMPLE",
    "user@RockerDuck.Example",
    f"user%evil.test@{ROUTE_DOMAIN}",
    f"evil.test!user@{ROUTE_DOMAIN}",
    f'"user@evil.test"@{ROUTE_DOMAIN}',
    f"@evil.test:user@{ROUTE_DOMAIN}",
    f"@evil.test,@other.test:user@{ROUTE_DOMAIN}",
]

DENIED = [
    f"user@{ROUTE_DOMAIN}.evil.test",
    f"user@evil-{ROUTE_DOMAIN}",
    f"user@sub{ROUTE_DOMAIN}",
    f"@{ROUTE_DOMAIN}:user@evil.test",
    "user@[127.0.0.9]",
    "user@[IPv6:::1]",
    "user@evil.test",
    f"user@{ROUTE_DOMAIN.replace('.', '')}",
]


@pytest.mark.parametrize("addr", ACCEPTED)
def test_served_domain_accepted(relay, addr):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{addr}>"), 250, "2.1.5", f"RCPT TO:<{addr}>")
    expect(c.cmd("DATA"), 354)
    c.send(make_message(unique("ok") + "@c") + b".\r\n")
    expect(c.read_reply(), 250, "2.0.0", "end of data")


@pytest.mark.parametrize("addr", DENIED)
def test_other_domain_denied(relay, addr):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd(f"RCPT TO:<{addr}>"), 554, "5.7.1", f"RCPT TO:<{addr}>")
    expect(c.cmd("DATA"), 554, "5.5.1", "DATA with no accepted recipient")


def test_trailing_dot_domain_not_accepted(relay):
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:<user@{ROUTE_DOMAIN}.>")
    assert (r.code, r.enhanced) == (554, "5.7.1") or r.code == 501, \
        f"RCPT TO:<user@{ROUTE_DOMAIN}.>: expected 554 5.7.1 (or 501), got {r}"


def test_postmaster_always_accepted(relay):
    """RFC 5321 4.5.1: <Postmaster> without a domain must be accepted."""
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<Postmaster>"), 250, "2.1.5")


def test_denied_recipient_does_not_spoil_the_transaction(relay):
    sender = unique("mixed") + "@example.org"
    c = relay.session()
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<user@evil.test>"), 554, "5.7.1")
    expect(c.cmd(f"RCPT TO:<user@{ROUTE_DOMAIN}>"), 250, "2.1.5")
    expect(c.cmd("RCPT TO:<user@[127.0.0.9]>"), 554, "5.7.1")
    expect(c.cmd("DATA"), 354)
    c.send(make_message(unique() + "@c") + b".\r\n")
    r = c.read_reply()
    expect(r, 250, "2.0.0")
    [m] = relay.messages_from(sender)
    assert [x["address"] for x in m["recipients"]] == [f"user@{ROUTE_DOMAIN}"]


def test_reject_log_event(relay):
    """The reject event carries the reply line exactly as the client got it."""
    addr = f"{unique('denied')}@evil.test"
    c = relay.session()
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    r = c.cmd(f"RCPT TO:<{addr}>")
    expect(r, 554, "5.7.1")
    c.close()
    assert r.line.startswith("554 5.7.1 Error: relay access denied"), r.line
    e = relay.wait_log(lambda e: e.get("event") == "reject" and e.get("reply") == r.line
                       and (addr in str(e.get("command")) or str(e.get("command")).upper() == "RCPT"),
                       what=f"reject event with reply {r.line!r} for RCPT TO:<{addr}>")
    for key in ("time", "client_ip", "command", "reply"):
        assert key in e, f"reject event lacks {key!r}: {e}"
    assert e["client_ip"] == "127.0.0.1"
    assert str(e["command"]).upper().startswith("RCPT"), e


def test_any_domain_from_relay_networks(relay):
    c = relay.session(source="127.0.0.5")
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    for addr in ("user@evil.test", "user@[127.0.0.9]", f"user@{ROUTE_DOMAIN}"):
        expect(c.cmd(f"RCPT TO:<{addr}>"), 250, "2.1.5", f"RCPT TO:<{addr}> from relay_networks")


def test_outside_neighbour_address_is_not_trusted(relay):
    """127.0.0.6 is next to 127.0.0.5/32 but outside it."""
    c = relay.session(source="127.0.0.6")
    expect(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
    expect(c.cmd("RCPT TO:<user@evil.test>"), 554, "5.7.1")
