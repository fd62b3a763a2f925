#!/bin/bash
# edgerelay intake benchmark, beside Postfix, in one run (SPEC §5).
#
#   tests/bench/run_intake_bench.sh            # everything, defaults below
#   BENCH_MESSAGES=5000 tests/bench/run_intake_bench.sh
#
# Phases (BENCH_PHASES, space separated; default: all of them, in this order):
#   ceiling    smtp-source -> smtp-sink on loopback: what the load tools alone manage
#   postfix    smtp-source -> a private Postfix instance whose relayhost is down
#   edgerelay  smtp-source -> edgerelayd whose route's next hop is down
#   edgerelay-tmpfs  the same with the spool on tmpfs (/dev/shm), where fdatasync costs
#              nothing: NOT durable and not a result, a diagnostic of how much of the
#              time per message is the disk's (commit latency) rather than edgerelayd's
#   latency    one session each, end of data -> 250, p50/p99; Postfix and edgerelay take
#              turns in blocks of BENCH_LATENCY_BLOCK messages (same noise for both)
#              (= latency-postfix latency-edgerelay)
#   idle       BENCH_IDLE_CONNECTIONS idle connections to edgerelayd, its VmRSS
#              (and BENCH_POSTFIX_IDLE connections to Postfix, RSS/PSS per connection)
#              (= idle-postfix idle-edgerelay)
# After every intake/latency phase the queue is counted (Postfix: queue files and
# postqueue -j; edgerelay: edgerelayctl queue list --json); a count that differs from
# what was acknowledged marks the run INVALID (exit status 3).
#
# Environment (defaults):
#   BENCH_MESSAGES=20000        messages per intake phase (smtp-source -m)
#   BENCH_SESSIONS=20           parallel sessions (smtp-source -s)
#   BENCH_SIZE=4096             message size (smtp-source -l, latency script --size)
#   BENCH_ROUNDS=1              intake rounds (ceiling, Postfix, edgerelay; order of the
#                               last two alternates); medians are reported
#   BENCH_LATENCY_MESSAGES=2000 messages in each latency session (+20 warm-up)
#   BENCH_LATENCY_BLOCK=100     the two latency sessions take turns every this many messages
#   BENCH_IDLE_CONNECTIONS=10000  idle connections to edgerelayd
#   BENCH_IDLE_SOURCES=100      source addresses 127.0.0.1..127.0.0.N for them
#   BENCH_POSTFIX_IDLE=50       idle connections to Postfix (0 = skip; < process limit 100)
#   BENCH_PHASES="ceiling postfix edgerelay edgerelay-tmpfs latency idle"
#   BENCH_POSTFIX_DOWN=relayhost  how Postfix's destination is down: "relayhost" (relayhost
#                               [127.0.0.2]:2599, nothing listens: qmgr and smtp try and
#                               defer, like a real outage) or "defer" (defer_transports=smtp:
#                               no delivery attempts at all)
#   BENCH_SERVER_CPUS=          CPUs (taskset list) for the server under test: smtp-sink,
#                               Postfix (its master and every process it starts), edgerelayd
#   BENCH_LOAD_CPUS=            CPUs for the load tools (smtp-source, the latency client).
#                               Unset (default), everything shares every core, and the load
#                               tool takes CPU from the server; with 2 cores,
#                               BENCH_SERVER_CPUS=0 BENCH_LOAD_CPUS=1 gives each its own
#   EDGERELAY_BIN_DIR=<repo>/build/programs   where edgerelayd and edgerelayctl are
#   BENCH_TMPDIR=/tmp           parent of the run's scratch directory (same disk = fair)
#   BENCH_KEEP=0                1 keeps the scratch directory (configs, logs, spools)
#   BENCH_RESULTS=              also copy the raw "key value" results to this file
#
# Runs as root (Postfix's master must). Only loopback is used. Every process started
# here is stopped by its PID at exit (trap), and both private instances are removed.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
UTIL="$PY $HERE/bench_util.py"

