#!/bin/bash
# bench/run.sh: the performance benchmark of issue 4 (`make bench`).
#
#   1. HTTP: a plain proxy, hand-written locations and this module, each its
#      own nginx with one worker, in front of one fast backend, at N routes
#      (SIZES), in alternating short wrk rounds; the median of the rounds.
#      Then paired rounds: the plain proxy and the module loaded at once,
#      sharing one core, so that both see the same machine at every moment.
#      "metrics" is the module with discovery_metrics on (issue 16);
#      "balancer" the module behind a static "proxy_pass http://discovery"
#      to an upstream block with discovery_balancer, "balancer-metrics" it
#      with discovery_metrics on.
#   2. The C++ core alone (bench/router_bench.cpp, Google Benchmark).
#   3. p99 of routed requests while 200 services are polled every second and
#      50 of them hang until their timeout, versus discovery idle; a
#      second idle gateway, measured the same way, is the control.
#   4. The gateways' user-space instructions per request, counted by
#      callgrind: a cost the host's speed does not move, unlike requests/s.
#
# Everything it starts is stopped on exit; everything it writes is under
# bench/work/ (ignored by git), except bench/results.md.
#
#   5. Table changes: 4 services polled every second (25,000 routes each
#      from 1,000,000 routes on), one of whose documents gains a route
#      about every second, 0.5 to 1.5 s apart (a quarter of the table
#      re-read each time, or 25,000 routes), versus the same gateway whose
#      documents stay as they are,
#      with 1 and 2 workers; the workers' private memory; how long a new
#      route takes to be routed by every worker; and how long a gateway
#      restarted with the largest table in its state file takes to route.
#      5b (MEMORY_CHANGES=N, off by default: a change takes about 1.3 s at
#      100,000 routes): a worker's private memory across N table changes.
#   6. 10,000 services of one backend polled every 10 s, versus the same
#      gateway with polling off: the polling's CPU and request p99.
#   7. discovery_metrics: the time of a scrape at SCRAPE_SIZE routes
#      (100,000), 1,000 of them with requests, then all, in both formats.
#      (Part 4 counts the instructions of the gateway with metrics on too.)
#
# Knobs (environment): ROUNDS, ROUND_SECONDS, CONNECTIONS, SIZES,
# PAIRED_ROUNDS, PAIRED_SECONDS, CHURN_ROUNDS, CHURN_SECONDS, CHURN_ROUTES,
# INSTR_SIZES, INSTR_SECONDS, INSTR_KINDS, TABLE_SIZES, TABLE_WORKERS, TABLE_ROUNDS,
# TABLE_CHANGES, SERVICES, SERVICES_ROUNDS, SERVICES_IDLE_SECONDS, SKIP_HTTP,
# SKIP_MICRO, SKIP_CHURN, SKIP_INSTR, SKIP_TABLE, SKIP_SERVICES, SCRAPE_SIZE,
# SCRAPES, SKIP_SCRAPE, MEMORY_CHANGES; BENCH_QUICK=1
# leaves out the 1,000,000-route tables and part 6.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=../t/lib/nginx.sh
. "$ROOT/t/lib/nginx.sh"
WORK=$BENCH/work
RESULTS=$BENCH/results.md
# private copies, taken once built: others may rebuild build/ while we run,
# and a .so overwritten in place under a running nginx crashes its workers
MODULE=$WORK/ngx_http_discovery_module.so
CORE_LIB=$WORK/libdiscovery_core.a
NGINX=/usr/sbin/nginx
PY=/usr/bin/python3
UTIL="$PY $BENCH/util.py"

ROUNDS=${ROUNDS:-5}
# a p99 varies more from round to round than a rate: more rounds, for the
# median, each round 3 x CHURN_SECONDS
CHURN_ROUNDS=${CHURN_ROUNDS:-12}
CHURN_SECONDS=${CHURN_SECONDS:-3}
ROUND_SECONDS=${ROUND_SECONDS:-5}
PAIRED_ROUNDS=${PAIRED_ROUNDS:-5}
PAIRED_SECONDS=${PAIRED_SECONDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
SIZES=${SIZES:-"100 10000 100000"}
CHURN_ROUTES=${CHURN_ROUTES:-10000}   # the main service's routes in part 3
CHURN_SERVICES=200
CHURN_HANGING=50
CHURN_SERVICE_ROUTES=10
HANDWRITTEN_LOAD_LIMIT=20             # seconds nginx may take to load
INSTR_SIZES=${INSTR_SIZES:-"100 10000"}  # part 4: under valgrind, 100,000
INSTR_SECONDS=${INSTR_SECONDS:-3}        # routes would take minutes to load
INSTR_KINDS=${INSTR_KINDS:-"plain module metrics balancer balancer-metrics"}
# part 5; BENCH_QUICK=1 leaves out 1,000,000 routes and part 6
if [ -n "${BENCH_QUICK:-}" ]; then
    TABLE_SIZES=${TABLE_SIZES:-"10000 100000"}
    SKIP_SERVICES=1
fi
TABLE_SIZES=${TABLE_SIZES:-"10000 100000 1000000"}
TABLE_WORKERS=${TABLE_WORKERS:-"1 2"}
TABLE_ROUNDS=${TABLE_ROUNDS:-6}
TABLE_CHANGES=${TABLE_CHANGES:-10}      # changes timed for propagation
MEMORY_CHANGES=${MEMORY_CHANGES:-0}     # part 5b, e.g. 1000 (22 min): off
TABLE_SERVICES=4                        # per table; 25,000 routes each from 1M
TABLE_ZONE=256m                         # 1536m from 1M
TABLE_STATE=""                          # a discovery_state line, or none
SERVICES=${SERVICES:-10000}             # part 6
SCRAPE_SIZE=${SCRAPE_SIZE:-100000}      # part 7
SCRAPES=${SCRAPES:-20}
SERVICES_ROUNDS=${SERVICES_ROUNDS:-6}
SERVICES_IDLE_SECONDS=${SERVICES_IDLE_SECONDS:-20}

# Two cores: the gateway under test gets one to itself, wrk and the backend
# share the other, so that the gateway, not the load generator, is what
# saturates; each round also measures the gateway worker's CPU per request.
GATEWAY_CPU=0
LOAD_CPU=1

STARTED_NGINX=()     # prefixes of the nginx instances we started
STARTED_PIDS=()      # other processes we started


log() { printf '%s run.sh: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }


# ---------------------------------------------------------------- processes

# Stops only what this script started: each nginx by the pid in its own pid
# file, the rest by the pids recorded when they were started.
cleanup() {
    local dir pid
    for dir in "${STARTED_NGINX[@]+"${STARTED_NGINX[@]}"}"; do
        nginx_stop "$dir"
    done
    for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do
        kill "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true     # a stopped mutator
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_nginx DIR CPU: DIR/nginx.conf, master and worker pinned to CPU.
# Returns non-zero when nginx does not come up within the load limit.
start_nginx() {
    local dir=$1 cpu=$2
    mkdir -p "$dir/tmp"
    STARTED_NGINX+=("$dir")
    timeout "$HANDWRITTEN_LOAD_LIMIT" \
        taskset -c "$cpu" "$NGINX" -p "$dir" -c "$dir/nginx.conf" \
        -e "$dir/error.log" 2>>"$dir/start.log" || return 1
    local i
    for i in $(seq 100); do
        [ -s "$dir/nginx.pid" ] && return 0
        sleep 0.1
    done
    return 1
}

# The http{} preamble every instance shares: paths under its own directory
# (Debian's defaults point to /run and /var/lib/nginx), no access log, and
# client keepalive that never ends a wrk connection mid-round.
conf_head() {
    local dir=$1
    cat <<EOF
user root;
worker_processes ${WORKERS:-1};
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
EOF
}

conf_http_common() {
    local dir=$1
    cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
$(nginx_temp_paths "$dir")
EOF
}

# Proxying as all three gateways do it: HTTP/1.1 to a keepalive upstream.
conf_proxy_common() {
    cat <<EOF
        proxy_http_version 1.1;
        proxy_set_header Connection "";
EOF
}


# ---------------------------------------------------------------- instances

# The backend: "ok" for every path, and the route documents as static files.
start_backend() {
    local dir=$WORK/backend
    BACKEND_PORT=$($UTIL port)
    mkdir -p "$dir"
    {
        conf_head "$dir"
        echo "http {"
        conf_http_common "$dir"
        cat <<EOF
    server {
        listen 127.0.0.1:$BACKEND_PORT reuseport backlog=4096;
        location / { return 200 "ok\n"; }
        location /routes/ { root $WORK; }
        location /churn/ { root $WORK; }
        location /table/ { root $WORK; }
        location /services/ { root $WORK; }
    }
}
EOF
    } >"$dir/nginx.conf"
    start_nginx "$dir" "$LOAD_CPU" || die "backend did not start"
}

upstream_block() {
    local name=$1
    echo "    upstream $name { server 127.0.0.1:$BACKEND_PORT; keepalive 32; }"
}

# gateway_conf KIND SIZE DIR PORT [EXTRA_HTTP]: nginx.conf of one gateway
gateway_conf() {
    local kind=$1 size=$2 dir=$3 port=$4 extra=${5:-}
    case $kind in module|metrics|balancer*|table|services) echo "load_module $MODULE;" ;; esac
    [ "$kind" = handwritten ] && echo "pcre_jit on;"
    conf_head "$dir"
    echo "http {"
    conf_http_common "$dir"
    case $kind in
    plain|handwritten|services)
        upstream_block backend ;;&
    services)
        echo "    discovery_zone 256m;" ;;
    table)
        local i
        for i in $(seq 0 $((TABLE_SERVICES - 1))); do
            upstream_block "t$i"
        done
        cat <<EOF
    discovery_zone $TABLE_ZONE;
    discovery_max_size 64m;
