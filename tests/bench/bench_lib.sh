# Shared shell of the benchmark drivers (run_intake_bench.sh, run_delivery_bench.sh).
# Not a program: a driver sources it after setting HERE, UTIL, POSTFIX, POSTCONF,
# POSTQUEUE, EDGERELAYD, BENCH_TMPDIR and BENCH_KEEP:
#
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$HERE/bench_lib.sh"
#
# Sourcing it sets up the bookkeeping (BG_PIDS, POSTFIX_DIRS, WORK, USED_PORTS) and the
# EXIT/INT/TERM traps that stop, by PID, every process the driver started. A driver may
# then set BENCH_CLEANUP_NOTE: it is logged before the scratch directory is removed.

BENCH_DRIVER=$(basename "$0")   # named in the generated configurations

# ------------------------------------------------------------------ bookkeeping

# Optional CPU placement (BENCH_SERVER_CPUS / BENCH_LOAD_CPUS, taskset lists such as
# "0" or "0-1"). pf_start and er_launch start their server with SERVER_PIN; a driver
# puts its load tools behind LOAD_PIN (run_intake_bench.sh does, and its smtp-sink
# behind SERVER_PIN), so server and load run on cores of their own.
SERVER_PIN=()
LOAD_PIN=()
[[ -n "${BENCH_SERVER_CPUS:-}" ]] && SERVER_PIN=(taskset -c "$BENCH_SERVER_CPUS")
[[ -n "${BENCH_LOAD_CPUS:-}" ]] && LOAD_PIN=(taskset -c "$BENCH_LOAD_CPUS")

BG_PIDS=()          # processes started here, stopped by PID at exit
POSTFIX_DIRS=()     # private Postfix instances (config directories) to stop at exit
MEMORY_DIRS=()      # scratch directories on tmpfs, removed at exit even with BENCH_KEEP=1
WORK=""
RESULTS=""
USED_PORTS=" "
BENCH_CLEANUP_NOTE=""

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
record() { echo "$1 $2" >>"$RESULTS"; log "  $1 = $2"; }
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { if (e - s > 0) printf "%.1f", n / (e - s); else print "n/a" }'; }
cpu_per_msg() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }'; }  # C0 C1 MESSAGES: µs

stop_pid() {  # stop_pid PID [label]: TERM, wait up to 15 s, then KILL
    local pid=$1 label=${2:-process} i
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            # a reaped child of ours disappears; a zombie child is reaped by wait below
            [[ "$(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null)" == Z ]] && break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null)" != Z ]]; then
            log "$label (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    local keep=() p
    for p in "${BG_PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
    BG_PIDS=("${keep[@]}")
    return 0
}

cleanup() {
    local rc=$? d p
    trap - EXIT INT TERM
    for d in "${POSTFIX_DIRS[@]}"; do pf_stop "$d"; done
    for p in "${BG_PIDS[@]}"; do stop_pid "$p"; done
    for d in "${MEMORY_DIRS[@]}"; do rm -rf -- "$d"; done
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "$BENCH_KEEP" == 1 ]]; then
            log "scratch directory kept: $WORK"
        else
            [[ -n "$BENCH_CLEANUP_NOTE" ]] && log "removing $WORK ($BENCH_CLEANUP_NOTE)"
            rm -rf -- "$WORK"
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# bench_workdir PREFIX: the run's scratch directory $BENCH_TMPDIR/PREFIX.XXXXXX; sets WORK,
# RESULTS (an empty results file in it)
bench_workdir() {
    mkdir -p "$BENCH_TMPDIR"
    WORK=$(mktemp -d "$BENCH_TMPDIR/$1.XXXXXX") || die "mktemp"
    chmod 755 "$WORK"   # Postfix's unprivileged daemons must reach their queue directory
    RESULTS=$WORK/results.txt
    : >"$RESULTS"
}

next_port() {  # sets PORT: a free loopback port not handed out before in this run
    local p i
    for ((i = 0; i < 20; i++)); do
        for p in $($UTIL free-ports 4); do
            if [[ "$USED_PORTS" != *" $p "* ]]; then
                USED_PORTS+="$p "
                PORT=$p
                return 0
            fi
        done
    done
    die "no free port found"
}

record_machine() {  # the results' first lines: the machine, its load, the tools
    record date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    record host "$(hostname)"
    record cpus "$(nproc)"
    record kernel "$(uname -r)"
    record loadavg_start "$(loadavg)"
    record filesystem "$(df -T "$WORK" | awk 'NR==2 {print $2" on "$1}')"
    record postfix_version "$("$POSTCONF" -d -h mail_version 2>/dev/null)"
    record edgerelay_bin "$EDGERELAY_BIN_DIR"
    record cpu_placement "server=${BENCH_SERVER_CPUS:-all} load=${BENCH_LOAD_CPUS:-all}"
}

# ------------------------------------------------------------------ Postfix