BENCH_MESSAGES=${BENCH_MESSAGES:-20000}
BENCH_SESSIONS=${BENCH_SESSIONS:-20}
BENCH_SIZE=${BENCH_SIZE:-4096}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_LATENCY_MESSAGES=${BENCH_LATENCY_MESSAGES:-2000}
BENCH_LATENCY_WARMUP=${BENCH_LATENCY_WARMUP:-20}
BENCH_LATENCY_BLOCK=${BENCH_LATENCY_BLOCK:-100}
BENCH_IDLE_CONNECTIONS=${BENCH_IDLE_CONNECTIONS:-10000}
BENCH_IDLE_SOURCES=${BENCH_IDLE_SOURCES:-100}
BENCH_POSTFIX_IDLE=${BENCH_POSTFIX_IDLE:-50}
BENCH_POSTFIX_DOWN=${BENCH_POSTFIX_DOWN:-relayhost}
BENCH_PHASES=${BENCH_PHASES:-ceiling postfix edgerelay edgerelay-tmpfs latency idle}
EDGERELAY_BIN_DIR=${EDGERELAY_BIN_DIR:-$REPO/build/programs}
BENCH_TMPDIR=${BENCH_TMPDIR:-/tmp}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RESULTS=${BENCH_RESULTS:-}

SENDER=sender@example.net
RCPT_DOMAIN=rockerduck.example
RCPT=bench@$RCPT_DOMAIN
DEAD_HOP_IP=127.0.0.2
DEAD_HOP_PORT=2599

SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
POSTCONF=$(command -v postconf || echo /usr/sbin/postconf)
POSTQUEUE=$(command -v postqueue || echo /usr/sbin/postqueue)
EDGERELAYD=$EDGERELAY_BIN_DIR/edgerelayd
EDGERELAYCTL=$EDGERELAY_BIN_DIR/edgerelayctl

# ------------------------------------------------------------------ bookkeeping

# log die record now rate cpu_per_msg stop_pid next_port, the traps, pf_start pf_stop
# pf_files pf_postqueue_count er_launch
source "$HERE/bench_lib.sh"
BENCH_CLEANUP_NOTE="Postfix queue files take a while on some disks"

has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# ------------------------------------------------------------------ checks

# "latency" and "idle" stand for their Postfix and edgerelay halves
PHASES=""
for p in $BENCH_PHASES; do
    case $p in
    latency) PHASES+=" latency-postfix latency-edgerelay" ;;
    idle) PHASES+=" idle-postfix idle-edgerelay" ;;
    ceiling | postfix | edgerelay | edgerelay-tmpfs | latency-postfix | latency-edgerelay | idle-postfix | idle-edgerelay) PHASES+=" $p" ;;
    *) die "unknown phase '$p' in BENCH_PHASES" ;;
    esac
done
[[ "$BENCH_POSTFIX_IDLE" -gt 0 ]] || PHASES=${PHASES/ idle-postfix/}
[[ "$BENCH_POSTFIX_DOWN" == relayhost || "$BENCH_POSTFIX_DOWN" == defer ]] || die "BENCH_POSTFIX_DOWN must be relayhost or defer"

[[ $(id -u) == 0 ]] || die "run as root (Postfix's master runs as root)"
for t in "$SMTP_SOURCE" "$SMTP_SINK" "$POSTFIX" "$POSTQUEUE" "$PY"; do
    [[ -x "$t" ]] || die "missing $t"
done
if has_phase edgerelay || has_phase edgerelay-tmpfs || has_phase latency-edgerelay || has_phase idle-edgerelay; then
    [[ -x "$EDGERELAYD" && -x "$EDGERELAYCTL" ]] ||
        die "edgerelayd/edgerelayctl not found in EDGERELAY_BIN_DIR=$EDGERELAY_BIN_DIR (build them, or set BENCH_PHASES)"
fi
for p in $(pgrep -x master 2>/dev/null); do
    log "note: a Postfix master (pid $p) is already running on this machine; it is not ours and is left alone"
done