$TABLE_STATE
EOF
        ;;
    module|metrics|balancer*)
        upstream_block api
        [[ $kind = balancer* ]] \
            && echo "    upstream discovery { discovery_balancer; }"
        cat <<EOF
    discovery_zone 256m;
    discovery_max_size 64m;
    discovery_service api http://127.0.0.1:$BACKEND_PORT uri=/routes/routes-$size.json interval=30s;
EOF
        ;;
    esac
    printf '%s\n' "$extra"
    echo "    server {"
    echo "        listen 127.0.0.1:$port backlog=4096;"
    conf_proxy_common
    case $kind in
    plain)
        echo "        location / { proxy_pass http://backend; }" ;;
    handwritten)
        sed 's/^/        /' "$WORK/routes/locations-$size.conf"
        echo "        location / { return 404; }" ;;
    module|metrics|balancer*|table|services)
        local pass='http://$discovery_upstream'
        [[ $kind = balancer* ]] && pass=http://discovery
        cat <<EOF
        location / {
            discovery_route on;
            proxy_pass $pass;
$([ "$kind" = table ] && echo '            add_header X-Worker $pid always;')
        }
$([[ $kind = *metrics ]] && echo '        location = /metrics { discovery_metrics; }')
        location = /_discovery { discovery_status; }
        location /_discovery/api/ { discovery_api write=on; }
        location = /_discovery/ui { discovery_ui; }
EOF
        ;;
    esac
    echo "    }"
    echo "}"
}

# start_gateway KIND SIZE [EXTRA_HTTP]: sets GATEWAY_PORT; fails when nginx
# does not load the configuration within the limit.  In $WORK/gw-KIND-SIZE,
# or gw-$GATEWAY_NAME-SIZE when that is set (a second gateway of a kind).
start_gateway() {
    local kind=$1 size=$2 extra=${3:-}
    local dir=$WORK/gw-${GATEWAY_NAME:-$kind}-$size
    rm -rf "$dir"
    mkdir -p "$dir"
    GATEWAY_PORT=$($UTIL port)
    gateway_conf "$kind" "$size" "$dir" "$GATEWAY_PORT" "$extra" \
        >"$dir/nginx.conf"
    local t0=$SECONDS
    start_nginx "$dir" "$GATEWAY_CPU" || return 1
    log "gateway $kind/$size on :$GATEWAY_PORT, loaded in $((SECONDS - t0))s"
    if [[ $kind = module || $kind = *metrics || $kind = balancer ]]; then
        $UTIL wait-status "http://127.0.0.1:$GATEWAY_PORT/_discovery" api 0 0
    elif [ "$kind" = table ]; then
        $UTIL wait-status "http://127.0.0.1:$GATEWAY_PORT/_discovery" t0 \
            "$TABLE_SERVICES" 0
    elif [ "$kind" = services ]; then
        $UTIL wait-status "http://127.0.0.1:$GATEWAY_PORT/_discovery" t0 \
            "$SERVICES" 0
    fi
}


# ---------------------------------------------------------------- measuring

# The workers' CPU time so far, in clock ticks (user + system), threads
# included.  The workers are the master's children.
worker_ticks() {
    local master workers
    master=$(cat "$1/nginx.pid")
    workers=$(pgrep -P "$master" | tr '\n' ' ')
    [ -n "$workers" ] || die "$1: no worker process"
    # shellcheck disable=SC2086
    (cd /proc && awk '{ t += $14 + $15 } END { print t }' $(printf '%s/stat ' $workers))
}

