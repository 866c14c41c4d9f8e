#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer targets (fuzz/*.cpp) with ASan and UBSan
# into build/fuzz/, linked with the core `make unit` tests (build/san/core),
# and runs each for FUZZ_SECONDS (default 60), as many side by side as
# there are cores.
#
# Each target starts from a copy of its seeds (fuzz/corpus/<target>/) in
# build/fuzz/corpus-<target>/, so the repository is never written to; what
# the fuzzer finds stays in build/.  Crash inputs are written to
# build/fuzz/artifacts-<target>/ and their path printed.  Exits non-zero
# when a target crashes (or fails to build).
#
#   FUZZ_SECONDS=N     run time per target (default 60)
#   FUZZ_TARGETS="a b" only these targets (default: all)
#   CLANGXX=...        the compiler (default clang++, else clang++-14)
#   FUZZ_ARGS="..."    extra libFuzzer flags, e.g. -jobs or -max_len=8192
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/fuzz
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}

CXX=${CLANGXX:-}
if [ -z "$CXX" ]; then
    if command -v clang++ >/dev/null 2>&1; then
        CXX=clang++
    elif command -v clang++-14 >/dev/null 2>&1; then
        CXX=clang++-14
    else
        echo "fuzz: clang++ not found (libFuzzer needs clang)" >&2
        exit 1
    fi
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CXXFLAGS="-std=c++17 -g1 -O1 -fno-omit-frame-pointer -I$ROOT/src/core -I$ROOT/src"

if [ -n "${FUZZ_TARGETS:-}" ]; then
    TARGETS=$FUZZ_TARGETS
else
    TARGETS=$(cd "$ROOT/fuzz" && ls -- *.cpp | sed 's/\.cpp$//')
fi

mkdir -p "$OUT"

# The core as `make unit` links it (the Makefile's san-core: ASan, UBSan
# and libFuzzer's coverage), built once for both
make -C "$ROOT" -s -j"$(nproc)" san-core SAN_CXX="$CXX"
CORE_OBJS=()
for src in "$ROOT"/src/core/*.cpp; do
    CORE_OBJS+=("$ROOT/build/san/core/$(basename "${src%.cpp}").o")
done

# the targets side by side, as many at a time as there are cores
build_target() {
    local t=$1 bin=$OUT/$1
    if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/fuzz" -maxdepth 1 \( -name '*.cpp' -o -name '*.hpp' \) -newer "$bin" | head -1)" ] \
        || [ -n "$(find "${CORE_OBJS[@]}" -newer "$bin" | head -1)" ]
    then
        echo "fuzz: building $t"
        $CXX $CXXFLAGS $SAN -fsanitize=fuzzer "$ROOT/fuzz/$t.cpp" \
            "${CORE_OBJS[@]}" -o "$bin.tmp" -lyajl && mv "$bin.tmp" "$bin" \
            || touch "$bin.unbuilt"
    fi
}

for t in $TARGETS; do
    if [ ! -f "$ROOT/fuzz/$t.cpp" ]; then
        echo "fuzz: no target fuzz/$t.cpp" >&2
        exit 1
    fi
done
# runs `$1 TARGET` for every target, as many at a time as there are
# cores, and waits for all of them
each_target() {
    local t
    for t in $TARGETS; do
        while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do
            wait -n || true
        done
        "$1" "$t" &
    done
    wait
}

rm -f "$OUT"/*.unbuilt
each_target build_target
if ls "$OUT"/*.unbuilt >/dev/null 2>&1; then
    echo "fuzz: failed to build: $(cd "$OUT" && ls -- *.unbuilt | sed 's/\.unbuilt$//' | tr '\n' ' ')" >&2
    exit 1
fi

# seeds written by a tool, so they always match the snapshot encoding
seeds=$OUT/snapshot_seeds
if [ ! -x "$seeds" ] || [ "$ROOT/fuzz/tools/snapshot_seeds.cpp" -nt "$seeds" ] \
    || [ "$ROOT/fuzz/samples.hpp" -nt "$seeds" ] \
    || [ -n "$(find "${CORE_OBJS[@]}" -newer "$seeds" | head -1)" ]
then
    $CXX $CXXFLAGS $SAN -fsanitize=fuzzer-no-link \
        "$ROOT/fuzz/tools/snapshot_seeds.cpp" "${CORE_OBJS[@]}" -o "$seeds" \
        -lyajl
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# one target's run; its report goes to $OUT/TARGET.result, printed in
# order once all have run
run_target() {
    local t=$1 corpus artifacts log dict start end rc execs elapsed units
    corpus=$OUT/corpus-$t
    artifacts=$OUT/artifacts-$t
    log=$OUT/$t.log
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$ROOT/fuzz/corpus/$t" ]; then
        cp -R "$ROOT/fuzz/corpus/$t/." "$corpus/"
    fi
    if [ "$t" = snapshot ]; then
        "$seeds" "$corpus"
    fi

    dict=()
    if [ -f "$ROOT/fuzz/$t.dict" ]; then
        dict=(-dict="$ROOT/fuzz/$t.dict")
    fi

    start=$(date +%s.%N)
    set +e
    # shellcheck disable=SC2086
    "$OUT/$t" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        -timeout=25 -artifact_prefix="$artifacts/" "${dict[@]}" \
        ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    end=$(date +%s.%N)

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    units=$(find "$corpus" -type f | wc -l)

    exec >"$OUT/$t.result"
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz: %-16s ok      %10s executions in %6s s, corpus %s\n' \
            "$t" "${execs:-?}" "$elapsed" "$units"
    else
        printf 'fuzz: %-16s FAILED  (exit %s) %s executions in %s s\n' \
            "$t" "$rc" "${execs:-?}" "$elapsed"
        # the report and the input that caused it
        grep -E 'ERROR: |runtime error|fuzz property violated|SUMMARY' "$log" \
            | head -5 | sed 's/^/    /'
        grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/    /'
        echo "    full log: $log"
        echo "    reproduce: $OUT/$t <crash-file>"
        touch "$OUT/$t.failed"
    fi
}

rm -f "$OUT"/*.result "$OUT"/*.failed
each_target run_target
failed=0
for t in $TARGETS; do
    cat "$OUT/$t.result" 2>/dev/null || echo "fuzz: $t did not report"
    [ -e "$OUT/$t.failed" ] || [ ! -e "$OUT/$t.result" ] && failed=1
done
exit $failed