bench_workdir edgerelay-bench

record_machine
record postfix_down "$BENCH_POSTFIX_DOWN"
record messages "$BENCH_MESSAGES"
record sessions "$BENCH_SESSIONS"
record size "$BENCH_SIZE"
record latency_messages "$BENCH_LATENCY_MESSAGES"
record idle_connections "$BENCH_IDLE_CONNECTIONS"

# run_source PORT LABEL: smtp-source with the benchmark's parameters, timed; sets RATE
run_source() {
    local port=$1 label=$2 t0 t1 rc
    log "$label: smtp-source -s $BENCH_SESSIONS -l $BENCH_SIZE -m $BENCH_MESSAGES -> 127.0.0.1:$port"
    # GNU time (package "time") reports smtp-source's own CPU: the load tool shares the
    # two cores with the server, so its share bounds what any server can reach here.
    local timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "%U %S" -o "$WORK/$label.source.time")
    t0=$(now)
    "${timer[@]}" "${LOAD_PIN[@]}" "$SMTP_SOURCE" -s "$BENCH_SESSIONS" -l "$BENCH_SIZE" -m "$BENCH_MESSAGES" \
        -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$WORK/$label.source.out" 2>&1
    rc=$?
    t1=$(now)
    RATE=$(rate "$BENCH_MESSAGES" "$t0" "$t1")
    SOURCE_RC=$rc
    SOURCE_CPU_US=
    [[ -s "$WORK/$label.source.time" ]] &&
        SOURCE_CPU_US=$(awk -v n="$BENCH_MESSAGES" 'NF == 2 { printf "%.0f", ($1 + $2) * 1e6 / n }' "$WORK/$label.source.time")
    if [[ $rc != 0 || -s "$WORK/$label.source.out" ]]; then
        log "$label: smtp-source exit $rc; output:"
        head -20 "$WORK/$label.source.out" >&2
    fi
    log "$label: $BENCH_MESSAGES messages in $(awk -v s="$t0" -v e="$t1" 'BEGIN{printf "%.2f", e-s}') s = $RATE msgs/s"
}

# ------------------------------------------------------------------ Postfix

# pf_intake NAME PORT: a private instance under $WORK/NAME whose relayhost is down;
# sets PF_DIR (its config dir) and PF_MASTER
pf_intake() {
    local name=$1 port=$2 t0
    t0=$(now)
    pf_start "$name" "$port" "[$DEAD_HOP_IP]:$DEAD_HOP_PORT" "# the relayhost is down: nothing listens there, so mail is accepted and deferred
$([[ "$BENCH_POSTFIX_DOWN" == defer ]] && echo "defer_transports = smtp")
anvil_rate_time_unit = 60s"
    log "$name: Postfix master pid $PF_MASTER, smtpd on 127.0.0.1:$port, config $PF_DIR (up in $(awk -v s="$t0" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}') s)"
}

# pf_verify PREFIX CONFIG_DIR EXPECTED
pf_verify() {
    local prefix=$1 dir=$2 want=$3 n pq i
    # qmgr is still moving files incoming -> active -> deferred; a count taken while
    # it renames can see one file twice. Wait (bounded) until incoming and active are
    # empty and two counts agree.
    n=-1
    for ((i = 0; i < 120; i++)); do
        local moving prev=$n
        moving=$(pf_files "$dir" incoming active)
        n=$(pf_files "$dir")
        [[ $moving == 0 && $n == "$prev" ]] && break
        sleep 1
    done
    pq=$(pf_postqueue_count "$dir")
    record "${prefix}_queued" "$n"
    record "${prefix}_postqueue" "$pq"
    if [[ "$n" == "$want" && "$pq" == "$want" ]]; then
        record "${prefix}_valid" valid
    else
        record "${prefix}_valid" "INVALID(sent=$want,queue_files=$n,postqueue=$pq)"
    fi
}

# ------------------------------------------------------------------ edgerelay