# Nanoseconds the workers of DIR have run, their threads' included
# (schedstat: exact, where the ticks of /proc/PID/stat are 10 ms each).
worker_ns() {
    local master workers
    master=$(cat "$1/nginx.pid")
    workers=$(pgrep -P "$master" | tr '\n' ' ')
    [ -n "$workers" ] || die "$1: no worker process"
    # shellcheck disable=SC2086
    (cd /proc && cat $(printf '%s/task/*/schedstat ' $workers) 2>/dev/null) \
        | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# A crashed worker is restarted by the master and wrk would not notice.
check_no_crash() {
    if grep -q "exited on signal" "$1/error.log"; then
        die "$1: a worker crashed: $(grep -m1 'exited on signal' "$1/error.log")"
    fi
}

# wrk_round DIR PORT SIZE [SECONDS]: one round against the gateway in DIR
# (ROUND_SECONDS long unless SECONDS is given); prints
# "rps p50_ms p99_ms errors cpu_us_per_request worker_busy_percent".
# The gateway's CPU time per request is measured alongside: on two cores
# wrk and the backend may saturate theirs before the gateway does, and
# then req/s compares the load generator, while CPU per request still
# compares the gateways.
wrk_round() {
    local dir=$1 port=$2 size=$3 seconds=${4:-$ROUND_SECONDS}
    local out=$WORK/wrk.out a b
    a=$(worker_ticks "$dir")
    PATHS_FILE=$WORK/routes/paths-$size.txt \
        taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" \
        --latency -s "$BENCH/paths.lua" "http://127.0.0.1:$port" >"$out"
    b=$(worker_ticks "$dir")
    check_no_crash "$dir"
    $UTIL wrk "$out" $((b - a))
}

generate_routes() {
    local size
    mkdir -p "$WORK/routes"
    for size in "$@"; do
        [ -s "$WORK/routes/routes-$size.json" ] \
            || $PY "$BENCH/gen.py" routes "$size" "$WORK/routes"
    done
}

# The setting that decides whether the zone, where requests probe the
# router image and the metrics' index, gets huge pages (README,
# "Huge pages for the zone"); the module advises them.
shmem_huge_pages() {
    local f=/sys/kernel/mm/transparent_hugepage/shmem_enabled setting
    setting=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$f" 2>/dev/null)
    case $setting in
    advise|always|within_size|force)
        echo "yes (shmem_enabled: $setting)" ;;
    *)
        echo "**no** (shmem_enabled: ${setting:-unknown}): lookups in large" \
             "tables pay a TLB miss per probe" ;;
    esac
}

machine_info() {
    cat <<EOF
# Benchmark results (issue 4)

Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC').

| | |
|---|---|
| nproc | $(nproc) |
| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |
| kernel | $(uname -sr) |
| nginx | $($NGINX -v 2>&1 | sed 's/.*: //') |
| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work may run) |
| shared memory huge pages | $(shmem_huge_pages) |
| module | git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted src/ changes') |

