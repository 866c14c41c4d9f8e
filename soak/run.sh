#!/usr/bin/env bash
# soak/run.sh: the soak test (`make soak`).
#
# Starts, all on loopback with free ports:
#   - five route-publishing services (soak/mock_service.py): stable-a and
#     stable-b (always healthy, fixed routes), churn (always healthy, routes
#     added and removed every 3 s), flap-a and flap-b (a 20 s cycle of
#     healthy / HTTP 500 / malformed document / polls hanging past the
#     timeout / "unhealthy", 10 s out of phase), each polled every second;
#   - a backend (a plain nginx answering 200) that every service's routes
#     are proxied to (upstream=backend, keepalive);
#   - the gateway: nginx with the module, master + 2 workers,
#     discovery_state set;
# then runs wrk for SOAK_SECONDS over the request mix of `probe.py targets`
# (soak.lua), while the gateway gets a SIGHUP every RELOAD_EVERY seconds.
# A sample (RSS of master and workers, fds, generation, routes, zone pages)
# is taken a second before each reload; the first and last are printed in
# full, then the report: requests, non-2xx by class and status, socket
# errors, requests/s, "errors attributable to the gateway", growth flags.
#
# Knobs: SOAK_SECONDS (180), SOAK_RELOAD_EVERY (10; 0: no reloads), SOAK_CONNECTIONS (32),
# SOAK_THREADS (2), SOAK_WARMUP (30: samples before it are not used to judge
# growth).  Everything is written under soak/work/<run>/; every process
# started is stopped on exit.  Exit 0 when the gateway is to blame for no
# error, no worker crashed and every reload happened; 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOAK=$ROOT/soak
# shellcheck source=../t/lib/nginx.sh
. "$ROOT/t/lib/nginx.sh"
MODULE=$ROOT/build/ngx_http_discovery_module.so
NGINX=${NGINX:-/usr/sbin/nginx}
PY=/usr/bin/python3
PROBE="$PY $SOAK/probe.py"

SOAK_SECONDS=${SOAK_SECONDS:-180}
RELOAD_EVERY=${SOAK_RELOAD_EVERY:-10}
CONNECTIONS=${SOAK_CONNECTIONS:-32}
THREADS=${SOAK_THREADS:-2}
export SOAK_WARMUP=${SOAK_WARMUP:-30}
ZONE_BYTES=$((8 * 1024 * 1024))          # discovery_zone 8m

log() { printf '%s soak: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$MODULE" ] || die "$MODULE is missing: make module"
command -v wrk >/dev/null || die "wrk is not installed"
[ "$SOAK_SECONDS" -ge 20 ] 2>/dev/null || die "SOAK_SECONDS must be at least 20"
[ "$RELOAD_EVERY" -eq 0 ] || [ "$RELOAD_EVERY" -ge 2 ] 2>/dev/null \
    || die "SOAK_RELOAD_EVERY must be 0 (no reloads) or at least 2"

mkdir -p "$SOAK/work"
WORK=$(mktemp -d "$SOAK/work/run.$(date +%Y%m%d-%H%M%S).XXXX")
GW=$WORK/gateway
BE=$WORK/backend
mkdir -p "$GW/tmp" "$BE/tmp"


# ---------------------------------------------------------------- cleanup

NGINX_DIRS=()   # each nginx we started, stopped by the pid in its pid file
PIDS=()         # everything else we started

# nginx first, so that its error.log does not fill with the services'
# refusals at the end
cleanup() {
    local pid dir
    [ -z "${WRK:-}" ] || kill "$WRK" 2>/dev/null || true
    for dir in "${NGINX_DIRS[@]+"${NGINX_DIRS[@]}"}"; do
        nginx_stop "$dir"
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------- start

read -r GW_PORT BE_PORT P_A P_B P_CHURN P_FA P_FB <<<"$($PROBE ports 7)"
log "work dir $WORK"
log "gateway :$GW_PORT, backend :$BE_PORT, services stable-a :$P_A" \
    "stable-b :$P_B churn :$P_CHURN flap-a :$P_FA flap-b :$P_FB"

start_mock() {   # PORT NAME MODE [OFFSET]
    $PY "$SOAK/mock_service.py" "$@" >>"$WORK/mocks.log" 2>&1 &
    PIDS+=($!)
}
start_mock "$P_A" stable-a stable
start_mock "$P_B" stable-b stable
start_mock "$P_CHURN" churn churn
start_mock "$P_FA" flap-a flap 0
start_mock "$P_FB" flap-b flap 10
# the first polls must not find a service that is not listening yet
$PROBE wait-listen 10 "$P_A" "$P_B" "$P_CHURN" "$P_FA" "$P_FB" \
    || die "the mock services did not start ($WORK/mocks.log)"

cat >"$BE/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $BE/nginx.pid;
error_log $BE/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths "$BE")
    server {
        listen 127.0.0.1:$BE_PORT backlog=4096;
        location / { return 200 "ok\n"; }
    }
}
EOF

