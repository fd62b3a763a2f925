#!/bin/bash
# edgerelay delivery benchmarks, beside Postfix, in one run (SPEC §5).
#
#   tests/bench/run_delivery_bench.sh
#   EDGERELAY_BIN_DIR=$PWD/build-dbench/programs BENCH_DRAIN_MESSAGES=5000 tests/bench/run_delivery_bench.sh
#
# Phases (BENCH_PHASES, space separated; default all, in this order):
#   ceiling          smtp-source -> smtp-sink directly: what the load tools alone manage
#   e2e-postfix      smtp-source -> private Postfix (relayhost [127.0.0.2]:P) -> smtp-sink
#   e2e-edgerelay    smtp-source -> edgerelayd (next_hop "[127.0.0.2]:P") -> smtp-sink
#   drain-edgerelay  N messages queued while site.<domain> A 127.0.0.2 (nothing listens),
#                    then smtp-sink on 127.0.0.3:P and the A record changed to 127.0.0.3;
#                    time to the first message and to all N at the sink
#   drain-postfix    N messages queued while relayhost [127.0.0.2]:P is dead, then the
#                    sink on 127.0.0.3:P, relayhost changed, postfix reload, postqueue -f
# With BENCH_ROUNDS > 1 every phase runs again; the order of Postfix and edgerelay
# alternates between rounds and the summary gives medians.
#
# The sink is `smtp-sink -c`, whose running counter ("mesg=N", updated when "." is
# received) delivery_bench.py polls every 5 ms; a phase is valid only when the sink
# counted exactly N messages (also 2 s after the last), and the server's queue is empty
# afterwards (edgerelayctl queue list --json: no messages; postqueue -j: no lines, and
# no queue files).
#
# Environment (defaults):
#   BENCH_E2E_MESSAGES=10000     messages for the end-to-end phases (smtp-source -m)
#   BENCH_DRAIN_MESSAGES=20000   messages queued for the drain phases
#   BENCH_SESSIONS=20            smtp-source -s
#   BENCH_SIZE=4096              smtp-source -l
#   BENCH_CONCURRENCY=20         edgerelay concurrency_per_destination, Postfix
#                                default_/smtp_destination_concurrency_limit
#   BENCH_DNS_TTL=2              TTL (s) of the MX and A records of the drain phase
#   BENCH_ROUNDS=1
#   BENCH_PHASES="ceiling e2e-postfix e2e-edgerelay drain-edgerelay drain-postfix"
#   BENCH_QUIET_WAIT=900         before each phase, wait up to this many seconds while
#                                another benchmark (run_intake_bench.sh ...) runs
#   EDGERELAY_BIN_DIR=<repo>/build-dbench/programs
#   BENCH_TMPDIR=/tmp            parent of the scratch directory
#   BENCH_KEEP=0                 1 keeps the scratch directory
#   BENCH_RESULTS=               also copy the raw "key value" results here
#
# Runs as root (Postfix's master must). Loopback only (127.0.0.1-3). Every process
# started here is stopped by its PID at exit (trap); private Postfix instances with
# `postfix -c DIR stop` (then SIGKILL to that master's PID).

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
UTIL="$PY $HERE/bench_util.py"
DB="$PY $HERE/delivery_bench.py"

BENCH_E2E_MESSAGES=${BENCH_E2E_MESSAGES:-10000}
BENCH_DRAIN_MESSAGES=${BENCH_DRAIN_MESSAGES:-20000}
BENCH_SESSIONS=${BENCH_SESSIONS:-20}
BENCH_SIZE=${BENCH_SIZE:-4096}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-20}
BENCH_DNS_TTL=${BENCH_DNS_TTL:-2}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_PHASES=${BENCH_PHASES:-ceiling e2e-postfix e2e-edgerelay drain-edgerelay drain-postfix}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-900}
EDGERELAY_BIN_DIR=${EDGERELAY_BIN_DIR:-$REPO/build-dbench/programs}
BENCH_TMPDIR=${BENCH_TMPDIR:-/tmp}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RESULTS=${BENCH_RESULTS:-}

