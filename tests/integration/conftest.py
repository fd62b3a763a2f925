"""Fixtures for the integration tests: daemons started from the real binaries
(EDGERELAY_BIN_DIR), a self-signed certificate made with the openssl CLI, and the
daemon's output attached to the report of any failing test."""

from __future__ import annotations

import subprocess

import pytest

from edgerelay_harness import SHARED_SERVER, Daemon, program


def pytest_configure(config):
    config.addinivalue_line("markers", "crash: SIGKILLs the daemon at random moments (about a minute)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def _register(request, daemon: Daemon) -> None:
    node = request.node
    if not hasattr(node, "_edgerelay_daemons"):
        node._edgerelay_daemons = []
    node._edgerelay_daemons.append(daemon)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_edgerelay_daemons", []):
            rep.sections.append((f"edgerelayd output ({d.output_path})", d.output_tail()))
            rep.sections.append((f"edgerelayd config ({d.config_path})", d.config_path.read_text()))


@pytest.fixture(scope="session")
def binaries():
    """Fail early and clearly when the programs are not built."""
    return program("edgerelayd"), program("edgerelayctl")


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed certificate for edge.test (and 127.0.0.1), made with the openssl CLI."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=edge.test",
                    "-addext", "subjectAltName=DNS:edge.test,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class _Pool:
    """Session-wide daemons, started on first use and stopped (SIGTERM) at the end."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.daemons: dict[str, Daemon] = {}

    def get(self, name: str, server: dict) -> Daemon:
        d = self.daemons.get(name)
        if d is None:
            d = Daemon(self.tmp.mktemp(name), server=server)
            self.daemons[name] = d
            d.start()
        elif not d.running():
            d.start()  # died in an earlier test (reported there); same spool
        return d

    def stop_all(self):
        errors = []
        for d in self.daemons.values():
            try:
                d.terminate()  # SIGKILLs after 10 s
            except AssertionError as e:
                errors.append(f"{d.dir}: {e}")
        assert not errors, "; ".join(errors)


@pytest.fixture(scope="session")
def _pool(tmp_path_factory, binaries):
    pool = _Pool(tmp_path_factory)
    yield pool
    pool.stop_all()


def _shared(request, pool: _Pool, name: str, server: dict):
    d = pool.get(name, server)
    _register(request, d)
    yield d
    if not d.running():
        pytest.fail(f"edgerelayd ({name}) died during this test with status {d.proc.returncode}:\n"
                    + d.output_tail())


@pytest.fixture
def relay(request, _pool):
    """The shared plain daemon (no TLS): hostname edge.test, route rockerduck.example,
    relay_networks 127.0.0.5/32 only, the SHARED_SERVER limits."""
    yield from _shared(request, _pool, "plain", SHARED_SERVER)


@pytest.fixture
def tls_relay(request, _pool, tls_files):
    """The shared daemon with STARTTLS (certificate from tls_files)."""
    cert, key = tls_files
    yield from _shared(request, _pool, "tls",
                       {**SHARED_SERVER, "tls_certificate": str(cert), "tls_private_key": str(key)})


@pytest.fixture
def make_daemon(request, tmp_path, binaries):
    """Factory for a daemon with its own config: make_daemon(server={...}, spool={...},
    extra="...", start=True). Stopped with SIGTERM (then SIGKILL) at teardown."""
    made: list[Daemon] = []

    def make(server: dict | None = None, extra: str = "", spool: dict | None = None, start: bool = True) -> Daemon:
        d = Daemon(tmp_path / f"d{len(made)}", server=server, extra=extra, spool=spool)
        made.append(d)
        _register(request, d)
        if start:
            d.start()
        return d

    yield make
    errors = []
    for d in made:
        try:
            d.terminate()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("; ".join(errors))