# er_start NAME PORT ADMIN_PORT PER_IP MAX_CONN: sets ER_PID, ER_CONF
er_start() {
    local name=$1 port=$2 admin=$3
    er_launch "$name" "$port" "$admin" "[$DEAD_HOP_IP]:$DEAD_HOP_PORT" "$4" "$5"
    log "$name: edgerelayd pid $ER_PID on 127.0.0.1:$port (admin $admin, healthz $($UTIL http-get "http://127.0.0.1:$admin/healthz" 5)), config $ER_CONF"
}

er_count() {  # er_count CONF: messages in the queue per edgerelayctl (or "error")
    local out=$WORK/queue-list.json
    if "$EDGERELAYCTL" --config "$1" queue list --json >"$out" 2>"$out.err"; then
        $UTIL count-json "$out" messages 2>>"$out.err" || echo error
    else
        echo error
    fi
}

# er_verify PREFIX CONF EXPECTED PID: count at once, and again later if it differs
er_verify() {
    local prefix=$1 conf=$2 want=$3 pid=$4 n n2 i t0 t1
    t0=$(now)
    n=$(er_count "$conf")
    t1=$(now)
    log "$prefix: edgerelayctl queue list --json took $(awk -v s="$t0" -v e="$t1" 'BEGIN{printf "%.2f", e-s}') s"
    n2=$n
    if [[ "$n" != "$want" ]]; then
        for ((i = 0; i < 5; i++)); do
            sleep 2
            n2=$(er_count "$conf")
            [[ "$n2" == "$want" ]] && break
        done
        [[ "$n" == error ]] && { log "$prefix: edgerelayctl failed:"; head -5 "$WORK/queue-list.json.err" >&2; }
    fi
    record "${prefix}_queued" "$n"
    if ! kill -0 "$pid" 2>/dev/null; then
        record "${prefix}_valid" "INVALID(edgerelayd-died)"
    elif [[ "$n" == "$want" ]]; then
        record "${prefix}_valid" valid
    elif [[ "$n2" == "$want" ]]; then
        # the spool caught up only after the 250s were given: acknowledged before durable
        record "${prefix}_valid" "INVALID(sent=$want,queued-at-end=$n,queued-later=$n2)"
    else
        record "${prefix}_valid" "INVALID(sent=$want,queued=$n,later=$n2)"
    fi
}

# ------------------------------------------------------------------ phases

phase_ceiling() {
    next_port; local port=$PORT pid
    "${SERVER_PIN[@]}" "$SMTP_SINK" -u nobody "127.0.0.1:$port" 1024 >"$WORK/sink.out" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    $UTIL wait-banner 127.0.0.1 "$port" 15 || die "smtp-sink did not start"
    local c0 c1
    c0=$($UTIL cpu-seconds "$pid")
    run_source "$port" ceiling
    c1=$($UTIL cpu-seconds "$pid" 2>/dev/null || echo "$c0")
    stop_pid "$pid" smtp-sink
    if [[ $SOURCE_RC == 0 ]]; then
        record ceiling_rate "$RATE"
        record ceiling_cpu_per_msg_us "$(cpu_per_msg "$c0" "$c1" "$BENCH_MESSAGES")"
        [[ -n "$SOURCE_CPU_US" ]] && record ceiling_source_cpu_per_msg_us "$SOURCE_CPU_US"
    else
        record ceiling_valid "INVALID(smtp-source-exit-$SOURCE_RC)"
    fi
}

phase_postfix() {
    local round=$1
    next_port; local port=$PORT
    pf_intake "postfix-intake-$round" "$port"
    local dir=$PF_DIR master=$PF_MASTER c0 c1
    c0=$($UTIL cpu-seconds "$master")
    run_source "$port" "postfix-intake-$round"
    c1=$($UTIL cpu-seconds "$master" 2>/dev/null || echo "$c0")
    if [[ $SOURCE_RC == 0 ]]; then
        record postfix_rate "$RATE"
        record postfix_cpu_per_msg_us "$(cpu_per_msg "$c0" "$c1" "$BENCH_MESSAGES")"
        [[ -n "$SOURCE_CPU_US" ]] && record postfix_source_cpu_per_msg_us "$SOURCE_CPU_US"
        pf_verify postfix "$dir" "$BENCH_MESSAGES"
    else
        record postfix_valid "INVALID(smtp-source-exit-$SOURCE_RC)"
    fi
    # the queue files are removed at exit: deleting fsynced files is slow here
    # (ext4 mounted with discard: ~7 ms a file) and must not overlap a measurement
    pf_stop "$dir"
}

