#!/bin/bash
# build.sh: installs what is missing (Debian/Ubuntu, apt) and builds
# build/ngx_http_discovery_module.so against the installed nginx's own
# headers and configure flags, so that its load_module accepts it.
#   ./build.sh          packages + module
#   ./build.sh deps     packages only
#   ./build.sh module   module only (`make module`): installs nothing
#   ./build.sh deb      build/*.deb, the Debian packages (`make deb`):
#                       installs debian/control's Build-Depends and lintian
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
case $ROOT in
    *[[:space:]]*)
        echo "build.sh: nginx's build cannot run from a path with spaces: $ROOT" >&2
        exit 1
        ;;
esac
BUILD=$ROOT/build

# what `build.sh module` needs; PACKAGES adds the tests' tools
BUILD_PACKAGES="nginx nginx-dev libyajl-dev libcurl4-openssl-dev g++ make"
PACKAGES="nginx nginx-dev libyajl-dev libcurl4-openssl-dev ca-certificates g++ make
    pkg-config libgtest-dev googletest libbenchmark-dev clang libclang-rt-14-dev valgrind
    curl wrk procps perl libtest-base-perl libtext-diff-perl libtest-longstring-perl
    libwww-perl liburi-perl libipc-run-perl liblist-moreutils-perl
    python3 python3-fastapi python3-uvicorn python3-httpx python3-pytest
    python3-websockets python3-grpcio python3-grpc-tools grpc-proto openssl
    chromium chromium-driver python3-selenium prometheus
    python3-prometheus-client etcd-server"
# what `build.sh deb` needs besides debian/control's Build-Depends
DEB_PACKAGES="dpkg-dev lintian"

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo

# the packages of those named that are not installed
missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' || echo "$p"
    done
}

# installs those of the packages named that are missing
install_packages() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "build.sh: missing packages: ${missing[*]} (no apt-get here)" >&2
        exit 1
    fi
    echo "build.sh: installing ${missing[*]}"
    $sudo apt-get update -qq
    # the nginx package would start a service on port 80: RUNLEVEL=1 keeps
    # it from doing so where there is no systemd (containers, CI); on a
    # systemd host it starts
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
    # side by side, one compiler per core: the core is most of the build
    local jobs
    jobs=$(nproc 2>/dev/null || echo 2)
    make -C "$ROOT" -s -j"$jobs" core ui
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
    make -s -j"$jobs" -C "$src" -f "$src/objs/Makefile" modules >/dev/null
    # a new file, renamed over the old: a running nginx keeps its mapping
    cp "$src/objs/ngx_http_discovery_module.so" "$BUILD/.module.so.tmp"
    mv -f "$BUILD/.module.so.tmp" "$BUILD/ngx_http_discovery_module.so"
    echo "build.sh: built $BUILD/ngx_http_discovery_module.so"
}

# build/*.deb: dpkg-buildpackage in a copy of the tree, build/deb/src, so
# that the checkout is not written to and the packages land in build/
build_deb() {
    # shellcheck disable=SC2086
    install_packages $DEB_PACKAGES
    local stage=$BUILD/deb
    rm -rf "$stage"
    mkdir -p "$stage/src"
    if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
        echo "build.sh: warning: the working tree has changes, packaged as they are"
    fi
    tar -C "$ROOT" --exclude=./build --exclude=./.git --exclude='./t/servroot*' \
        --exclude=./bench/work --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=./python/build --exclude='*.egg-info' \
        -cf - . | tar -C "$stage/src" -xf -
    if ! (cd "$stage/src" && dpkg-checkbuilddeps 2>/dev/null); then
        echo "build.sh: installing the Build-Depends of debian/control"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get build-dep -y -qq \
            --no-install-recommends "$stage/src" >/dev/null
    fi
    echo "build.sh: dpkg-buildpackage, log in $stage/build.log"
    # with Debian's tools and python3 only, as Debian's builders have them,
    # whatever else comes first on PATH (a pyenv python3 sees no python3-*)
    if ! (cd "$stage/src" && PATH=/usr/sbin:/usr/bin:/sbin:/bin \
          dpkg-buildpackage -b -us -uc) >"$stage/build.log" 2>&1
    then
        tail -30 "$stage/build.log" >&2
        echo "build.sh: dpkg-buildpackage failed: $stage/build.log" >&2
        exit 1
    fi
    # the two packages; the module's -dbgsym stays in build/deb/
    rm -f "$BUILD"/*.deb
    mv "$stage"/libnginx-mod-http-discovery_*.deb \
       "$stage"/python3-nginx-discovery_*.deb "$BUILD/"
    ls "$BUILD"/*.deb
    # debian/*.lintian-overrides would say why a tag is expected: none is
    lintian --fail-on error,warning "$BUILD"/*.deb
    echo "build.sh: lintian: no errors, no warnings"
}

# shellcheck disable=SC2086
case "${1:-all}" in
    deps) install_packages $PACKAGES ;;
    all)  install_packages $PACKAGES; build_module ;;
    module) build_module ;;
    deb) build_deb ;;
    *) echo "usage: build.sh [deps|module|all|deb]" >&2; exit 2 ;;
esac
