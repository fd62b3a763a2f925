"""`edgerelayctl mx DOMAIN` (SPEC §2): a customer domain's MX records, looked up through
the configured resolver (here the DNS rig of delivery_rig), and whether they all lead to
this relay ([server] hostname, [server] mx_names, or their addresses). No daemon runs:
the command needs only the config. Exit status 0 when ok, 1 for any problem, 2 for
usage errors."""

from __future__ import annotations

import json
import uuid

import pytest

from delivery_rig import rig  # noqa: F401  (a fixture)
from edgerelay_harness import HOSTNAME

ALIAS = "mx-alias.edge-provider.example"  # another name of this relay ([server] mx_names)
RELAY_IP = "127.0.0.9"
OTHER_IP = "127.0.0.44"


def new_domain() -> str:
    return f"c{uuid.uuid4().hex[:10]}.example"


@pytest.fixture
def edge(rig):  # noqa: F811  (rig is the fixture imported above)
    """The rig's DNS, and a stopped daemon whose config points the resolver at it."""
    rig.dns.set_a(HOSTNAME, RELAY_IP)
    d = rig.daemon(server={"mx_names": [ALIAS]}, start=False)
    return rig.dns, d


def one_mx(dns, address: str) -> str:
    """A new domain whose only MX is a host of its own at `address`."""
    domain = new_domain()
    dns.set_mx(domain, [(10, f"mx.{domain}")])
    dns.set_a(f"mx.{domain}", address)
    return domain


def mx(d, *args: str):
    p = d.ctl("mx", *args)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def mx_json(d, *domains: str):
    code, out, err = mx(d, *domains, "--json")
    assert out, f"no output (exit {code}): {err}"
    return code, json.loads(out)


def only(doc: dict) -> dict:
    assert list(doc) == ["domains"]
    assert len(doc["domains"]) == 1
    return doc["domains"][0]


def test_every_mx_is_this_relay_by_name_and_by_mx_names(edge):
    dns, d = edge
    domain = new_domain()
    dns.set_mx(domain, [(10, HOSTNAME), (20, ALIAS)], ttl=300)
    dns.set_a(ALIAS, "127.0.0.10")

    code, out, err = mx(d, domain)
    assert code == 0, out + err
    assert f"{domain}: MX 10 {HOSTNAME} ({RELAY_IP}) ttl" in out
    assert f"{domain}: MX 20 {ALIAS} (127.0.0.10) ttl" in out
    assert out.splitlines()[-1] == f"{domain}: ok: every MX host is this relay"

    code, doc = mx_json(d, domain)
    assert code == 0
    v = only(doc)
    assert v["status"] == "ok" and v["problems"] == []
    assert [(m["preference"], m["exchange"], m["points_here"]) for m in v["mx"]] == [(10, HOSTNAME, True),
                                                                                     (20, ALIAS, True)]


def test_a_customer_name_with_our_address_is_this_relay(edge):
    dns, d = edge
    code, doc = mx_json(d, one_mx(dns, RELAY_IP))
    assert code == 0, doc
    assert only(doc)["mx"][0]["points_here"] is True


def test_a_backup_mx_elsewhere_bypasses_the_relay(edge):
    dns, d = edge
    domain = new_domain()
    backup = f"backup.other-{domain}"
    dns.set_mx(domain, [(20, backup), (10, HOSTNAME)])
    dns.set_a(backup, OTHER_IP)

    code, out, _ = mx(d, domain)
    assert code == 1
    assert f"{domain}: MX 20 {backup} ({OTHER_IP}) ttl" in out and out.splitlines()[1].endswith("NOT this relay")
    assert out.splitlines()[-1] == (f"{domain}: problems: MX 20 {backup} does not point at this relay: "
                                    "mail sent there bypasses it")

    code, doc = mx_json(d, domain)
    assert code == 1
    v = only(doc)
    assert v["status"] == "problems"
    assert [(m["exchange"], m["points_here"]) for m in v["mx"]] == [(HOSTNAME, True), (backup, False)]
    assert v["problems"] == [f"MX 20 {backup} does not point at this relay: mail sent there bypasses it"]


def test_no_mx_host_points_here(edge):
    dns, d = edge
    code, doc = mx_json(d, one_mx(dns, OTHER_IP))
    assert code == 1
    v = only(doc)
    assert v["status"] == "problems"
    assert any("no MX host" in p and "bypasses" in p for p in v["problems"]), v["problems"]


def test_no_mx_at_all_goes_to_the_address_record(edge):
    dns, d = edge
    domain = new_domain()
    dns.set_a(domain, OTHER_IP)
    code, doc = mx_json(d, domain)
    assert code == 1
    v = only(doc)
    assert v["status"] == "no_mx" and v["mx"] == []
    assert v["problems"] == [f"{domain} has no MX record: mail goes to its address record ({OTHER_IP}) "
                             "and bypasses this relay"]


def test_nxdomain(edge):
    _, d = edge
    domain = new_domain()
    code, out, _ = mx(d, domain)
    assert code == 1
    assert out == f"{domain}: nxdomain: {domain} does not exist (NXDOMAIN): senders bounce mail for it\n"
    code, doc = mx_json(d, domain)
    assert code == 1 and only(doc)["status"] == "nxdomain"


def test_null_mx(edge):
    dns, d = edge
    domain = new_domain()
    dns.set_null_mx(domain)
    code, doc = mx_json(d, domain)
    assert code == 1
    v = only(doc)
    assert v["status"] == "null_mx"
    assert [(m["preference"], m["exchange"], m["points_here"]) for m in v["mx"]] == [(0, "", False)]
    assert "RFC 7505" in v["problems"][0]


def test_dns_failure_is_reported_as_temporary(edge):
    dns, d = edge
    domain = new_domain()
    dns.set_servfail(domain)
    code, out, _ = mx(d, domain)
    assert code == 1
    assert out.startswith(f"{domain}: dns_error: the MX lookup for {domain} failed (")
    assert "temporary DNS failure" in out


def test_json_shape_and_several_domains(edge):
    dns, d = edge
    good, bad = new_domain(), new_domain()
    dns.set_mx(good, [(10, HOSTNAME)], ttl=120)
    code, doc = mx_json(d, good, bad)
    assert code == 1  # one of them is not ok
    assert list(doc) == ["domains"]
    assert [v["domain"] for v in doc["domains"]] == [good, bad]
    for v in doc["domains"]:
        assert list(v) == ["domain", "status", "mx", "problems"]
        assert isinstance(v["problems"], list)
    m = doc["domains"][0]["mx"][0]
    assert list(m) == ["preference", "exchange", "ttl", "addresses", "points_here"]
    assert m["addresses"] == [RELAY_IP] and 0 < m["ttl"] <= 120
    assert doc["domains"][1]["status"] == "nxdomain"


def test_upper_case_and_trailing_dot_are_the_same_domain(edge):
    dns, d = edge
    domain = new_domain()
    dns.set_mx(domain, [(10, HOSTNAME)])
    code, doc = mx_json(d, domain.upper() + ".")
    assert code == 0 and only(doc)["domain"] == domain


@pytest.mark.parametrize("args", [[], ["someone@customer.example"], ["bad domain"], ["a.example", "--bogus", "x"]])
def test_usage_errors(edge, args):
    _, d = edge
    code, out, err = mx(d, *args)
    assert code == 2, out + err
    assert err.startswith("edgerelayctl: ")