# er_intake NAME PREFIX: one edgerelay intake phase, recorded as PREFIX_*
er_intake() {
    local name=$1 prefix=$2
    next_port; local port=$PORT
    next_port; local admin=$PORT
    er_start "$name" "$port" "$admin" 1000 10000
    local pid=$ER_PID conf=$ER_CONF c0 c1
    c0=$($UTIL cpu-seconds "$pid")
    run_source "$port" "$name"
    c1=$($UTIL cpu-seconds "$pid" 2>/dev/null || echo "$c0")
    if [[ $SOURCE_RC == 0 ]]; then
        record "${prefix}_rate" "$RATE"
        record "${prefix}_cpu_per_msg_us" "$(cpu_per_msg "$c0" "$c1" "$BENCH_MESSAGES")"
        [[ -n "$SOURCE_CPU_US" ]] && record "${prefix}_source_cpu_per_msg_us" "$SOURCE_CPU_US"
        # How many messages one commit served, and how long a message waited for it.
        local per ms wait
        read -r per ms wait < <($UTIL spool-commits "http://127.0.0.1:$admin/metrics" 30)
        record "${prefix}_writes_per_commit" "$per"
        record "${prefix}_commit_ms" "$ms"
        record "${prefix}_intake_wait_ms" "$wait"
        er_verify "$prefix" "$conf" "$BENCH_MESSAGES" "$pid"
    else
        record "${prefix}_valid" "INVALID(smtp-source-exit-$SOURCE_RC)"
        tail -20 "$WORK/$name/stderr" >&2
    fi
    log "$name: VmRSS after intake $($UTIL proc-mem "$pid" | awk '{printf "%.1f MiB", $1/1024}')"
    stop_pid "$pid" edgerelayd
}

phase_edgerelay() { er_intake "edgerelay-intake-$1" edgerelay; }

# The edgerelay phase again with the spool on tmpfs: every sync returns at once, so the
# gap between the two rates is what waiting for the disk costs. Recorded apart
# (edgerelay_tmpfs_*), never used in a ratio with a target.
phase_edgerelay_tmpfs() {
    if [[ "$(df -T /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')" != tmpfs ]]; then
        log "edgerelay-tmpfs: /dev/shm is not a tmpfs here; phase skipped"
        return
    fi
    local spool
    spool=$(mktemp -d /dev/shm/edgerelay-bench-spool.XXXXXX) || die "mktemp in /dev/shm"
    MEMORY_DIRS+=("$spool")
    ER_SPOOL_DIR=$spool er_intake edgerelay-tmpfs edgerelay_tmpfs
    rm -rf "$spool"
}

# latency_record WHO FILE: records WHO_lat_* from accept_latency.py's output; sets LAT_ACCEPTED
latency_record() {
    local who=$1 out=$2
    eval "$($UTIL json-vars "$out" L p50_ms=targets."$who".p50_ms p90_ms=targets."$who".p90_ms \
        p99_ms=targets."$who".p99_ms max_ms=targets."$who".max_ms mean_ms=targets."$who".mean_ms \
        msgs_per_s=targets."$who".msgs_per_s accepted=targets."$who".accepted valid=targets."$who".valid \
        errors=targets."$who".errors error)"
    if [[ -z "$L_valid" ]]; then
        cat "$out.err" >&2
        record "${who}_lat_valid" "INVALID(latency-script-failed:$L_error)"
        LAT_ACCEPTED=-1
        return
    fi
    record "${who}_lat_p50" "$L_p50_ms"
    record "${who}_lat_p90" "$L_p90_ms"
    record "${who}_lat_p99" "$L_p99_ms"
    record "${who}_lat_max" "$L_max_ms"
    record "${who}_lat_mean" "$L_mean_ms"
    record "${who}_lat_rate" "$L_msgs_per_s"
    if [[ "$L_valid" == True ]]; then
        record "${who}_lat_valid" valid
    else
        log "$who-latency: errors: $L_errors $L_error"
        record "${who}_lat_valid" "INVALID(latency-script-errors)"
    fi
    LAT_ACCEPTED=${L_accepted:--1}
}