svc_opts="interval=1s timeout=1s upstream=backend"
cat >"$GW/nginx.conf" <<EOF
load_module $MODULE;
user root;
worker_processes 2;
master_process on;
pid $GW/nginx.pid;
error_log $GW/error.log notice;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
$(nginx_temp_paths "$GW")

    discovery_zone  8m;
    discovery_state $GW/table.state;
    discovery_service stable-a http://127.0.0.1:$P_A $svc_opts;
    discovery_service stable-b http://127.0.0.1:$P_B $svc_opts;
    discovery_service churn    http://127.0.0.1:$P_CHURN $svc_opts;
    discovery_service flap-a   http://127.0.0.1:$P_FA $svc_opts fails=2;
    discovery_service flap-b   http://127.0.0.1:$P_FB $svc_opts fails=1 passes=2;

    upstream backend {
        server 127.0.0.1:$BE_PORT;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:$GW_PORT backlog=4096;

        location / {
            discovery_route on;
            proxy_pass http://\$discovery_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # soak.lua counts statuses per request class
            add_header X-Soak-Class \$http_x_soak_class always;
        }
        location = /_discovery {
            discovery_status;
        }
    }
}
EOF

for dir in "$BE" "$GW"; do
    "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
        || die "nginx -t failed for $dir/nginx.conf"
    NGINX_DIRS+=("$dir")
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
        || die "nginx did not start ($dir/error.log)"
done
for i in $(seq 50); do
    [ -s "$GW/nginx.pid" ] && [ -s "$BE/nginx.pid" ] && break
    sleep 0.1
done
MASTER=$(cat "$GW/nginx.pid")
log "gateway master pid $MASTER"

$PROBE wait-ready "$GW_PORT" 15 || die "services still pending after 15 s"
sleep 2   # the churn and flap services publish their routes

$PROBE targets "$WORK/targets.txt" >&2

sample() {
    $PROBE sample "$MASTER" "$GW_PORT" "$ZONE_BYTES" >>"$WORK/timeline.jsonl"
}

sample
$PROBE show "$WORK/timeline.jsonl" "at start (before traffic)"


# ---------------------------------------------------------------- soak

log "wrk: $SOAK_SECONDS s, $THREADS threads, $CONNECTIONS connections;" \
    "SIGHUP every $RELOAD_EVERY s"
TARGETS_FILE=$WORK/targets.txt COUNTS_FILE=$WORK/counts.txt \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" --timeout 5s \
        --latency -s "$SOAK/soak.lua" "http://127.0.0.1:$GW_PORT/" \
        >"$WORK/wrk.out" 2>&1 &
WRK=$!
PIDS+=("$WRK")

# a sample one second before each reload: the workers are then all about
# RELOAD_EVERY seconds old, so that samples compare like with like
# (SOAK_RELOAD_EVERY=0: no reloads, a sample every 10 s)
reloads=0
step=$RELOAD_EVERY
[ "$step" -gt 0 ] || step=10
t0=$(date +%s)
for i in $(seq $((SOAK_SECONDS / step))); do
    [ $(( $(date +%s) - t0 + step )) -le "$SOAK_SECONDS" ] || break
    sleep $((step - 1))
    kill -0 "$MASTER" 2>/dev/null || die "the gateway master $MASTER is gone"
    sample
    sleep 1
    if [ "$RELOAD_EVERY" -gt 0 ]; then
        kill -HUP "$MASTER"
        reloads=$((reloads + 1))
    fi
done
echo "$reloads" >"$WORK/reloads"
log "$reloads reloads; waiting for wrk"
wait "$WRK" || log "wrk exited with $?"
sleep 1
sample
$PROBE show "$WORK/timeline.jsonl" "at end (after traffic, $reloads reloads)"


# ---------------------------------------------------------------- report

echo
cat "$WORK/wrk.out"
echo
rc=0
$PROBE report "$WORK" || rc=1

echo "=== gateway error.log"
for level in emerg alert crit error warn notice; do
    printf '  [%s] %d\n' "$level" "$(grep -c "\[$level\]" "$GW/error.log" || true)"
done
echo "  most frequent [error]/[warn] messages (numbers masked):"
grep -E '\[(error|warn)\]' "$GW/error.log" \
    | sed -E 's/^[0-9/]+ [0-9:]+ //; s/[0-9]+/N/g' | sort | uniq -c | sort -rn \
    | head -12 | sed 's/^/    /' || true
if grep -qE '\[(emerg|alert|crit)\]|exited on signal' "$GW/error.log"; then
    echo "  ALERT: emerg/alert/crit lines or a crashed worker:"
    grep -E '\[(emerg|alert|crit)\]|exited on signal' "$GW/error.log" \
        | head -20 | sed 's/^/    /'
    rc=1
fi
reconf=$(grep -c 'signal 1 (SIGHUP) received' "$GW/error.log" || true)
echo "  reloads signalled $reloads, SIGHUP received $reconf"
[ "$reconf" -eq "$reloads" ] || { echo "  MISMATCH: not every reload was done"; rc=1; }
log "results in $WORK"
exit $rc
