"""Configuration errors: --check-config and a plain start both exit 2 and name the file,
the line and the key (SPEC §2, §3)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from edgerelay_harness import free_port, program, render_config

# The sample of SPEC §3, verbatim except for the paths, which point into the test's
# temporary directory.
SPEC_SAMPLE = '''\
[server]
hostname = "edge.example.net"        # banner, EHLO, Received, Message-ID
listen = ["127.0.0.1:2525"]          # default
max_message_size = "50MiB"
max_recipients = 1000
max_connections = 10000
max_connections_per_ip = 100
relay_networks = ["127.0.0.0/8"]     # clients allowed to relay to any domain
tls_certificate = ""                 # STARTTLS is offered when both are set
tls_private_key = ""
command_timeout = "5m"               # idle client: 421 4.4.2 and close (RFC 5321 4.5.3.2)
data_timeout = "10m"                 # whole DATA/BDAT transfer
max_errors = 10                      # then 421 4.7.0 and close
max_received_headers = 50            # more Received: lines = a mail loop: 554 5.4.6
postmaster = ""                      # where RCPT TO:<postmaster> goes; empty = postmaster@hostname

[spool]
path = "var/spool"                   # LMDB environment
max_size = "64GiB"                   # LMDB map size

[dns]
nameservers = []                     # e.g. ["127.0.0.1:5353"]; empty = /etc/resolv.conf
max_ttl = "1h"                       # never cache longer than the record's own TTL

[delivery]
retry_initial = "1m"                 # then exponential backoff with jitter
retry_max = "15m"
max_lifetime = "5d"                  # then bounce (DSN) to the sender
delay_warning = "4h"                 # DSN "delayed" notice; "0" disables
concurrency_per_destination = 20
connect_timeout = "30s"
port = 25                            # SMTP port for MX and host next hops (test rigs change it)

[log]
path = "var/log/edgerelay.log"       # JSON lines, rotated
retention = "30d"                    # tracking index retention

[admin]
listen = "127.0.0.1:8025"
token = ""                           # when set, required as "Authorization: Bearer ..."

[[route]]
domain = "rockerduck.example"        # accepted recipient domain
next_hop = "inbound.rockerduck.example"
tls = "may"                          # none | may | verify
'''


def base_config(tmp_path: Path) -> str:
    return render_config(tmp_path, free_port(), free_port())


def insert_after(text: str, anchor: str, new_line: str) -> tuple[str, int]:
    """Insert new_line after the line `anchor`; returns the text and the new line's number."""
    lines = text.split("\n")
    i = lines.index(anchor)
    lines.insert(i + 1, new_line)
    return "\n".join(lines), i + 2


def replace_line(text: str, prefix: str, new_line: str) -> tuple[str, int]:
    lines = text.split("\n")
    [i] = [n for n, l in enumerate(lines) if l.startswith(prefix)]
    lines[i] = new_line
    return "\n".join(lines), i + 1


