#!/bin/bash
# t/deb-check.sh (`make deb-check`): installs build/*.deb (`make deb`),
# checks the module and the helper as installed, then removes them:
#   - the module is enabled by the symlink dh_nginx's postinst makes;
#   - nginx -t passes with Debian's /etc/nginx/nginx.conf and the README's
#     gateway in /etc/nginx/conf.d/discovery.conf;
#   - the README's FastAPI service, run by Debian's python3 without
#     PYTHONPATH, imports the installed helper, and the system's nginx
#     routes a request to it;
#   - the Test::Nginx suites pass against the installed module;
#   - apt-get remove takes the symlink away, and nginx -t still passes.
# As root, on a machine whose nginx is not running (this starts and stops
# it) and where ports 80, 8001 and 8080 are free: a fresh Debian 12 after
# `make deb` is one.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODULE=/usr/lib/nginx/modules/ngx_http_discovery_module.so
AVAILABLE=/usr/share/nginx/modules-available/mod-http-discovery.conf
LINK=/etc/nginx/modules-enabled/50-mod-http-discovery.conf
GATEWAY=/etc/nginx/conf.d/discovery.conf
PYTHON=/usr/bin/python3
PACKAGES=(libnginx-mod-http-discovery python3-nginx-discovery)

work=$(mktemp -d)
service_pid=
nginx_started=0
gateway_written=0

step() { echo "deb-check: $*"; }
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }

cleanup() {
    if [ $nginx_started -eq 1 ] && [ -s /run/nginx.pid ]; then
        nginx -s quit || true
    fi
    if [ -n "$service_pid" ]; then
        kill "$service_pid" 2>/dev/null || true
    fi
    if [ $gateway_written -eq 1 ]; then
        rm -f "$GATEWAY"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# readme_block LANG: the first ```LANG block after the README's mark
readme_block() {
    awk -v fence="\`\`\`$1" '
        /<!-- t\/deb-check.sh / { marked = 1 }
        marked && !inside && $0 == fence { inside = 1; next }
        inside && $0 == "```" { exit }
        inside { print }
    ' "$ROOT/README.md"
}

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
wait_for() {
    local seconds=$1 what=$2 _
    shift 2
    for _ in $(seq $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "no $what after $seconds s"
}

[ "$(id -u)" -eq 0 ] || fail "run as root: it installs packages and runs nginx"
debs=("$ROOT"/build/libnginx-mod-http-discovery_*.deb
      "$ROOT"/build/python3-nginx-discovery_*.deb)
for deb in "${debs[@]}"; do
    [ -f "$deb" ] || fail "no $deb: \`make deb\` builds it"
done
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    fail "nginx is running: this check starts and stops it"
fi
[ ! -e "$GATEWAY" ] || fail "$GATEWAY exists: this check writes it"

step "apt-get install ${debs[*]##*/}"
apt-get update -qq
# RUNLEVEL=1: an nginx that apt installs now is not started on port 80
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq \
    --no-install-recommends "${debs[@]}" >/dev/null
version=$(dpkg-query -W -f='${Version}' libnginx-mod-http-discovery)

step "the module is enabled: $LINK"
[ -f "$MODULE" ] || fail "no $MODULE"
grep -qx "load_module modules/ngx_http_discovery_module.so;" "$AVAILABLE" \
    || fail "$AVAILABLE: $(cat "$AVAILABLE")"
[ "$(readlink "$LINK")" = "$AVAILABLE" ] || fail "$LINK: $(ls -l "$LINK" 2>&1)"
abi=$(dpkg-query -W -f='${Depends}' libnginx-mod-http-discovery \
      | grep -o 'nginx-abi-[^ ,]*') || fail "no nginx-abi-* in Depends"
dpkg-query -W -f='${Provides}' nginx | grep -qw -- "$abi" \
    || fail "the installed nginx does not provide $abi"
step "it depends on $abi, which the installed nginx provides"
# nginx reloads through its trigger; read in the scripts, since a chroot
# has no init system to reload it
for script in postinst postrm; do
    grep -q "dpkg-trigger --no-await nginx-reload" \
        "/var/lib/dpkg/info/libnginx-mod-http-discovery.$script" \
        || fail "its $script does not trigger nginx-reload"
done
step "its postinst and postrm trigger nginx's reload"

step "Debian's python3 imports the installed helper without PYTHONPATH"
helper=$(cd "$work" && env -u PYTHONPATH "$PYTHON" -c \
         'import nginx_discovery; print(nginx_discovery.__file__)')
case "$helper" in
    /usr/lib/python3/dist-packages/nginx_discovery/*) ;;
    *) fail "nginx_discovery imported from $helper" ;;
esac

step "nginx -t: Debian's nginx.conf and the README's gateway in $GATEWAY"
readme_block nginx >"$GATEWAY"
gateway_written=1
grep -q discovery_service "$GATEWAY" || fail "no gateway block in README.md"
nginx -t

step "a request through nginx to the README's service"
# uvicorn runs it: the README says so
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-uvicorn curl >/dev/null
readme_block python >"$work/chat.py"
(cd "$work" && exec env -u PYTHONPATH "$PYTHON" chat.py >"$work/chat.log" 2>&1) &
service_pid=$!
wait_for 15 "service on 127.0.0.1:8001" \
    curl -sf http://127.0.0.1:8001/health
nginx
nginx_started=1
wait_for 20 "healthy chat on the status page" \
    sh -c 'curl -sf http://127.0.0.1:8080/_discovery | grep -q "\"state\":\"healthy\""'
status=$(curl -sf http://127.0.0.1:8080/_discovery)
echo "$status" | grep -q "^{\"module_version\":\"$version\"," \
    || fail "module_version is not $version: $status"
answer=$(curl -sf http://127.0.0.1:8080/chat/hello/you)
[ "$answer" = '{"service":"chat","hello":"you"}' ] || fail "routed: $answer"
echo "deb-check: GET /chat/hello/you -> $answer"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/nowhere)
[ "$code" = 404 ] || fail "GET /nowhere answered $code, not the gateway's 404"
nginx -s quit
wait_for 10 "nginx exit" sh -c '! [ -s /run/nginx.pid ]'
nginx_started=0
kill "$service_pid"
wait "$service_pid" 2>/dev/null || true
service_pid=

step "the Test::Nginx suites against $MODULE"
"$ROOT/build.sh" deps
TEST_NGINX_LOAD_MODULES=$MODULE "$ROOT/t/run-prove.sh" \
    || fail "Test::Nginx suites against $MODULE"

step "apt-get remove ${PACKAGES[*]}"
rm -f "$GATEWAY"
gateway_written=0
nginx -t
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${PACKAGES[@]}" >/dev/null
if [ -e "$LINK" ] || [ -L "$LINK" ]; then
    fail "$LINK is still there"
fi
[ ! -e "$MODULE" ] || fail "$MODULE is still there"
if grep -ls ngx_http_discovery_module /etc/nginx/modules-enabled/*.conf; then
    fail "a load_module line is still enabled"
fi
if (cd "$work" && env -u PYTHONPATH "$PYTHON" -c 'import nginx_discovery' \
        2>/dev/null); then
    fail "nginx_discovery is still importable"
fi
nginx -t

echo "deb-check: all checks passed"