# pf_start NAME PORT RELAYHOST [EXTRA_MAIN_CF]: a private instance under $WORK/NAME
# whose smtpd listens on 127.0.0.1:PORT; EXTRA_MAIN_CF (lines) is appended to its
# main.cf. Sets PF_DIR (its config directory) and PF_MASTER (its master's PID).
pf_start() {
    local name=$1 port=$2 relayhost=$3 extra=${4:-} base=$WORK/$1
    mkdir -p "$base/etc" "$base/queue" "$base/data"
    chown postfix "$base/data" && chmod 700 "$base/data"
    cat >"$base/etc/main.cf" <<EOF
# private benchmark instance ($BENCH_DRIVER)
compatibility_level = 3.6
queue_directory = $base/queue
data_directory = $base/data
meta_directory = /etc/postfix
myhostname = bench-postfix.example
mydomain = bench.example
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = $relayhost
alias_maps =
alias_database =
biff = no
maillog_file = $base/maillog
maillog_file_prefixes = $base
# 20 parallel sessions must not be throttled
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_client_event_limit_exceptions = 127.0.0.0/8
$extra
EOF
    # the stock master.cf with chroot off ('n'): the queue directory is no chroot jail
    cat >"$base/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    PF_DIR=$base/etc
    POSTFIX_DIRS+=("$PF_DIR")
    "$POSTFIX" -c "$PF_DIR" check >"$base/check.out" 2>&1 || {
        cat "$base/check.out" >&2; die "postfix -c $PF_DIR check failed"; }
    "${SERVER_PIN[@]}" "$POSTFIX" -c "$PF_DIR" start >"$base/start.out" 2>&1 || {
        cat "$base/start.out" "$base/maillog" >&2; die "postfix -c $PF_DIR start failed"; }
    $UTIL wait-banner 127.0.0.1 "$port" 30 || { tail "$base/maillog" >&2; die "Postfix $name did not answer"; }
    PF_MASTER=$(tr -d ' \n' <"$base/queue/pid/master.pid")
}

pf_stop() {  # pf_stop CONFIG_DIR: stop the instance; make sure its master is gone
    local dir=$1 base pid i keep=() d
    base=$(dirname "$dir")
    pid=$(tr -d ' \n' <"$base/queue/pid/master.pid" 2>/dev/null)
    "$POSTFIX" -c "$dir" stop >/dev/null 2>&1
    if [[ -n "$pid" ]]; then
        for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null && grep -q master "/proc/$pid/cmdline" 2>/dev/null; then
            log "Postfix master $pid still up 15 s after stop: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    for d in "${POSTFIX_DIRS[@]}"; do [[ "$d" == "$dir" ]] || keep+=("$d"); done
    POSTFIX_DIRS=("${keep[@]}")
}

pf_files() {  # pf_files CONFIG_DIR [queues...]: queue files in those queues (default: all)
    local q d=() x
    q=$(dirname "$1")/queue
    shift
    [[ $# == 0 ]] && set -- incoming active deferred hold maildrop
    for x in "$@"; do d+=("$q/$x"); done
    find "${d[@]}" -type f 2>/dev/null | wc -l
}

pf_postqueue_count() {  # pf_postqueue_count CONFIG_DIR: lines of postqueue -j (or "error")
    "$POSTQUEUE" -c "$1" -j >"$WORK/postqueue.json" 2>/dev/null && $UTIL count-jsonl "$WORK/postqueue.json" || echo error
}

# ------------------------------------------------------------------ edgerelay

# er_launch NAME PORT ADMIN_PORT NEXT_HOP PER_IP MAX_CONN [EXTRA_TOML]: edgerelayd under
# $WORK/NAME, listening on 127.0.0.1:PORT, one route for $RCPT_DOMAIN; EXTRA_TOML goes
# before the route. Sets ER_PID, ER_CONF, ER_LOG. ER_SPOOL_DIR, when set, is where the
# spool goes instead of $WORK/NAME/spool.
er_launch() {
    local name=$1 port=$2 admin=$3 hop=$4 per_ip=$5 maxc=$6 extra=${7:-} base=$WORK/$1
    local spool=${ER_SPOOL_DIR:-$base/spool}
    mkdir -p "$spool" "$base/log"
    ER_CONF=$base/edgerelay.toml
    ER_LOG=$base/log/edgerelay.log
    cat >"$ER_CONF" <<EOF
# benchmark instance ($BENCH_DRIVER)
[server]
hostname = "bench-edge.example"
listen = ["127.0.0.1:$port"]
max_connections = $maxc
max_connections_per_ip = $per_ip
relay_networks = ["127.0.0.0/8"]

[spool]
path = "$spool"
max_size = "16GiB"

[log]
path = "$ER_LOG"

[admin]
listen = "127.0.0.1:$admin"

$extra

[[route]]
domain = "$RCPT_DOMAIN"
next_hop = "$hop"
tls = "none"
EOF
    "$EDGERELAYD" --config "$ER_CONF" --check-config >"$base/check.out" 2>&1 || {
        cat "$base/check.out" >&2; die "edgerelayd --check-config rejected $ER_CONF"; }
    "${SERVER_PIN[@]}" "$EDGERELAYD" --config "$ER_CONF" >"$base/stdout" 2>"$base/stderr" &
    ER_PID=$!
    BG_PIDS+=("$ER_PID")
    if ! $UTIL wait-banner 127.0.0.1 "$port" 30; then
        tail -20 "$base/stderr" >&2
        die "edgerelayd $name did not answer on 127.0.0.1:$port"
    fi
}