def run(args: list[str], cwd: Path, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def run_daemon(cfg: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Start the daemon on a bad config: it must exit by itself, with status 2."""
    p = subprocess.Popen([program("edgerelayd"), "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"edgerelayd kept running on a bad config; stderr: {err.decode(errors='replace')}")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


# (id, how to make the bad file from a good one, key as it must be named)
def _unknown_key(t, tmp):
    return insert_after(t, "[server]", "bogus_key = 1")


def _unknown_section_key(t, tmp):
    return insert_after(t, "[spool]", 'colour = "blue"')


def _bad_duration(t, tmp):
    return insert_after(t, "[server]", 'command_timeout = "5 parsecs"')


def _bad_duration_unit(t, tmp):
    return insert_after(t, "[server]", 'data_timeout = "10y"')


def _bad_size(t, tmp):
    return insert_after(t, "[server]", 'max_message_size = "lots"')


def _bad_size_unit(t, tmp):
    return insert_after(t, "[server]", 'max_message_size = "10 furlongs"')


def _bad_cidr_len(t, tmp):
    return replace_line(t, "relay_networks", 'relay_networks = ["127.0.0.0/33"]')


def _bad_cidr_addr(t, tmp):
    return replace_line(t, "relay_networks", 'relay_networks = ["10.0.0.0/8", "300.1.2.3/8"]')


def _missing_cert(t, tmp):
    key = tmp / "key.pem"
    key.write_text("not used\n")
    t, _ = insert_after(t, "[server]", f'tls_private_key = "{key}"')
    return insert_after(t, "[server]", f'tls_certificate = "{tmp / "no-such-cert.pem"}"')


def _bad_route_tls(t, tmp):
    return replace_line(t, "tls = ", 'tls = "sometimes"')


def _unknown_route_key(t, tmp):
    return insert_after(t, "[[route]]", 'nexthop = "[127.0.0.2]:25"')


CASES = [
    ("unknown-key", _unknown_key, r"(?:server\.)?bogus_key"),
    ("unknown-spool-key", _unknown_section_key, r"(?:spool\.)?colour"),
    ("bad-duration", _bad_duration, r"(?:server\.)?command_timeout"),
    ("bad-duration-unit", _bad_duration_unit, r"(?:server\.)?data_timeout"),
    ("bad-size", _bad_size, r"(?:server\.)?max_message_size"),
    ("bad-size-unit", _bad_size_unit, r"(?:server\.)?max_message_size"),
    ("bad-cidr-length", _bad_cidr_len, r"(?:server\.)?relay_networks"),
    ("bad-cidr-address", _bad_cidr_addr, r"(?:server\.)?relay_networks"),
    ("missing-tls-certificate", _missing_cert, r"(?:server\.)?tls_certificate"),
    ("bad-route-tls", _bad_route_tls, r"(?:route(?:\[\d+\])?\.)?tls"),
    ("unknown-route-key", _unknown_route_key, r"(?:route(?:\[\d+\])?\.)?nexthop"),
]


def check_named(p: subprocess.CompletedProcess, cfg: Path, line: int, key_re: str) -> None:
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, f"exit status {p.returncode} (want 2); stderr:\n{err}"
    pattern = re.compile(rf"^{re.escape(str(cfg))}:{line}: {key_re}(?=[:\s])", re.M)
    assert pattern.search(err), f"stderr does not name {cfg}:{line}: <{key_re}>:\n{err}"


@pytest.mark.parametrize("name, make, key_re", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["check-config", "start"])
def test_config_error(tmp_path, binaries, name, make, key_re, mode):
    text, line = make(base_config(tmp_path), tmp_path)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    if mode == "check-config":
        p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    else:
        p = run_daemon(cfg, tmp_path)
    check_named(p, cfg, line, key_re)


def test_two_errors_both_reported(tmp_path, binaries):
    t, l1 = insert_after(base_config(tmp_path), "[server]", 'command_timeout = "soon"')
    t, l2 = replace_line(t, "relay_networks", 'relay_networks = ["127.0.0.0/99"]')
    cfg = tmp_path / "bad.toml"
    cfg.write_text(t)
    p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    check_named(p, cfg, l1, r"(?:server\.)?command_timeout")
    check_named(p, cfg, l2, r"(?:server\.)?relay_networks")


def test_toml_syntax_error_names_the_line(tmp_path, binaries):
    t, line = insert_after(base_config(tmp_path), "[server]", 'hostname = "unterminated')
    cfg = tmp_path / "bad.toml"
    cfg.write_text(t)
    p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, err
    assert re.search(rf"^{re.escape(str(cfg))}:{line}:", err, re.M), err


@pytest.mark.parametrize("mode", ["check-config", "start"])
def test_missing_config_file(tmp_path, binaries, mode):
    cfg = tmp_path / "nowhere" / "edgerelay.toml"
    if mode == "check-config":
        p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    else:
        p = run_daemon(cfg, tmp_path)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, f"exit status {p.returncode}; stderr:\n{err}"
    assert str(cfg) in err, err


def test_good_config_passes_check(tmp_path, binaries):
    cfg = tmp_path / "good.toml"
    cfg.write_text(base_config(tmp_path))
    p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")


def test_spec_sample_passes_check(tmp_path, binaries):
    cfg = tmp_path / "sample.toml"
    cfg.write_text(SPEC_SAMPLE)
    p = run([program("edgerelayd"), "--check-config", "--config", str(cfg)], tmp_path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")


def test_repository_sample_passes_check(tmp_path, binaries):
    sample = Path(__file__).resolve().parents[2] / "conf" / "edgerelay.toml"
    if not sample.exists():
        pytest.skip("conf/edgerelay.toml not written yet")
    p = run([program("edgerelayd"), "--check-config", "--config", str(sample)], tmp_path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