SENDER=sender@example.net
RCPT_DOMAIN=rockerduck.example
RCPT=bench@$RCPT_DOMAIN
INBOUND=inbound.$RCPT_DOMAIN
SITE=site.$RCPT_DOMAIN
DOWN_IP=127.0.0.2     # where nothing listens during the outage (and the e2e sink)
UP_IP=127.0.0.3       # the standby site of the drain phases

SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf
POSTQUEUE=/usr/sbin/postqueue
EDGERELAYD=$EDGERELAY_BIN_DIR/edgerelayd
EDGERELAYCTL=$EDGERELAY_BIN_DIR/edgerelayctl

# ------------------------------------------------------------------ bookkeeping

# log die record now loadavg secs rate cpu_per_msg stop_pid next_port, the traps,
# pf_start pf_stop pf_files pf_postqueue_count er_launch
source "$HERE/bench_lib.sh"

has_phase() { [[ " $BENCH_PHASES " == *" $1 "* ]]; }

# ------------------------------------------------------------------ checks

for p in $BENCH_PHASES; do
    case $p in
    ceiling | e2e-postfix | e2e-edgerelay | drain-edgerelay | drain-postfix) ;;
    *) die "unknown phase '$p' in BENCH_PHASES" ;;
    esac
done
[[ $(id -u) == 0 ]] || die "run as root (Postfix's master runs as root)"
for t in "$SMTP_SOURCE" "$SMTP_SINK" "$POSTFIX" "$POSTCONF" "$POSTQUEUE" "$PY"; do
    [[ -x "$t" ]] || die "missing $t"
done
$PY -c 'import dnslib' 2>/dev/null || die "$PY has no dnslib (Debian: python3-dnslib)"
if [[ " $BENCH_PHASES " == *edgerelay* ]]; then
    [[ -x "$EDGERELAYD" && -x "$EDGERELAYCTL" ]] || die "edgerelayd/edgerelayctl not found in EDGERELAY_BIN_DIR=$EDGERELAY_BIN_DIR"
fi

bench_workdir edgerelay-dbench

# Another engineer's benchmark on this machine would distort every figure: wait for it.
wait_quiet() {
    local label=$1 t0 others
    t0=$(now)
    while :; do
        others=$(pgrep -f 'run_intake_bench|accept_latency\.py|idle_connections\.py' | tr '\n' ' ')
        [[ -z "$others" ]] && break
        if [[ $(awk -v s="$t0" -v e="$(now)" -v m="$BENCH_QUIET_WAIT" 'BEGIN{print (e - s > m)}') == 1 ]]; then
            log "$label: another benchmark still runs (pids $others) after ${BENCH_QUIET_WAIT}s: measuring anyway"
            record "${label}_note" "other-benchmark-running"
            return
        fi
        log "$label: waiting for another benchmark to finish (pids $others)"
        sleep 10
    done
    local waited
    waited=$(secs "$t0" "$(now)")
    [[ $waited != 0.* ]] && log "$label: waited ${waited}s for quiet"
    return 0
}

record_machine
record e2e_messages "$BENCH_E2E_MESSAGES"
record drain_messages "$BENCH_DRAIN_MESSAGES"
record sessions "$BENCH_SESSIONS"
record size "$BENCH_SIZE"
record dns_ttl "$BENCH_DNS_TTL"
record rounds "$BENCH_ROUNDS"

# ------------------------------------------------------------------ sink, source

# sink_start NAME IP PORT: smtp-sink -c on IP:PORT; sets SINK_PID, SINK_OUT
sink_start() {
    local name=$1 ip=$2 port=$3
    SINK_OUT=$WORK/$name.sink.out
    "$SMTP_SINK" -c -u nobody "$ip:$port" 1024 >"$SINK_OUT" 2>"$WORK/$name.sink.err" &
    SINK_PID=$!
    BG_PIDS+=("$SINK_PID")
    $UTIL wait-banner "$ip" "$port" 15 || die "smtp-sink did not start on $ip:$port"
    # wait-banner's own session counts as a session, never as a message
}