# Postfix and edgerelay each get one session; the script alternates blocks of
# BENCH_LATENCY_BLOCK messages between them so both see the same machine noise.
phase_latency() {
    local targets=() pf_port="" pf_dir="" pf_master="" er_pid="" er_conf="" out=$WORK/latency.json
    if has_phase latency-postfix; then
        next_port; pf_port=$PORT
        pf_intake postfix-latency "$pf_port"
        pf_dir=$PF_DIR pf_master=$PF_MASTER
        targets+=(--target "postfix=$pf_port")
    fi
    if has_phase latency-edgerelay; then
        next_port; local port=$PORT
        next_port; local admin=$PORT
        er_start edgerelay-latency "$port" "$admin" 100 10000
        er_pid=$ER_PID er_conf=$ER_CONF
        targets+=(--target "edgerelay=$port")
    fi
    log "latency: $BENCH_LATENCY_MESSAGES (+$BENCH_LATENCY_WARMUP warm-up) messages over one session each, $((${#targets[@]} / 2)) server(s) taking turns every $BENCH_LATENCY_BLOCK messages"
    "${LOAD_PIN[@]}" $PY "$HERE/accept_latency.py" "${targets[@]}" --count "$BENCH_LATENCY_MESSAGES" \
        --warmup "$BENCH_LATENCY_WARMUP" --block "$BENCH_LATENCY_BLOCK" --size "$BENCH_SIZE" \
        --sender "$SENDER" --rcpt "$RCPT" >"$out" 2>"$out.err"
    local want=$((BENCH_LATENCY_MESSAGES + BENCH_LATENCY_WARMUP))
    if [[ -n "$pf_dir" ]]; then
        latency_record postfix "$out"
        if [[ "$LAT_ACCEPTED" -ge 0 ]]; then
            pf_verify postfix_lat "$pf_dir" "$LAT_ACCEPTED"
            [[ "$LAT_ACCEPTED" == "$want" ]] || record postfix_lat_valid "INVALID(accepted=$LAT_ACCEPTED)"
        fi
    fi
    if [[ -n "$er_pid" ]]; then
        latency_record edgerelay "$out"
        if [[ "$LAT_ACCEPTED" -ge 0 ]]; then
            er_verify edgerelay_lat "$er_conf" "$LAT_ACCEPTED" "$er_pid"
            [[ "$LAT_ACCEPTED" == "$want" ]] || record edgerelay_lat_valid "INVALID(accepted=$LAT_ACCEPTED)"
        fi
        stop_pid "$er_pid" edgerelayd
    fi
    if [[ -n "$pf_dir" ]]; then
        has_phase idle-postfix && postfix_idle "$pf_port" "$pf_master"
        pf_stop "$pf_dir"
    fi
}

postfix_idle() {
    local port=$1 master=$2 out=$WORK/postfix-idle.json
    log "postfix-idle: $BENCH_POSTFIX_IDLE idle connections (memory summed over master and children)"
    sleep 1
    $PY "$HERE/idle_connections.py" --port "$port" --count "$BENCH_POSTFIX_IDLE" --sources 1 \
        --parallel 10 --hold 3 --pid "$master" --tree >"$out" 2>"$out.err"
    eval "$($UTIL json-vars "$out" I open=still_open_after_hold rss=kib_per_conn_delta \
        pss=pss_kib_per_conn_delta procs_before=before.processes procs_after=after.processes)"
    [[ -n "$I_open" ]] || { cat "$out.err" >&2; return; }
    record postfix_idle_open "$I_open"
    record postfix_idle_rss_kib_per_conn "$I_rss"
    record postfix_idle_pss_kib_per_conn "$I_pss"
    log "postfix-idle: processes $I_procs_before -> $I_procs_after"
}

