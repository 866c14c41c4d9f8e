#!/usr/bin/env bash
# Runs the nginx test suites t/*.t with prove.
#
#   t/run-prove.sh                  all of t/*.t
#   t/run-prove.sh t/foo.t -v       only t/foo.t, verbose (args go to prove)
#
# Environment:
#   TEST_NGINX_BINARY        nginx to test          (default /usr/sbin/nginx)
#   TEST_NGINX_LOAD_MODULES  modules to load        (default build/ngx_http_discovery_module.so;
#                                                    set it empty to load none)
#   PROVE_JOBS               parallel test files    (default 1)
#   HARNESS_SELFTEST=0       skip the self-tests of the bundled harness
#   and any TEST_NGINX_* variable of Test::Nginx::Socket.
#
# When openresty's Test::Nginx::Socket is not installed, the one bundled in
# t/harness is used, after its own self-tests (t/harness/selftest/*.t) pass.
# The exit code is prove's.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
export TEST_NGINX_LOAD_MODULES="${TEST_NGINX_LOAD_MODULES-$ROOT/build/ngx_http_discovery_module.so}"
jobs="${PROVE_JOBS:-1}"

# parallel test files need their own server roots (and ports)
if [ "$jobs" -gt 1 ] 2>/dev/null; then
    export TEST_NGINX_RANDOMIZE="${TEST_NGINX_RANDOMIZE:-1}"
fi

inc=(-I t/lib)
if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    echo "run-prove: Test::Nginx::Socket is not installed; using t/harness" >&2
    inc+=(-I t/harness)
    if [ "${HARNESS_SELFTEST:-1}" != 0 ]; then
        prove -j1 -I t/harness t/harness/selftest/*.t
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "run-prove: the self-tests of t/harness failed" >&2
            exit $rc
        fi
    fi
fi

# test files given as arguments narrow the run; other arguments are options
have_files=0
for arg in "$@"; do
    case "$arg" in
        -*) ;;
        *) [ -e "$arg" ] && have_files=1 ;;
    esac
done
tests=()
if [ $have_files -eq 0 ]; then
    shopt -s nullglob
    tests=(t/*.t)
    shopt -u nullglob
    if [ ${#tests[@]} -eq 0 ]; then
        echo "run-prove: no test files in t/*.t" >&2
        exit 0
    fi
fi

for so in $TEST_NGINX_LOAD_MODULES; do
    [ -f "$so" ] || echo "run-prove: warning: module $so does not exist (build it first)" >&2
done

prove -j"$jobs" "${inc[@]}" "$@" "${tests[@]}"