# source_bg NAME PORT COUNT: smtp-source in the background; sets SRC_PID, SRC_DONE (file)
source_bg() {
    local name=$1 port=$2 n=$3
    SRC_DONE=$WORK/$name.source.done
    (
        # a TERM to this subshell (stop_pid) stops smtp-source too
        "$SMTP_SOURCE" -s "$BENCH_SESSIONS" -l "$BENCH_SIZE" -m "$n" -f "$SENDER" -t "$RCPT" \
            "127.0.0.1:$port" >"$WORK/$name.source.out" 2>&1 &
        sp=$!
        trap 'kill -TERM $sp 2>/dev/null; wait $sp; exit 143' TERM
        wait $sp
        echo "$? $(now)" >"$SRC_DONE"
    ) &
    SRC_PID=$!
    BG_PIDS+=("$SRC_PID")
}

# source_fg NAME PORT COUNT: smtp-source, timed; sets SOURCE_RC, SOURCE_SECS
source_fg() {
    local name=$1 port=$2 n=$3 t0 t1
    t0=$(now)
    "$SMTP_SOURCE" -s "$BENCH_SESSIONS" -l "$BENCH_SIZE" -m "$n" -f "$SENDER" -t "$RCPT" \
        "127.0.0.1:$port" >"$WORK/$name.source.out" 2>&1
    SOURCE_RC=$?
    t1=$(now)
    SOURCE_SECS=$(secs "$t0" "$t1")
    if [[ $SOURCE_RC != 0 || -s "$WORK/$name.source.out" ]]; then
        log "$name: smtp-source exit $SOURCE_RC; output:"
        head -5 "$WORK/$name.source.out" >&2
    fi
}

# sink_final NAME WANT: the sink's count now, and 2 s later (nothing more must arrive)
sink_final() {
    sleep 2
    SINK_COUNT=$($DB sink-count "$SINK_OUT")
}

# ------------------------------------------------------------------ Postfix

# pf_delivery NAME PORT RELAYHOST: a private instance under $WORK/NAME that relays to
# RELAYHOST with the benchmark's concurrency; sets PF_DIR, PF_MASTER
pf_delivery() {
    local name=$1 port=$2 relayhost=$3
    pf_start "$name" "$port" "$relayhost" "default_destination_concurrency_limit = $BENCH_CONCURRENCY
smtp_destination_concurrency_limit = $BENCH_CONCURRENCY
smtp_tls_security_level = none"
    log "$name: Postfix master pid $PF_MASTER, smtpd 127.0.0.1:$port, relayhost $relayhost, config $PF_DIR"
}

# pf_verify_empty PREFIX CONFIG_DIR: queue files and postqueue -j, both must be 0
pf_verify_empty() {
    local prefix=$1 dir=$2 n pq i
    for ((i = 0; i < 30; i++)); do
        n=$(pf_files "$dir")
        [[ $n == 0 ]] && break
        sleep 1
    done
    pq=$(pf_postqueue_count "$dir")
    record "${prefix}_queue_after" "files=$n,postqueue=$pq"
    PF_EMPTY=0
    [[ $n == 0 && $pq == 0 ]] && PF_EMPTY=1
}

# ------------------------------------------------------------------ edgerelay

# er_start NAME PORT ADMIN NEXT_HOP [EXTRA_TOML]: sets ER_PID, ER_CONF, ER_LOG
er_start() {
    local name=$1 port=$2 admin=$3 hop=$4
    er_launch "$name" "$port" "$admin" "$hop" 1000 10000 "${5:-}"
    log "$name: edgerelayd pid $ER_PID on 127.0.0.1:$port, next_hop $hop, config $ER_CONF"
}

