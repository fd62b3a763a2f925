"""`edgerelayctl log` (SPEC §2, §4 Log): the tracking index answers by Message-ID, queue
id, sender, recipient and time, with every event of a message oldest first, the same
objects as the JSON log, while the daemon runs and after it stopped; `[log] retention`
prunes it."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from delivery_rig import INBOUND, mid_of, rig, sender, wait_until  # noqa: F401  (rig is a fixture)
from edgerelay_harness import ROUTE_DOMAIN, make_message, strip_angle

RCPT_OK = f"bob@{ROUTE_DOMAIN}"
RCPT_LATER = f"carol@{ROUTE_DOMAIN}"
RCPT_BAD = f"dave@{ROUTE_DOMAIN}"
MX1 = f"mx1.{ROUTE_DOMAIN}"
NEVER = {"retry_initial": "5m", "retry_max": "15m"}  # no retry inside the test
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9A-F]{16} [a-z]+\b")


def ctl_log(d, *args: str, json_out: bool = True):
    p = d.ctl("log", *args, *(["--json"] if json_out else []))
    assert p.returncode == 0, f"log {args}: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
    if not json_out:
        return p.stdout.decode()
    doc = json.loads(p.stdout)
    assert isinstance(doc, dict) and isinstance(doc.get("events"), list), doc
    return doc["events"]


def queue_ids(events: list[dict]) -> list[str]:
    """The messages in the order they appear (events are grouped by message)."""
    out: list[str] = []
    for e in events:
        if not out or out[-1] != e["queue_id"]:
            assert e["queue_id"] not in out, f"events of {e['queue_id']} are not grouped: {events}"
            out.append(e["queue_id"])
    return out


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def story(rig):
    """Three messages from one sender: delivered, deferred (451), bounced (550 + a DSN)."""
    rig.dns.set_mx(INBOUND, [(10, MX1)], ttl=60)
    rig.dns.set_a(MX1, ["127.0.0.2"], ttl=60)
    rig.site("mx1", "127.0.0.2", rcpt_replies={RCPT_LATER: "451 4.3.0 try later",
                                                RCPT_BAD: "550 5.1.1 no such user"})
    rig.dsn_site()
    d = rig.daemon(delivery=NEVER)
    s = sender()
    started = datetime.now(timezone.utc) - timedelta(seconds=2)
    msgs = {}
    for name, rcpt in (("ok", RCPT_OK), ("later", RCPT_LATER), ("bad", RCPT_BAD)):
        mid = mid_of(name)
        msgs[name] = (d.send(s, [rcpt], make_message(mid, sender=s, to=rcpt)), mid, rcpt)
    d.wait_event("deliver", queue_id=msgs["ok"][0])
    d.wait_event("defer", queue_id=msgs["later"][0])
    bounce = d.wait_event("bounce", queue_id=msgs["bad"][0])
    d.wait_event("receive", queue_id=bounce["dsn_queue_id"])
    d.wait_event("deliver", queue_id=bounce["dsn_queue_id"])  # the DSN reached the sender's site
    time.sleep(1.2)  # the JSON log is flushed within a second, the index within 0.1 s
    return d, s, msgs, started, bounce["dsn_queue_id"]


def logged(d, qid: str) -> list[dict]:
    return [e for e in d.log_events() if e.get("queue_id") == qid]


def check_queries(d, s, msgs, started, dsn_qid):
    expected = {qid: logged(d, qid) for qid, _, _ in msgs.values()}
    expected[dsn_qid] = logged(d, dsn_qid)
    ok, later, bad = msgs["ok"], msgs["later"], msgs["bad"]

    # By Message-ID: every event of the message, the same objects as logged, oldest first.
    for qid, mid, rcpt in msgs.values():
        events = ctl_log(d, "--message-id", mid)
        assert events == expected[qid], f"{mid}: index {events}\nlog {expected[qid]}"
        assert [e["event"] for e in events][0] == "receive"
        assert [e["time"] for e in events] == sorted(e["time"] for e in events)
        assert ctl_log(d, "--message-id", f"<{mid}>") == events
    kinds = {name: [e["event"] for e in expected[qid]] for name, (qid, _, _) in msgs.items()}
    assert kinds == {"ok": ["receive", "attempt", "deliver"], "later": ["receive", "attempt", "defer"],
                     "bad": ["receive", "attempt", "bounce"]}, kinds
    deliver = expected[ok[0]][-1]
    assert strip_angle(deliver["recipient"]) == RCPT_OK and deliver["ip"] == "127.0.0.2"
    assert deliver["reply_code"] == 250 and deliver["next_hop"] == INBOUND and deliver["mx_host"] == MX1
    assert expected[later[0]][-1]["reply_code"] == 451 and expected[bad[0]][-1]["enhanced_code"] == "5.1.1"

    # By queue id, sender and recipient (case-insensitive, exact), and all of them at once.
    assert ctl_log(d, "--queue-id", later[0]) == expected[later[0]]
    by_sender = ctl_log(d, "--from", s.upper())
    assert queue_ids(by_sender) == [ok[0], later[0], bad[0]], by_sender
    assert by_sender == expected[ok[0]] + expected[later[0]] + expected[bad[0]]
    assert queue_ids(ctl_log(d, "--to", RCPT_LATER.upper())) == [later[0]]
    assert queue_ids(ctl_log(d, "--to", s)) == [dsn_qid], "the DSN to the sender"
    assert ctl_log(d, "--to", s)[0]["dsn_for"] == bad[0]
    assert queue_ids(ctl_log(d, "--from", s, "--to", RCPT_OK)) == [ok[0]]
    assert ctl_log(d, "--from", s, "--to", RCPT_OK, "--message-id", later[1]) == []
    assert ctl_log(d, "--to", s[1:]) == [], "addresses match exactly, not as substrings"

    # Time windows: RFC 3339 and "that long ago".
    now = datetime.now(timezone.utc)
    assert queue_ids(ctl_log(d, "--from", s, "--since", rfc3339(started))) == [ok[0], later[0], bad[0]]
    assert queue_ids(ctl_log(d, "--from", s, "--since", "1h", "--until", rfc3339(now + timedelta(hours=1)))) == \
        [ok[0], later[0], bad[0]]
    assert ctl_log(d, "--from", s, "--until", rfc3339(started - timedelta(hours=1))) == []
    assert ctl_log(d, "--since", rfc3339(now + timedelta(hours=1))) == []
    recent = ctl_log(d, "--since", "10m")
    assert {ok[0], later[0], bad[0], dsn_qid} <= set(queue_ids(recent))
    assert queue_ids(ctl_log(d, "--limit", "1")) != [], "no filter: the most recent messages"

    # Text: a header line per message, then one line per event.
    text = ctl_log(d, "--message-id", ok[1], json_out=False)
    lines = text.splitlines()
    assert lines[0].startswith(ok[0]) and f"<{ok[1]}>" in lines[0] and f"<{s}>" in lines[0], lines[0]
    assert len(lines) == 1 + len(expected[ok[0]]), text
    for line, e in zip(lines[1:], expected[ok[0]]):
        assert EVENT_LINE.match(line) and line.startswith(f"{e['time']} {ok[0]} {e['event']}"), line
    assert re.search(rf"deliver <{RCPT_OK}> via {INBOUND} {MX1}\[127\.0\.0\.2\]:\d+ tls=no 250 ", lines[-1]), lines[-1]
    assert "(attempt 1, " in lines[-1]
    text = ctl_log(d, "--from", s, json_out=False)
    event_lines = [l for l in text.splitlines() if EVENT_LINE.match(l)]
    assert len(event_lines) == len(by_sender), text
    return expected


def test_log_finds_messages_running_and_stopped(story):
    d, s, msgs, started, dsn_qid = story
    # The index is written in batches; allow a moment before asking.
    wait_until(lambda: len(ctl_log(d, "--message-id", msgs["bad"][1])) == 3, 5, "the bounce in the index")
    before = check_queries(d, s, msgs, started, dsn_qid)
    assert d.terminate() == 0
    after = check_queries(d, s, msgs, started, dsn_qid)  # read-only LMDB, no daemon
    assert after == before
    assert d.ctl("queue", "list", "--json").returncode == 0


def test_log_options_are_checked(make_daemon):
    d = make_daemon()
    p = d.ctl("log", "--since", "last tuesday")
    assert p.returncode == 2 and b"--since" in p.stderr, p.stderr
    p = d.ctl("log", "--sender", "x@y.example")
    assert p.returncode == 2 and b"--sender" in p.stderr, p.stderr
    assert ctl_log(d, "--message-id", "nobody@nowhere.example") == []


@pytest.mark.slow
def test_retention_prunes_the_index(make_daemon):
    d = make_daemon(start=False)
    config = d.config_path.read_text()
    log_path = f'path = {json.dumps(str(d.log_path))}'
    assert log_path in config
    d.config_path.write_text(config.replace(log_path, log_path + '\nretention = "2s"'))
    d.start()
    old_mid, new_mid = mid_of("old"), mid_of("new")
    c = d.session()
    old_qid = c.send_message("alice@example.org", [f"bob@{ROUTE_DOMAIN}"], make_message(old_mid))
    c.cmd("QUIT")
    c.close()
    # [127.0.0.2]:2599 refuses: one attempt, then the next retry is a minute away.
    events = wait_until(lambda: ctl_log(d, "--message-id", old_mid), 5, "the message in the index")
    assert events[0]["event"] == "receive" and events[0]["queue_id"] == old_qid
    wait_until(lambda: not ctl_log(d, "--message-id", old_mid), 10, "the old message's events to be pruned",
               interval=0.3)
    assert ctl_log(d, "--queue-id", old_qid) == [] and ctl_log(d, "--from", "alice@example.org") == []
    assert d.queued(old_qid) is not None, "pruning the index never touches the spool's messages"
    c = d.session()
    new_qid = c.send_message("alice@example.org", [f"bob@{ROUTE_DOMAIN}"], make_message(new_mid))
    c.cmd("QUIT")
    c.close()
    events = wait_until(lambda: ctl_log(d, "--message-id", new_mid), 5, "the new message in the index")
    assert events[0]["queue_id"] == new_qid
