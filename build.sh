#!/bin/bash
# build.sh: installs what is missing (Debian/Ubuntu, apt) and builds
# build/ngx_http_discovery_module.so against the installed nginx's own
# headers and configure flags, so that its load_module accepts it.
#   ./build.sh          packages + module
#   ./build.sh deps     packages only
#   ./build.sh module   module only (`make module`): installs nothing
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BUILD=$ROOT/build

# what `build.sh module` needs; PACKAGES adds the tests' tools
BUILD_PACKAGES="nginx nginx-dev libyajl-dev libcurl4-openssl-dev g++ make"
PACKAGES="nginx nginx-dev libyajl-dev libcurl4-openssl-dev ca-certificates g++ make
    pkg-config libgtest-dev googletest libbenchmark-dev clang libclang-rt-14-dev valgrind
    curl wrk procps perl libtest-base-perl libtext-diff-perl libtest-longstring-perl
    libwww-perl liburi-perl libipc-run-perl liblist-moreutils-perl
    python3 python3-fastapi python3-uvicorn python3-httpx python3-pytest
    python3-websockets"

# the packages of those named that are not installed
missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' || echo "$p"
    done
}

install_packages() {
    local missing
    # shellcheck disable=SC2086
    mapfile -t missing < <(missing_packages $PACKAGES)
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "build.sh: missing packages: ${missing[*]} (no apt-get here)" >&2
        exit 1
    fi
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "build.sh: installing ${missing[*]}"
    $sudo apt-get update -qq
    # the nginx package would start a service on port 80: keep it from
    # doing so in containers and CI, where nothing else should listen
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

build_module() {
    local missing
    # shellcheck disable=SC2086
    mapfile -t missing < <(missing_packages $BUILD_PACKAGES)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "build.sh: missing ${missing[*]}: \`make deps\` installs them" >&2
        exit 1
    fi
    make -C "$ROOT" -s core
    local src=$BUILD/nginx-src
    if [ ! -f "$src/.configured" ] \
        || [ "$ROOT/config" -nt "$src/.configured" ] \
        || [ "$ROOT/debian/changelog" -nt "$src/.configured" ] \
        || [ /usr/share/nginx/src/conf_flags -nt "$src/.configured" ]; then
        rm -rf "$src"
        mkdir -p "$BUILD"
        cp -r /usr/share/nginx/src "$src"
        # shellcheck disable=SC1091
        . "$src/conf_flags"
        (cd "$src" && ./configure "${NGX_CONF_FLAGS[@]}" \
            --add-dynamic-module="$ROOT" --builddir="$src/objs" >/dev/null)
        touch "$src/.configured"
    fi
    # nginx's Makefile does not know the core library: relink when it changes
    if [ "$BUILD/libdiscovery_core.a" -nt "$src/objs/ngx_http_discovery_module.so" ]; then
        rm -f "$src/objs/ngx_http_discovery_module.so"
    fi
    make -s -C "$src" -f "$src/objs/Makefile" modules >/dev/null
    # a new file, renamed over the old: a running nginx keeps its mapping
    cp "$src/objs/ngx_http_discovery_module.so" "$BUILD/.module.so.tmp"
    mv -f "$BUILD/.module.so.tmp" "$BUILD/ngx_http_discovery_module.so"
    echo "build.sh: built $BUILD/ngx_http_discovery_module.so"
}

case "${1:-all}" in
    deps) install_packages ;;
    all)  install_packages; build_module ;;
    module) build_module ;;
    *) echo "usage: build.sh [deps|module|all]" >&2; exit 2 ;;
esac