Every gateway and the backend run \`worker_processes 1\`.  The gateway under
test is pinned to CPU $GATEWAY_CPU; wrk (\`-t1 -c$CONNECTIONS\`) and the
backend (\`return 200 "ok\n"\`) share CPU $LOAD_CPU.  All three gateways
proxy with HTTP/1.1 to \`upstream { keepalive 32; }\`, access_log off.
The module's gateways also have the status page, the management API
(\`write=on\`) and the dashboard configured, in locations of their own.

EOF
}


# ---------------------------------------------------------------- 1. HTTP

http_benchmark() {
    local tsv=$WORK/http.tsv notes=$WORK/http-notes.md size kind round
    local ptsv=$WORK/paired.tsv
    : >"$tsv"
    : >"$notes"
    : >"$ptsv"
    generate_routes $SIZES

    for size in $SIZES; do
        declare -A port=()
        local kinds=()
        for kind in plain handwritten module metrics balancer \
                    balancer-metrics; do
            if start_gateway "$kind" "$size"; then
                port[$kind]=$GATEWAY_PORT
                kinds+=("$kind")
            else
                log "gateway $kind/$size did not load within" \
                    "${HANDWRITTEN_LOAD_LIMIT}s: measured without it"
                echo "- $size routes: the hand-written gateway did not load" \
                     "within ${HANDWRITTEN_LOAD_LIMIT}s; not measured." \
                     >>"$notes"
                nginx_stop "$WORK/gw-$kind-$size"
            fi
        done

        # a benchmark of error answers would be worthless
        # (and the routing gateways must answer an unknown path otherwise)
        for kind in "${kinds[@]}"; do
            local routing=routing
            [ "$kind" = plain ] && routing=
            $UTIL check "http://127.0.0.1:${port[$kind]}" \
                "$WORK/routes/paths-$size.txt" 300 $routing >/dev/null \
                || die "gateway $kind/$size answers wrongly"
        done
        log "$size routes: correctness checked (${kinds[*]})"

        # a warm-up round each: connections, the worker's router, caches
        for kind in "${kinds[@]}"; do
            wrk_round "$WORK/gw-$kind-$size" "${port[$kind]}" "$size" 2 \
                >/dev/null
        done

        # alternate A/B: every round runs every gateway, in rotating order,
        # so that drift in the machine's load hits all of them alike
        for round in $(seq "$ROUNDS"); do
            local n=${#kinds[@]} i
            for i in $(seq 0 $((n - 1))); do
                kind=${kinds[$(((i + round) % n))]}
                local r
                r=$(wrk_round "$WORK/gw-$kind-$size" "${port[$kind]}" "$size")
                log "$size routes, round $round, $kind: $r"
                echo "$size $kind $round $r" >>"$tsv"
            done
        done

        if [ -n "${port[module]:-}" ]; then
            paired_rounds "$size" plain "${port[plain]}" \
                module "${port[module]}" >>"$ptsv"
        fi
        if [ -n "${port[metrics]:-}" ]; then
            paired_rounds "$size" plain "${port[plain]}" \
                metrics "${port[metrics]}" >>"$ptsv"
            # what counting costs, apart from routing
            paired_rounds "$size" module "${port[module]}" \
                metrics "${port[metrics]}" >>"$ptsv"
        fi
        if [ -n "${port[balancer]:-}" ]; then
            paired_rounds "$size" plain "${port[plain]}" \
                balancer "${port[balancer]}" >>"$ptsv"
        fi
        if [ -n "${port[balancer-metrics]:-}" ]; then
            paired_rounds "$size" plain "${port[plain]}" \
                balancer-metrics "${port[balancer-metrics]}" >>"$ptsv"
        fi

        # the method's control, once: a gateway against its twin
        if [ "$size" = "${SIZES%% *}" ]; then
            GATEWAY_NAME=plain2 start_gateway plain "$size" \
                || die "second plain gateway"
            paired_rounds "$size" plain "${port[plain]}" \
                plain2 "$GATEWAY_PORT" >>"$ptsv"
            nginx_stop "$WORK/gw-plain2-$size"
        fi

        for kind in "${kinds[@]}"; do
            nginx_stop "$WORK/gw-$kind-$size"
        done
        unset port
    done

    {
        $UTIL report "$tsv" \
            "1. HTTP: median of $ROUNDS alternating rounds of ${ROUND_SECONDS}s"
        echo "Targets: module >= 0.95 x plain at 100 and 10,000 routes," \
             ">= 0.90 at 100,000; the same for metrics, the module with" \
             "\`discovery_metrics\` on, counting every request."
        echo
        cat "$notes"
        echo
        echo "### 1b. Paired: two gateways loaded at once, sharing one core," \
             "$PAIRED_ROUNDS rounds of ${PAIRED_SECONDS}s"
        echo
        $UTIL paired "$ptsv"
        echo "Both gateways are pinned to CPU $GATEWAY_CPU, each loaded by" \
             "its own wrk (\`-t1 -c$CONNECTIONS\`, started first in turn)," \
             "so the scheduler gives each half the core: their req/s differ" \
             "by what a request costs each, while the machine's drift, which" \
             "moves the rounds above by more than the margins at stake," \
             "hits both at the same moment.  plain / plain2 is the control:" \
             "two identical plain proxies.  The last column is the same" \
             "ratio read off the CPU each gateway's worker used per request" \
             "in the round (its threads' schedstat over wrk's count): what" \
             "the scheduler's and wrk's shares of the cores do not move."
        echo
    } | tee -a "$RESULTS"
}


# paired_rounds SIZE A PORT_A B PORT_B: PAIRED_ROUNDS rounds in which both
# gateways, on the same core, are loaded at once; prints a TSV row per round
# "SIZE A B ROUND RPS_A RPS_B NS_A NS_B REQUESTS_A REQUESTS_B" for util.py
# paired: req/s, the workers' CPU time and the requests wrk counted
paired_rounds() {
    local size=$1 a=$2 pa=$3 b=$4 pb=$5 round pid_a pid_b
    local na0 nb0 na1 nb1
    for round in $(seq "$PAIRED_ROUNDS"); do
        na0=$(worker_ns "$WORK/gw-$a-$size")
        nb0=$(worker_ns "$WORK/gw-$b-$size")
        # the one started first gets a head start: each goes first in turn
        if [ $((round % 2)) = 1 ]; then
            paired_wrk "$size" "$pa" "$WORK/pair-a.out" & pid_a=$!
            paired_wrk "$size" "$pb" "$WORK/pair-b.out" & pid_b=$!
        else
            paired_wrk "$size" "$pb" "$WORK/pair-b.out" & pid_b=$!
            paired_wrk "$size" "$pa" "$WORK/pair-a.out" & pid_a=$!
        fi
        wait "$pid_a" "$pid_b"
        na1=$(worker_ns "$WORK/gw-$a-$size")
        nb1=$(worker_ns "$WORK/gw-$b-$size")
        local ra rb
        ra=$(paired_rps "$WORK/pair-a.out") || die "$a/$size: errors"
        rb=$(paired_rps "$WORK/pair-b.out") || die "$b/$size: errors"
        log "$size routes, paired round $round: $a $ra, $b $rb"
        echo "$size $a $b $round $ra $rb $((na1 - na0)) $((nb1 - nb0))" \
             "$(paired_requests "$WORK/pair-a.out")" \
             "$(paired_requests "$WORK/pair-b.out")"
    done
}

# the req/s of a wrk output, which must have no errors
paired_rps() {
    local rps errors
    read -r rps _ _ errors _ < <($UTIL wrk "$1" 0)
    [ "$errors" = 0 ] && echo "$rps"
}

# the requests of a wrk output
paired_requests() {
    sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$1"
}

paired_wrk() {
    PATHS_FILE=$WORK/routes/paths-$1.txt \
        taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${PAIRED_SECONDS}s" \
        --latency -s "$BENCH/paths.lua" "http://127.0.0.1:$2" >"$3"
}


# ---------------------------------------------------------------- 2. core

micro_benchmark() {
    local bin=$WORK/router_bench json=$WORK/router_bench.json
    g++ -std=c++17 -O2 -g -I"$ROOT/src/core" -I"$ROOT/src" "$BENCH/router_bench.cpp" \
        "$CORE_LIB" -lbenchmark -lpthread -lyajl \
        -o "$bin"
    # pinned, repeated: the median of 3 repetitions is reported; a change
    # at 1,000,000 routes takes 2 s or more a time, so only on request
    # (MICRO_FILTER=.)
    taskset -c "$GATEWAY_CPU" "$bin" --benchmark_repetitions=3 \
        --benchmark_filter="${MICRO_FILTER:--TableChange/1000000}" \
        --benchmark_report_aggregates_only=true \
        --benchmark_out="$json" --benchmark_out_format=json >&2
    {
        echo "### 2. The C++ core (bench/router_bench.cpp, g++ -O2," \
             "median of 3 repetitions, CPU $GATEWAY_CPU)"
        echo
        $UTIL micro "$json"
        echo "Targets: lookup <= 250 ns median at 100,000 routes; router" \
             "build for 100,000 routes <= 200 ms; <= 150 bytes of zone per" \
             "route.  Lookups walk one realistic path per route, shuffled" \
             "(every lookup is a different route: the worst case for caches)." \
             "SnapshotBytes/10000/1 is typical FastAPI-helper routes (name," \
             "description, tags, auth), /0 the bare routes of part 1.  The" \
             "zone holds one snapshot, but publishing allocates the new one" \
             "before freeing the old: size discovery_zone for twice the table."
        echo
    } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- 3. churn

# CHURN_SERVICES services polled every second: the first CHURN_HANGING at
# a port that accepts and never answers (timeout=2s), the rest served as
# static documents of CHURN_SERVICE_ROUTES routes by the backend.
churn_services_conf() {
    local hang_port=$1 i
    for i in $(seq 0 $((CHURN_SERVICES - 1))); do
        if [ "$i" -lt "$CHURN_HANGING" ]; then
            echo "    discovery_service churn$i http://127.0.0.1:$hang_port uri=/churn/svc$i.json interval=1s timeout=2s;"
        else
            echo "    discovery_service churn$i http://127.0.0.1:$BACKEND_PORT uri=/churn/svc$i.json interval=1s timeout=2s;"
        fi
    done
}

# pin_nginx DIR CPU: moves the master and worker of the nginx in DIR
pin_nginx() {
    local master pid
    master=$(cat "$1/nginx.pid")
    for pid in "$master" $(pgrep -P "$master"); do
        taskset -a -p -c "$2" "$pid" >/dev/null
    done
}

# The gateways stay up, discovery in steady state throughout, so that
# rounds can be short and many, each idle round next to a churn round: a
# p99 moves with the host by more than the margin at stake, and a slow
# spell of the host lasts seconds.  While another gateway is measured, the
# churn gateway goes on polling on the load core, off the measured one.
# The control, idle2, is a second idle gateway moved about as the churn
# one is: its ratio to idle is what the method reads where polling costs
# nothing.
churn_benchmark() {
    local tsv=$WORK/churn.tsv size=$CHURN_ROUTES round hang_port extra
    local kind kinds=(idle churn idle2)
    declare -A port=()
    : >"$tsv"
    generate_routes "$size"
    $PY "$BENCH/gen.py" churn "$CHURN_SERVICES" "$CHURN_SERVICE_ROUTES" "$WORK"

    # with the backend, off the gateway's core
    rm -f "$WORK/hang.port"
    taskset -c "$LOAD_CPU" $PY "$BENCH/hang.py" "$WORK/hang.port" &
    STARTED_PIDS+=($!)
    for _ in $(seq 50); do [ -s "$WORK/hang.port" ] && break; sleep 0.1; done
    hang_port=$(cat "$WORK/hang.port")
    extra=$(churn_services_conf "$hang_port")

    for kind in "${kinds[@]}"; do
        local conf=
        [ "$kind" = churn ] && conf=$extra
        GATEWAY_NAME=$kind start_gateway module "$size" "$conf" \
            || die "$kind gateway"
        port[$kind]=$GATEWAY_PORT
    done
    # steady state: all answering services healthy, all hanging ones timed
    # out once (unhealthy), then a full interval more
    $UTIL wait-status "http://127.0.0.1:${port[churn]}/_discovery" \
        api $((CHURN_SERVICES - CHURN_HANGING + 1)) "$CHURN_HANGING"
    sleep 1

    for kind in "${kinds[@]}"; do
        $UTIL check "http://127.0.0.1:${port[$kind]}" \
            "$WORK/routes/paths-$size.txt" 100 routing >/dev/null \
            || die "$kind gateway answers wrongly"
    done

    for round in $(seq "$CHURN_ROUNDS"); do
        # the order rotates from round to round: a trend within a round
        # favours none
        local i
        for i in 0 1 2; do
            local r other
            kind=${kinds[$(((round + i) % 3))]}
            for other in churn idle2; do
                [ "$other" = "$kind" ] \
                    || pin_nginx "$WORK/gw-$other-$size" "$LOAD_CPU"
            done
            pin_nginx "$WORK/gw-$kind-$size" "$GATEWAY_CPU"
            r=$(wrk_round "$WORK/gw-$kind-$size" "${port[$kind]}" "$size" \
                "$CHURN_SECONDS")
            log "churn, round $round, $kind: $r"
            echo "$size $kind $round $r" >>"$tsv"
        done
    done
    for kind in "${kinds[@]}"; do
        nginx_stop "$WORK/gw-$kind-$size"
    done

    {
        local title="3. Discovery churn: $CHURN_SERVICES services polled"
        title+=" every 1s, $CHURN_HANGING hanging until timeout=2s, main"
        title+=" service of $size routes; median of $CHURN_ROUNDS rounds"
        title+=" of ${CHURN_SECONDS}s"
        $UTIL report "$tsv" "$title" idle
        echo "Target: p99 under churn <= 1.10 x idle.  Three gateways of the" \
             "same $size routes, one of them (churn) also polling the" \
             "$CHURN_SERVICES services, all in steady state (all answering" \
             "services healthy, every hanging one timed out) before the" \
             "first round; each round measures one after the other on the" \
             "gateway core, churn and idle2 moved to the load core while" \
             "another is measured.  idle2 is the control: an idle gateway" \
             "moved about as the churn one; its ratio to idle is the" \
             "method's own, where polling costs nothing."
        echo
    } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- 4. instructions

# callgrind_gateway KIND SIZE: prints "instructions requests" of one
# gateway under load.  nginx runs as a single process (master_process off)
# under callgrind; the counters are zeroed after a warm-up and dumped after
# INSTR_SECONDS of wrk.  User space only: the kernel's share of a request
# (sockets, epoll) is the same for every gateway and is not counted.
callgrind_gateway() {
    local kind=$1 size=$2
    local dir=$WORK/cg-$kind-$size port pid i
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    port=$($UTIL port)
    gateway_conf "$kind" "$size" "$dir" "$port" \
        | sed 's/^worker_processes 1;/master_process off; daemon off;/' \
        >"$dir/nginx.conf"
    taskset -c "$GATEWAY_CPU" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/callgrind.out" \
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
        >"$dir/valgrind.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")

    for i in $(seq 600); do
        curl -so /dev/null "http://127.0.0.1:$port/" && break
        kill -0 "$pid" 2>/dev/null || die "$kind/$size under callgrind exited"
        sleep 0.2
    done
    if [[ $kind = module || $kind = *metrics || $kind = balancer ]]; then
        $UTIL wait-status "http://127.0.0.1:$port/_discovery" api 0 0
    fi
    $UTIL check "http://127.0.0.1:$port" "$WORK/routes/paths-$size.txt" 100 \
        $([ "$kind" = plain ] || echo routing) >/dev/null \
        || die "gateway $kind/$size under callgrind answers wrongly"

    PATHS_FILE=$WORK/routes/paths-$size.txt taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d2s -s "$BENCH/paths.lua" \
        "http://127.0.0.1:$port" >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    PATHS_FILE=$WORK/routes/paths-$size.txt taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${INSTR_SECONDS}s" -s "$BENCH/paths.lua" \
        "http://127.0.0.1:$port" >"$dir/wrk.out"
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true

    grep -q 'Non-2xx' "$dir/wrk.out" && die "$kind/$size: errors under load"
    # the dump after the zeroing: the newest file but the one at exit
    echo "$(awk '/^summary:/ { print $2 }' "$dir/callgrind.out.1")" \
         "$(awk '/requests in/ { print $1 }' "$dir/wrk.out")"
}

instructions_benchmark() {
    local size kind ir req plain
    command -v valgrind >/dev/null || die "valgrind not found"
    generate_routes $INSTR_SIZES
    {
        echo "### 4. Instructions per request (callgrind, user space," \
             "${INSTR_SECONDS}s of wrk each)"
        echo
        echo "| routes | gateway | requests | instructions/request | vs plain | plain vs it |"
        echo "|---:|---|---:|---:|---:|---:|"
    } >"$WORK/instr.md"

    # metrics: the module with discovery_metrics, every request counted;
    # balancer: the module behind "proxy_pass http://discovery"
    for size in $INSTR_SIZES; do
        plain=
        for kind in $INSTR_KINDS; do
            read -r ir req < <(callgrind_gateway "$kind" "$size")
            [ "$kind" = plain ] && plain=$((ir / req))
            log "instructions, $size routes, $kind: $((ir / req))/request"
            printf '| %s | %s | %s | %s | %s | %s |\n' "$size" "$kind" "$req" \
                "$((ir / req))" \
                "$(awk -v a=$((ir / req)) -v b="$plain" \
                       'BEGIN { if (b) printf "%.3f", a / b; else print "-" }')" \
                "$(awk -v a=$((ir / req)) -v b="$plain" \
                       'BEGIN { if (b) printf "%.3f", b / a; else print "-" }')" \
                >>"$WORK/instr.md"
        done
    done

    {
        cat "$WORK/instr.md"
        echo
        echo "Counted by valgrind --tool=callgrind in nginx's own process," \
             "from a warm gateway: the same work gives the same count on a" \
             "slow host or a fast one, within about 1% (how many events" \
             "each epoll_wait returns varies).  The kernel's part of a" \
             "request is not counted; it is the same for every gateway."
        echo
    } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- 5. table changes

# table_services_conf KIND SIZE: the services of a table gateway, reading
# the documents of $WORK/table/SIZE/KIND, its own copy
table_services_conf() {
    local kind=$1 size=$2 i
    for i in $(seq 0 $((TABLE_SERVICES - 1))); do
        echo "    discovery_service t$i http://127.0.0.1:$BACKEND_PORT uri=/table/$size/$kind/svc$i.json interval=1s timeout=5s;"
    done
}

# table_gateway KIND SIZE: a table gateway of its own copy of the documents
table_gateway() {
    local kind=$1 size=$2
    rm -rf "$WORK/table/$size/$kind"
    mkdir -p "$WORK/table/$size"
    cp -r "$WORK/tablegen/table-$size" "$WORK/table/$size/$kind"
    GATEWAY_NAME=$kind-w$WORKERS start_gateway table "$size" \
        "$(table_services_conf "$kind" "$size")" || die "$kind gateway"
}

workers_of() {
    pgrep -P "$(cat "$1/nginx.pid")" | tr '\n' ' '
}

# The rounds of part 3, on gateways whose services are TABLE_SERVICES
# documents of a quarter of the table each, all polled every second: the
# churn gateway's first document gains a route every second during its
# rounds (the poll reads, and the gateway re-publishes, a quarter of the
# table), the idle ones' never change.  Then the memory of the workers,
# and the time a new route takes to be routed by every worker of the
# churn gateway.
table_benchmark() {
    local size=$1
    local TABLE_SERVICES=4 TABLE_ZONE=256m
    if [ "$size" -ge 1000000 ]; then
        TABLE_SERVICES=$((size / 25000))
        TABLE_ZONE=1536m
    fi
    local tsv=$WORK/table-$size-w$WORKERS.tsv round kind
    local kinds=(idle churn idle2) mutator changes=$WORK/table-changes.log
    declare -A port=()
    : >"$tsv"
    mkdir -p "$WORK/routes"
    $PY "$BENCH/gen.py" table "$size" "$TABLE_SERVICES" "$WORK/tablegen"
    cp "$WORK/tablegen/table-$size/paths.txt" "$WORK/routes/paths-table-$size.txt"

    for kind in "${kinds[@]}"; do
        table_gateway "$kind" "$size"
        port[$kind]=$GATEWAY_PORT
    done
    for kind in "${kinds[@]}"; do
        $UTIL check "http://127.0.0.1:${port[$kind]}" \
            "$WORK/routes/paths-table-$size.txt" 100 routing >/dev/null \
            || die "$kind gateway answers wrongly"
    done

    # the idle gateway at rest, and as soon as it routes every path (its
    # first table's buffers may not be given back yet)
    local idle_mb idle_first_mb
    idle_first_mb=$($UTIL private $(workers_of "$WORK/gw-idle-w$WORKERS-$size"))
    sleep 5
    idle_mb=$($UTIL private $(workers_of "$WORK/gw-idle-w$WORKERS-$size"))

    : >"$changes"
    taskset -c "$LOAD_CPU" $UTIL mutate \
        "$WORK/table/$size/churn/svc0.json" "$changes" &
    mutator=$!
    STARTED_PIDS+=("$mutator")
    sleep 2

    for round in $(seq "$TABLE_ROUNDS"); do
        local i
        for i in 0 1 2; do
            local r other
            kind=${kinds[$(((round + i) % 3))]}
            # the documents change during the churn gateway's rounds only:
            # its publications would otherwise take the load's core from
            # wrk while the others are measured (at 1,000,000 routes a
            # third of it), and the others would read slower than idle
            if [ "$kind" = churn ]; then
                kill -CONT "$mutator"
            else
                kill -STOP "$mutator"
                taskset -c "$LOAD_CPU" $UTIL settled \
                    "http://127.0.0.1:${port[churn]}" "$changes" \
                    || die "the churn gateway did not publish its last change"
            fi
            for other in "${kinds[@]}"; do
                [ "$other" = "$kind" ] \
                    || pin_nginx "$WORK/gw-$other-w$WORKERS-$size" "$LOAD_CPU"
            done
            pin_nginx "$WORK/gw-$kind-w$WORKERS-$size" "$GATEWAY_CPU"
            r=$(wrk_round \
                "$WORK/gw-$kind-w$WORKERS-$size" "${port[$kind]}" \
                "table-$size" "$CHURN_SECONDS")
            log "table $size, $WORKERS workers, round $round, $kind: $r"
            echo "$size $kind $round $r" >>"$tsv"
        done
    done

    kill -CONT "$mutator"
    for kind in idle idle2; do
        pin_nginx "$WORK/gw-$kind-w$WORKERS-$size" "$LOAD_CPU"
    done
    pin_nginx "$WORK/gw-churn-w$WORKERS-$size" "$GATEWAY_CPU"
    local churn_mb delays
    # the prober on the load's core, as wrk and the mutator: not the
    # gateway's, whose publication threads it would take turns with
    delays=$(taskset -c "$LOAD_CPU" $UTIL propagation \
        "http://127.0.0.1:${port[churn]}" "$changes" \
        "$TABLE_CHANGES" "$WORKERS" 60 | awk '{ print $2 }' | sort -n \
        | tr '\n' ' ') || die "propagation"
    churn_mb=$($UTIL private $(workers_of "$WORK/gw-churn-w$WORKERS-$size"))
    local changed
    changed=$(wc -l <"$changes")
    kill "$mutator" 2>/dev/null || true

    for kind in "${kinds[@]}"; do
        nginx_stop "$WORK/gw-$kind-w$WORKERS-$size"
    done

    {
        $UTIL report "$tsv" "5. Table changes: $TABLE_SERVICES services of $((size / TABLE_SERVICES)) routes polled every 1s, one of them gaining a route about every second, 0.5 to 1.5 s apart, during the churn gateway's rounds (churn); $WORKERS worker(s); median of $TABLE_ROUNDS rounds of ${CHURN_SECONDS}s" idle
        echo "Targets: p99 under churn <= 1.2 x idle, req/s >= 0.95 x idle." \
             "idle2 is the control (see part 3)."
        echo
        echo "Private memory of each worker (MB, Private_* of smaps_rollup /" \
             "of the mappings other than the shared zone's):" \
             "idle $idle_mb (as soon as it routed every path:" \
             "$idle_first_mb); churn, after $changed changes, $churn_mb;" \
             "with no routes: ${EMPTY_MB[$WORKERS]}."
        echo
        echo "Propagation: seconds from the document's write to every" \
             "worker routing the new route, $TABLE_CHANGES changes," \
             "sorted: $delays(interval=1s)."
        echo
    } | tee -a "$RESULTS"
}

# the workers' private memory with TABLE_SERVICES services of no routes
declare -A EMPTY_MB=()
table_empty_memory() {
    $PY "$BENCH/gen.py" table 0 "$TABLE_SERVICES" "$WORK/tablegen"
    table_gateway idle 0
    EMPTY_MB[$WORKERS]=$($UTIL private $(workers_of "$WORK/gw-idle-w$WORKERS-0"))
    nginx_stop "$WORK/gw-idle-w$WORKERS-0"
}

table_benchmarks() {
    local size
    for WORKERS in $TABLE_WORKERS; do
        table_empty_memory
        for size in $TABLE_SIZES; do
            table_benchmark "$size"
        done
    done
    WORKERS=1
    [ "$MEMORY_CHANGES" -gt 0 ] && memory_changes_benchmark 100000
    state_start_benchmark "${TABLE_SIZES##* }"
}

# Part 5b: one worker's private memory outside the zone across
# MEMORY_CHANGES table changes at SIZE routes.  The 4 documents in turn
# each gain or lose a route, and each change is waited for until the
# worker routes it: every change is a publication of its own.
memory_changes_benchmark() {
    local size=$1 dir before lines
    local TABLE_SERVICES=4 TABLE_ZONE=256m
    $PY "$BENCH/gen.py" table "$size" "$TABLE_SERVICES" "$WORK/tablegen"
    table_gateway memory "$size"
    dir=$WORK/gw-memory-w$WORKERS-$size
    sleep 3
    before=$($UTIL private $(workers_of "$dir"))
    lines=$($UTIL toggle "$WORK/table/$size/memory" "$TABLE_SERVICES" \
        "http://127.0.0.1:$GATEWAY_PORT" "$MEMORY_CHANGES" \
        $((MEMORY_CHANGES >= 10 ? MEMORY_CHANGES / 10 : 1)) \
        $(workers_of "$dir")) || die "memory changes"
    nginx_stop "$dir"
    {
        echo "5b. A worker's private memory (MB, all / outside the zone)" \
             "across $MEMORY_CHANGES table changes at $size routes, each" \
             "change routed before the next, sampled 3 s after each" \
             "$((MEMORY_CHANGES >= 10 ? MEMORY_CHANGES / 10 : 1)) changes:" \
             "before the first, $before;" \
             "$(echo "$lines" | awk '{ printf "%s%s after %s (%s s)", sep, $3, $1, $2; sep = "; " }')."
        echo
    } | tee -a "$RESULTS"
}

# A gateway of SIZE routes saves its table to a state file; started again
# (its services up, as in a restart), how long until its first request is
# routed, the table coming from the file.
state_start_benchmark() {
    local size=$1 dir since first path i
    local TABLE_SERVICES=4 TABLE_ZONE=256m
    if [ "$size" -ge 1000000 ]; then
        TABLE_SERVICES=$((size / 25000))
        TABLE_ZONE=1536m
    fi
    mkdir -p "$WORK/state"
    rm -f "$WORK/state/table.state"
    local TABLE_STATE="    discovery_state $WORK/state/table.state;"
    $PY "$BENCH/gen.py" table "$size" "$TABLE_SERVICES" "$WORK/tablegen"
    table_gateway state "$size"
    dir=$WORK/gw-state-w$WORKERS-$size
    path=$(head -1 "$WORK/tablegen/table-$size/paths.txt")
    # the file is written once the table is published; then a restart
    for i in $(seq 600); do
        [ -s "$WORK/state/table.state" ] && break
        sleep 0.1
    done
    [ -s "$WORK/state/table.state" ] || die "no state file written"
    sleep 2
    nginx_stop "$dir"
    since=$($PY -c 'import time; print(time.time())')
    start_nginx "$dir" "$GATEWAY_CPU" || die "state gateway did not start"
    first=$($UTIL first-routed "http://127.0.0.1:$GATEWAY_PORT$path" "$since") \
        || die "state gateway did not route"
    nginx_stop "$dir"
    log "state start, $size routes: first request routed after ${first}s"
    {
        echo "Restart with a state file of $size routes" \
             "($(du -m "$WORK/state/table.state" | cut -f1) MB): the first" \
             "request was routed ${first}s after nginx was started" \
             "(target: 1 s at 1,000,000)."
        echo
    } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- 6. services

# services_conf INTERVAL: SERVICES services of 2 routes each, documents
# served by the backend, proxied to its one upstream
services_conf() {
    local interval=$1 i
    for i in $(seq 0 $((SERVICES - 1))); do
        echo "    discovery_service t$i http://127.0.0.1:$BACKEND_PORT uri=/services/svc$i.json interval=$interval upstream=backend;"
    done
}

# SERVICES services polled every 10 s (SERVICES / 10 polls a second) from
# one backend, against the same gateway with polling off (interval=1h:
# each service polled once, at start): the polled gateway's CPU with no
# requests, then request rounds alternating between the two.
services_benchmark() {
    local tsv=$WORK/services.tsv kind round hz
    local -A port=() idle_cpu=()
    : >"$tsv"
    hz=$(getconf CLK_TCK)
    rm -rf "$WORK/services" "$WORK/svcgen"
    $PY "$BENCH/gen.py" table $((2 * SERVICES)) "$SERVICES" "$WORK/svcgen"
    mv "$WORK/svcgen/table-$((2 * SERVICES))" "$WORK/services"
    mkdir -p "$WORK/routes"
    cp "$WORK/services/paths.txt" "$WORK/routes/paths-services.txt"

    for kind in polled off; do
        local interval=10s
        [ "$kind" = off ] && interval=1h
        GATEWAY_NAME=$kind start_gateway services "$SERVICES" \
            "$(services_conf "$interval")" || die "$kind gateway"
        port[$kind]=$GATEWAY_PORT
        pin_nginx "$WORK/gw-$kind-$SERVICES" "$LOAD_CPU"
    done
    for kind in polled off; do
        $UTIL check "http://127.0.0.1:${port[$kind]}" \
            "$WORK/routes/paths-services.txt" 100 routing >/dev/null \
            || die "$kind gateway answers wrongly"
    done

    # past the first polls, all due at start: spread over the interval
    sleep 12
    for kind in polled off; do
        local a b dir=$WORK/gw-$kind-$SERVICES
        pin_nginx "$dir" "$GATEWAY_CPU"
        a=$(worker_ticks "$dir")
        sleep "$SERVICES_IDLE_SECONDS"
        b=$(worker_ticks "$dir")
        pin_nginx "$dir" "$LOAD_CPU"
        idle_cpu[$kind]=$(awk -v t=$((b - a)) -v hz="$hz" \
            -v s="$SERVICES_IDLE_SECONDS" 'BEGIN { printf "%.1f", 100 * t / hz / s }')
        log "services: $kind gateway idle, workers' CPU ${idle_cpu[$kind]}%"
    done

    for round in $(seq "$SERVICES_ROUNDS"); do
        local i
        for i in 0 1; do
            local r other
            kind=$([ $(((round + i) % 2)) = 0 ] && echo polled || echo off)
            other=$([ "$kind" = polled ] && echo off || echo polled)
            pin_nginx "$WORK/gw-$other-$SERVICES" "$LOAD_CPU"
            pin_nginx "$WORK/gw-$kind-$SERVICES" "$GATEWAY_CPU"
            r=$(wrk_round "$WORK/gw-$kind-$SERVICES" "${port[$kind]}" \
                services "$CHURN_SECONDS")
            log "services $SERVICES, round $round, $kind: $r"
            echo "$SERVICES $kind $round $r" >>"$tsv"
        done
    done

    local polls
    polls=$(curl -s "http://127.0.0.1:${port[polled]}/_discovery" \
        | $PY -c 'import json,sys; d=json.load(sys.stdin); print(len(d["services"]), sum(s["state"] == "healthy" for s in d["services"]))')
    for kind in polled off; do
        nginx_stop "$WORK/gw-$kind-$SERVICES"
    done

    {
        $UTIL report "$tsv" "6. $SERVICES services of 2 routes each, polled every 10s from one backend (polled) or once (off, interval=1h); 1 worker; median of $SERVICES_ROUNDS rounds of ${CHURN_SECONDS}s" off
        echo "Targets: polling <= 10% of one core; p99 polled <= 1.1 x off."
        echo
        echo "Workers' CPU with no requests, over ${SERVICES_IDLE_SECONDS}s:" \
             "polled ${idle_cpu[polled]}% of one core, off ${idle_cpu[off]}%." \
             "Services, healthy at the end (polled): $polls."
        echo
    } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- 7. scrape

# A gateway of SCRAPE_SIZE routes with discovery_metrics: requests to
# 1,000 routes, then to every route (each route that counted has a
# requests_total series and a histogram), SCRAPES scrapes in each format
# after each, one at a time: the median and the largest time, and the
# size.  Wall-clock: run it on a quiet host (the load average is written
# with it).
scrape_benchmark() {
    local fmt accept times size active
    generate_routes "$SCRAPE_SIZE"
    GATEWAY_NAME=scrape start_gateway metrics "$SCRAPE_SIZE" \
        || die "the metrics gateway of $SCRAPE_SIZE routes did not start"
    {
        echo "### 7. A scrape of $SCRAPE_SIZE routes (discovery_metrics)"
        echo
        echo "$SCRAPES scrapes in a row with curl after requests to some" \
             "routes, then to every route (a route shows series once it" \
             "counted); load average $(cut -d' ' -f1-3 /proc/loadavg) at the" \
             "start."
        echo
        echo "| routes with requests | format | bytes | median ms | max ms |"
        echo "|---:|---|---:|---:|---:|"
    } >"$WORK/scrape.md"
    for active in 1000 "$SCRAPE_SIZE"; do
        $UTIL check "http://127.0.0.1:$GATEWAY_PORT" \
            "$WORK/routes/paths-$SCRAPE_SIZE.txt" "$active" routing \
            >/dev/null || die "the metrics gateway answers wrongly"
        for fmt in text openmetrics; do
            accept="text/plain"
            [ "$fmt" = openmetrics ] \
                && accept="application/openmetrics-text;version=1.0.0"
            times=$(for _ in $(seq "$SCRAPES"); do
                curl -s -o "$WORK/scrape.out" -H "Accept: $accept" \
                    -w '%{time_total}\n' \
                    "http://127.0.0.1:$GATEWAY_PORT/metrics"
            done | sort -n)
            size=$(stat -c %s "$WORK/scrape.out")
            printf '| %s | %s | %s | %s | %s |\n' "$active" "$fmt" "$size" \
                "$(echo "$times" | awk '{ t[NR] = $1 } END { printf "%.1f", 1000 * t[int((NR + 1) / 2)] }')" \
                "$(echo "$times" | awk 'END { printf "%.1f", 1000 * $1 }')" \
                >>"$WORK/scrape.md"
        done
    done
    nginx_stop "$WORK/gw-scrape-$SCRAPE_SIZE"
    { cat "$WORK/scrape.md"; echo; } | tee -a "$RESULTS"
}


# ---------------------------------------------------------------- main

main() {
    local t0=$SECONDS
    [ -x "$NGINX" ] || die "$NGINX not found"
    command -v wrk >/dev/null || die "wrk not found"
    make -s -C "$ROOT" module >&2
    mkdir -p "$WORK"
    cp "$ROOT/build/ngx_http_discovery_module.so" "$MODULE.tmp"
    mv "$MODULE.tmp" "$MODULE"
    cp "$ROOT/build/libdiscovery_core.a" "$CORE_LIB"

    machine_info >"$RESULTS"

    [ -n "${SKIP_MICRO:-}" ] || micro_benchmark
    start_backend
    [ -n "${SKIP_HTTP:-}" ] || http_benchmark
    [ -n "${SKIP_CHURN:-}" ] || churn_benchmark
    [ -n "${SKIP_INSTR:-}" ] || instructions_benchmark
    [ -n "${SKIP_TABLE:-}" ] || table_benchmarks
    [ -n "${SKIP_SERVICES:-}" ] || services_benchmark
    [ -n "${SKIP_SCRAPE:-}" ] || scrape_benchmark

    echo "Total run time: $((SECONDS - t0)) s." | tee -a "$RESULTS"
}

main "$@"