phase_idle_edgerelay() {
    next_port; local port=$PORT
    next_port; local admin=$PORT
    local per_ip=$(((BENCH_IDLE_CONNECTIONS + BENCH_IDLE_SOURCES - 1) / BENCH_IDLE_SOURCES))
    ((per_ip < 100)) && per_ip=100
    er_start edgerelay-idle "$port" "$admin" "$per_ip" $((BENCH_IDLE_CONNECTIONS + 100))
    local pid=$ER_PID out=$WORK/edgerelay-idle.json
    log "edgerelay-idle: $BENCH_IDLE_CONNECTIONS connections from 127.0.0.1..127.0.0.$BENCH_IDLE_SOURCES (max_connections_per_ip=$per_ip)"
    $PY "$HERE/idle_connections.py" --port "$port" --count "$BENCH_IDLE_CONNECTIONS" \
        --sources "$BENCH_IDLE_SOURCES" --hold 3 --pid "$pid" >"$out" 2>"$out.err"
    eval "$($UTIL json-vars "$out" I open=still_open_after_hold est=established rss0=rss_before_mib \
        rss=rss_mib hwm=hwm_mib kib=kib_per_conn_total kibd=kib_per_conn_delta secs=open_seconds \
        fds=server_fds threads=after.threads fail=failures valid)"
    if [[ -z "$I_open" ]]; then
        cat "$out.err" >&2
        record edgerelay_idle_valid "INVALID(idle-script-failed)"
    else
        record edgerelay_idle_open "$I_open"
        record edgerelay_idle_rss0_mib "$I_rss0"
        record edgerelay_idle_rss_mib "$I_rss"
        record edgerelay_idle_hwm_mib "$I_hwm"
        record edgerelay_idle_kib_per_conn "$I_kib"
        record edgerelay_idle_kib_per_conn_delta "$I_kibd"
        log "edgerelay-idle: established $I_est in $I_secs s, daemon fds $I_fds, threads $I_threads, failures $I_fail"
        if ! kill -0 "$pid" 2>/dev/null; then
            record edgerelay_idle_valid "INVALID(edgerelayd-died)"
        elif [[ "$I_valid" == True ]]; then
            record edgerelay_idle_valid valid
        else
            record edgerelay_idle_valid "INVALID(open=$I_open,failures=$I_fail)"
        fi
    fi
    stop_pid "$pid" edgerelayd
}

# ------------------------------------------------------------------ main

log "scratch directory $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2}')), phases:$PHASES"
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
    ((BENCH_ROUNDS > 1)) && log "---- intake round $r of $BENCH_ROUNDS"
    has_phase ceiling && phase_ceiling
    if ((r % 2 == 1)); then
        has_phase postfix && phase_postfix "$r"
        has_phase edgerelay && phase_edgerelay "$r"
    else
        has_phase edgerelay && phase_edgerelay "$r"
        has_phase postfix && phase_postfix "$r"
    fi
    has_phase edgerelay-tmpfs && phase_edgerelay_tmpfs
done
if has_phase latency-postfix || has_phase latency-edgerelay; then
    phase_latency   # idle-postfix runs on its Postfix instance afterwards
fi
if has_phase idle-postfix && ! has_phase latency-postfix; then
    next_port; pf_intake postfix-idle "$PORT"; postfix_idle "$PORT" "$PF_MASTER"; pf_stop "$PF_DIR"
fi
has_phase idle-edgerelay && phase_idle_edgerelay

record loadavg_end "$(loadavg)"
[[ -n "$BENCH_RESULTS" ]] && cp "$RESULTS" "$BENCH_RESULTS"
$UTIL report "$RESULTS"