# er_queue CONF: sets ER_Q_TOTAL and ER_Q_STATES ("deferred=N ready=M"), or ER_Q_TOTAL=error
er_queue() {
    local out=$WORK/queue-list.json line
    if "$EDGERELAYCTL" --config "$1" queue list --json >"$out" 2>"$out.err" &&
        line=$($DB queue-state "$out" 2>>"$out.err"); then
        ER_Q_TOTAL=${line%% *}
        ER_Q_STATES=${line#* }
    else
        ER_Q_TOTAL=error
        ER_Q_STATES=$(head -c 300 "$out.err")
    fi
}

# er_verify_empty PREFIX CONF: the queue must become empty (bounded: 30 s)
er_verify_empty() {
    local prefix=$1 conf=$2 i
    for ((i = 0; i < 30; i++)); do
        er_queue "$conf"
        [[ $ER_Q_TOTAL == 0 ]] && break
        sleep 1
    done
    record "${prefix}_queue_after" "$ER_Q_TOTAL${ER_Q_STATES:+($ER_Q_STATES)}"
    ER_EMPTY=0
    [[ $ER_Q_TOTAL == 0 ]] && ER_EMPTY=1
}

er_log_summary() {  # er_log_summary LOGFILE: event counts of the JSON log
    [[ -f "$1" ]] || { echo "no log"; return; }
    $PY - "$1" <<'EOF'
import json, sys, collections
c = collections.Counter()
route = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        o = json.loads(line)
    except ValueError:
        c["unparsable"] += 1
        continue
    ev = o.get("event") or o.get("type") or "?"
    c[ev] += 1
    if ev == "route":
        route.append(f"{o.get('ts') or o.get('time') or ''} {o.get('state')} {o.get('hosts') or ''} {o.get('reason') or ''}".strip())
print(" ".join(f"{k}={v}" for k, v in sorted(c.items())))
for r in route[-6:]:
    print("   route:", r)
EOF
}

# ------------------------------------------------------------------ phase 1: end to end

# e2e_measure WHO SERVER_PORT SINK_OUT SERVER_PID(for CPU): sets E2E_* and records
e2e_measure() {
    local who=$1 port=$2 cpupid=$3 n=$BENCH_E2E_MESSAGES prefix=e2e_$1 t0 c0 c1 src_rc src_end timeout
    timeout=$((n / 20 + 120))
    record "${prefix}_loadavg" "$(loadavg)"
    c0=$($UTIL cpu-seconds "$cpupid")
    [[ $who == edgerelay ]] && $DB threads "$cpupid" >"$WORK/$prefix.threads0"
    log "$prefix: smtp-source -s $BENCH_SESSIONS -l $BENCH_SIZE -m $n -> 127.0.0.1:$port, sink $DOWN_IP"
    t0=$(now)
    source_bg "$prefix" "$port" "$n"
    eval "$($DB wait-sink "$SINK_OUT" "$n" "$timeout" "$WORK/$prefix.progress")"
    c1=$($UTIL cpu-seconds "$cpupid" 2>/dev/null || echo "$c0")
    if [[ $who == edgerelay ]]; then
        $DB threads "$cpupid" >"$WORK/$prefix.threads1"
        log "$prefix: edgerelayd threads: $($DB threads-diff "$WORK/$prefix.threads0" "$WORK/$prefix.threads1")"
    fi
    # smtp-source has long finished by now (the sink has every message), or it is stuck
    local i
    for ((i = 0; i < 300; i++)); do [[ -s "$SRC_DONE" ]] && break; sleep 0.1; done
    stop_pid "$SRC_PID" smtp-source
    read -r src_rc src_end <"$SRC_DONE" 2>/dev/null || { src_rc=unknown; src_end=""; }
    [[ -s "$WORK/$prefix.source.out" ]] && { log "$prefix: smtp-source said:"; head -5 "$WORK/$prefix.source.out" >&2; }
    log "$prefix: drain curve (messages at the sink since the start): $($DB progress-summary "$WORK/$prefix.progress" "$t0" "$n")"
    if [[ -n "$W_done" ]]; then
        record "${prefix}_seconds" "$(secs "$t0" "$W_done")"
        record "${prefix}_rate" "$(rate "$n" "$t0" "$W_done")"
    else
        log "$prefix: TIMEOUT after ${timeout}s: the sink holds $W_count of $n"
    fi
    [[ -n "$src_end" ]] && record "${prefix}_intake_seconds" "$(secs "$t0" "$src_end")"
    record "${prefix}_cpu_per_msg_us" "$(cpu_per_msg "$c0" "$c1" "$n")"
    sink_final
    record "${prefix}_sink_count" "$SINK_COUNT"
    E2E_SRC_RC=$src_rc
}

# the load tools alone: smtp-source -> smtp-sink, the upper bound of phase 1
phase_ceiling() {
    wait_quiet ceiling
    next_port; local sport=$PORT n=$BENCH_E2E_MESSAGES t0
    sink_start ceiling "$DOWN_IP" "$sport"
    local spid=$SINK_PID c0 c1
    record ceiling_loadavg "$(loadavg)"
    c0=$($UTIL cpu-seconds "$spid")
    t0=$(now)
    "$SMTP_SOURCE" -s "$BENCH_SESSIONS" -l "$BENCH_SIZE" -m "$n" -f "$SENDER" -t "$RCPT" \
        "$DOWN_IP:$sport" >"$WORK/ceiling.source.out" 2>&1
    local rc=$?
    eval "$($DB wait-sink "$SINK_OUT" "$n" 60 "$WORK/ceiling.progress")"
    c1=$($UTIL cpu-seconds "$spid" 2>/dev/null || echo "$c0")
    if [[ $rc == 0 && -n "$W_done" ]]; then
        record ceiling_rate "$(rate "$n" "$t0" "$W_done")"
        record ceiling_cpu_per_msg_us "$(cpu_per_msg "$c0" "$c1" "$n")"
    else
        record ceiling_valid "INVALID(smtp-source-exit-$rc,sink=$W_count)"
    fi
    stop_pid "$spid" smtp-sink
}

phase_e2e_postfix() {
    wait_quiet e2e_postfix
    next_port; local sport=$PORT
    next_port; local port=$PORT
    sink_start e2e-postfix "$DOWN_IP" "$sport"
    local spid=$SINK_PID
    pf_delivery e2e-postfix "$port" "[$DOWN_IP]:$sport"
    local dir=$PF_DIR
    e2e_measure postfix "$port" "$PF_MASTER"
    pf_verify_empty e2e_postfix "$dir"
    local v=valid
    [[ $E2E_SRC_RC == 0 ]] || v="INVALID(smtp-source-exit-$E2E_SRC_RC)"
    [[ $SINK_COUNT == "$BENCH_E2E_MESSAGES" ]] || v="INVALID(sink=$SINK_COUNT,want=$BENCH_E2E_MESSAGES)"
    [[ $PF_EMPTY == 1 ]] || v="INVALID(queue-not-empty)"
    record e2e_postfix_valid "$v"
    log "e2e_postfix: maillog: $(grep -c 'status=sent' "$(dirname "$dir")/maillog") status=sent, $(grep -c 'status=deferred' "$(dirname "$dir")/maillog") status=deferred"
    pf_stop "$dir"
    stop_pid "$spid" smtp-sink
}

phase_e2e_edgerelay() {
    wait_quiet e2e_edgerelay
    next_port; local sport=$PORT
    next_port; local port=$PORT
    next_port; local admin=$PORT
    sink_start e2e-edgerelay "$DOWN_IP" "$sport"
    local spid=$SINK_PID
    er_start e2e-edgerelay "$port" "$admin" "[$DOWN_IP]:$sport" "[delivery]
concurrency_per_destination = $BENCH_CONCURRENCY"
    local pid=$ER_PID conf=$ER_CONF elog=$ER_LOG
    e2e_measure edgerelay "$port" "$pid"
    er_verify_empty e2e_edgerelay "$conf"
    local v=valid
    [[ $E2E_SRC_RC == 0 ]] || v="INVALID(smtp-source-exit-$E2E_SRC_RC)"
    [[ $SINK_COUNT == "$BENCH_E2E_MESSAGES" ]] || v="INVALID(sink=$SINK_COUNT,want=$BENCH_E2E_MESSAGES)"
    [[ $ER_EMPTY == 1 ]] || v="INVALID(queue-not-empty:$ER_Q_TOTAL)"
    kill -0 "$pid" 2>/dev/null || v="INVALID(edgerelayd-died)"
    record e2e_edgerelay_valid "$v"
    log "e2e_edgerelay: memory after: $($DB mem "$pid"), threads $(ls /proc/"$pid"/task 2>/dev/null | wc -l)"
    log "e2e_edgerelay: log events: $(er_log_summary "$elog")"
    stop_pid "$pid" edgerelayd
    stop_pid "$spid" smtp-sink
}

# ------------------------------------------------------------------ phase 2: drain

zone_write() {  # zone_write FILE SITE_IP: the records, replaced atomically (mv)
    local f=$1 ip=$2
    cat >"$f.tmp" <<EOF
$INBOUND. $BENCH_DNS_TTL IN MX 10 $SITE.
$SITE. $BENCH_DNS_TTL IN A $ip
EOF
    mv -f "$f.tmp" "$f"
}

# drain_measure PREFIX T_CHANGE CPUPID C0: waits for the sink; records the drain figures
drain_measure() {
    local prefix=$1 tc=$2 cpupid=$3 c0=$4 n=$BENCH_DRAIN_MESSAGES c1 timeout
    timeout=$((n / 20 + 120))
    eval "$($DB wait-sink "$SINK_OUT" "$n" "$timeout" "$WORK/$prefix.progress")"
    c1=$($UTIL cpu-seconds "$cpupid" 2>/dev/null || echo "$c0")
    log "$prefix: drain curve (messages at the sink since the change): $($DB progress-summary "$WORK/$prefix.progress" "$tc" "$n")"
    if [[ -n "$W_first" ]]; then
        record "${prefix}_first_s" "$(secs "$tc" "$W_first")"
    else
        record "${prefix}_first_s" "none"
    fi
    if [[ -n "$W_done" ]]; then
        record "${prefix}_all_s" "$(secs "$tc" "$W_done")"
        record "${prefix}_rate_from_first" "$(rate "$n" "$W_first" "$W_done")"
        record "${prefix}_rate_from_change" "$(rate "$n" "$tc" "$W_done")"
    else
        log "$prefix: TIMEOUT after ${timeout}s: the sink holds $W_count of $n"
    fi
    record "${prefix}_cpu_per_msg_us" "$(cpu_per_msg "$c0" "$c1" "$n")"
    sink_final
    record "${prefix}_sink_count" "$SINK_COUNT"
}

phase_drain_edgerelay() {
    local n=$BENCH_DRAIN_MESSAGES prefix=drain_edgerelay
    wait_quiet $prefix
    next_port; local sport=$PORT
    next_port; local port=$PORT
    next_port; local admin=$PORT
    next_port; local dport=$PORT
    local zone=$WORK/drain.zone qlog=$WORK/drain.dns-queries
    zone_write "$zone" "$DOWN_IP"
    $DB dns-server "$dport" "$zone" "$qlog" 2>"$WORK/dns.err" &
    local dnspid=$!
    BG_PIDS+=("$dnspid")
    $DB dns-ask "$dport" "$SITE" A 15 >/dev/null || { cat "$WORK/dns.err" >&2; die "DNS server did not start"; }
    log "$prefix: DNS on 127.0.0.1:$dport: $INBOUND MX 10 $SITE, $SITE A $DOWN_IP, TTL $BENCH_DNS_TTL s (nothing listens on $DOWN_IP:$sport)"
    er_start "$prefix" "$port" "$admin" "$INBOUND" "[dns]
nameservers = [\"127.0.0.1:$dport\"]

[delivery]
port = $sport
retry_initial = \"10m\"
concurrency_per_destination = $BENCH_CONCURRENCY"
    local pid=$ER_PID conf=$ER_CONF elog=$ER_LOG
    record "${prefix}_loadavg_inject" "$(loadavg)"
    log "$prefix: injecting $n messages (smtp-source -s $BENCH_SESSIONS -l $BENCH_SIZE -m $n)"
    source_fg "$prefix" "$port" "$n"
    [[ $SOURCE_RC == 0 ]] || record "${prefix}_valid" "INVALID(smtp-source-exit-$SOURCE_RC)"
    record "${prefix}_messages" "$n"
    record "${prefix}_inject_rate" "$(awk -v n="$n" -v s="$SOURCE_SECS" 'BEGIN{printf "%.1f", n / s}')"
    # all of them queued and deferred (bounded: 5 min)
    local t0 i ok=0
    t0=$(now)
    for ((i = 0; i < 150; i++)); do
        er_queue "$conf"
        [[ $ER_Q_TOTAL == "$n" && $ER_Q_STATES == "deferred=$n" ]] && { ok=1; break; }
        sleep 2
    done
    record "${prefix}_deferred_wait_s" "$(secs "$t0" "$(now)")"
    log "$prefix: queue: $ER_Q_TOTAL messages ($ER_Q_STATES); log events: $(er_log_summary "$elog" | head -1)"
    log "$prefix: memory with $n deferred: $($DB mem "$pid")"
    if [[ $ok != 1 ]]; then
        record "${prefix}_valid" "INVALID(not-all-deferred:$ER_Q_TOTAL:$ER_Q_STATES)"
        stop_pid "$pid" edgerelayd; stop_pid "$dnspid" dns-server
        return
    fi
    wait_quiet $prefix
    sink_start "$prefix" "$UP_IP" "$sport"
    local spid=$SINK_PID c0 tc
    sleep 1
    record "${prefix}_loadavg" "$(loadavg)"
    c0=$($UTIL cpu-seconds "$pid")
    $DB threads "$pid" >"$WORK/$prefix.threads0"
    tc=$(now)
    zone_write "$zone" "$UP_IP"
    log "$prefix: record changed at $tc: $SITE A $UP_IP (sink listening on $UP_IP:$sport)"
    drain_measure "$prefix" "$tc" "$pid" "$c0"
    $DB threads "$pid" >"$WORK/$prefix.threads1"
    log "$prefix: edgerelayd threads during the drain (and the 2 s after): $($DB threads-diff "$WORK/$prefix.threads0" "$WORK/$prefix.threads1")"
    log "$prefix: DNS queries for $SITE around the change: $(awk -v tc="$tc" '$2 ~ /^site\./ && $1 > tc - 5 && $1 < tc + 10 { printf "%+.2fs:%s ", $1 - tc, $3 }' "$qlog" | head -c 600)"
    log "$prefix: DNS queries in total: $(grep -vc reload "$qlog")"
    er_verify_empty "$prefix" "$conf"
    local v=valid
    [[ $SINK_COUNT == "$n" ]] || v="INVALID(sink=$SINK_COUNT,want=$n)"
    [[ $ER_EMPTY == 1 ]] || v="INVALID(queue-not-empty:$ER_Q_TOTAL)"
    kill -0 "$pid" 2>/dev/null || v="INVALID(edgerelayd-died)"
    grep -q "^${prefix}_valid " "$RESULTS" || record "${prefix}_valid" "$v"
    log "$prefix: memory after the drain: $($DB mem "$pid"); spool data.mdb $(du -m "$WORK/$prefix/spool/data.mdb" | cut -f1) MiB"
    log "$prefix: log events: $(er_log_summary "$elog")"
    stop_pid "$pid" edgerelayd
    stop_pid "$spid" smtp-sink
    stop_pid "$dnspid" dns-server
}

phase_drain_postfix() {
    local n=$BENCH_DRAIN_MESSAGES prefix=drain_postfix
    wait_quiet $prefix
    next_port; local sport=$PORT
    next_port; local port=$PORT
    pf_delivery "$prefix" "$port" "[$DOWN_IP]:$sport"
    local dir=$PF_DIR master=$PF_MASTER
    record "${prefix}_loadavg_inject" "$(loadavg)"
    log "$prefix: injecting $n messages while relayhost [$DOWN_IP]:$sport is dead"
    source_fg "$prefix" "$port" "$n"
    [[ $SOURCE_RC == 0 ]] || record "${prefix}_valid" "INVALID(smtp-source-exit-$SOURCE_RC)"
    record "${prefix}_messages" "$n"
    record "${prefix}_inject_rate" "$(awk -v n="$n" -v s="$SOURCE_SECS" 'BEGIN{printf "%.1f", n / s}')"
    local t0 i ok=0 d
    t0=$(now)
    for ((i = 0; i < 300; i++)); do
        d=$(pf_files "$dir" deferred)
        [[ $d == "$n" && $(pf_files "$dir" incoming active maildrop) == 0 ]] && { ok=1; break; }
        sleep 1
    done
    record "${prefix}_deferred_wait_s" "$(secs "$t0" "$(now)")"
    log "$prefix: deferred queue files: $d, postqueue -j lines: $(pf_postqueue_count "$dir")"
    if [[ $ok != 1 ]]; then
        record "${prefix}_valid" "INVALID(not-all-deferred:$d)"
        return   # the instance is stopped (and its queue removed) at exit
    fi
    wait_quiet $prefix
    sink_start "$prefix" "$UP_IP" "$sport"
    local spid=$SINK_PID c0 tc
    sleep 1
    record "${prefix}_loadavg" "$(loadavg)"
    c0=$($UTIL cpu-seconds "$master")
    tc=$(now)
    "$POSTCONF" -c "$dir" -e "relayhost = [$UP_IP]:$sport" && "$POSTFIX" -c "$dir" reload >/dev/null 2>&1 &&
        "$POSTQUEUE" -c "$dir" -f || log "$prefix: postconf/reload/postqueue -f failed"
    log "$prefix: relayhost changed, reloaded and flushed in $(secs "$tc" "$(now)") s"
    drain_measure "$prefix" "$tc" "$master" "$c0"
    pf_verify_empty "$prefix" "$dir"
    local v=valid
    [[ $SINK_COUNT == "$n" ]] || v="INVALID(sink=$SINK_COUNT,want=$n)"
    [[ $PF_EMPTY == 1 ]] || v="INVALID(queue-not-empty)"
    grep -q "^${prefix}_valid " "$RESULTS" || record "${prefix}_valid" "$v"
    pf_stop "$dir"
    stop_pid "$spid" smtp-sink
}

# ------------------------------------------------------------------ main

log "scratch directory $WORK, phases: $BENCH_PHASES, rounds: $BENCH_ROUNDS"
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
    ((BENCH_ROUNDS > 1)) && log "---- round $r of $BENCH_ROUNDS"
    if ((r % 2 == 1)); then
        order="ceiling e2e-postfix e2e-edgerelay drain-edgerelay drain-postfix"
    else
        order="ceiling e2e-edgerelay e2e-postfix drain-postfix drain-edgerelay"
    fi
    for ph in $order; do
        has_phase "$ph" || continue
        case $ph in
        ceiling) phase_ceiling ;;
        e2e-postfix) phase_e2e_postfix ;;
        e2e-edgerelay) phase_e2e_edgerelay ;;
        drain-edgerelay) phase_drain_edgerelay ;;
        drain-postfix) phase_drain_postfix ;;
        esac
    done
done
record loadavg_end "$(loadavg)"
[[ -n "$BENCH_RESULTS" ]] && cp "$RESULTS" "$BENCH_RESULTS"
$DB report "$RESULTS"
