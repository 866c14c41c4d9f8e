#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer targets (fuzz/*.cpp) with ASan and UBSan
# into build/fuzz/ and runs each for FUZZ_SECONDS (default 60).
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
CXXFLAGS="-std=c++17 -g -O1 -fno-omit-frame-pointer -I$ROOT/src/core -I$ROOT/src"

if [ -n "${FUZZ_TARGETS:-}" ]; then
    TARGETS=$FUZZ_TARGETS
else
    TARGETS=$(cd "$ROOT/fuzz" && ls -- *.cpp | sed 's/\.cpp$//')
fi

mkdir -p "$OUT/obj"

# The core is compiled once (with coverage, -fsanitize=fuzzer-no-link) and
# linked into every target; an object is rebuilt when its source or any
# header is newer.
newest_header=$(ls -t "$ROOT"/src/core/*.hpp "$ROOT"/src/discovery_core.h | head -1)
stale=()
for src in "$ROOT"/src/core/*.cpp; do
    obj=$OUT/obj/$(basename "${src%.cpp}").o
    if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]
    then
        stale+=("$src")
    fi
done
# objects of sources that no longer exist must not be linked
for obj in "$OUT"/obj/*.o; do
    [ -e "$obj" ] || continue
    [ -e "$ROOT/src/core/$(basename "${obj%.o}").cpp" ] || rm -f "$obj"
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "fuzz: compiling ${#stale[@]} core sources with $CXX"
    printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c \
        'o="$1/obj/$(basename "$2" .cpp).o"; '"$CXX $CXXFLAGS $SAN"' -fsanitize=fuzzer-no-link -c "$2" -o "$o.$$.tmp" && mv "$o.$$.tmp" "$o"' \
        sh "$OUT" {}
fi
CORE_OBJS=("$OUT"/obj/*.o)

for t in $TARGETS; do
    if [ ! -f "$ROOT/fuzz/$t.cpp" ]; then
        echo "fuzz: no target fuzz/$t.cpp" >&2
        exit 1
    fi
    bin=$OUT/$t
    if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/fuzz" -maxdepth 1 \( -name '*.cpp' -o -name '*.hpp' \) -newer "$bin" | head -1)" ] \
        || [ -n "$(find "${CORE_OBJS[@]}" -newer "$bin" | head -1)" ]
    then
        echo "fuzz: building $t"
        $CXX $CXXFLAGS $SAN -fsanitize=fuzzer "$ROOT/fuzz/$t.cpp" \
            "${CORE_OBJS[@]}" -o "$bin" -lyajl
    fi
done

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

failed=0
for t in $TARGETS; do
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

    if [ "$rc" -eq 0 ]; then
        printf 'fuzz: %-16s ok      %10s executions in %6s s, corpus %s\n' \
            "$t" "${execs:-?}" "$elapsed" "$units"
    else
        failed=1
        printf 'fuzz: %-16s FAILED  (exit %s) %s executions in %s s\n' \
            "$t" "$rc" "${execs:-?}" "$elapsed"
        # the report and the input that caused it
        grep -E 'ERROR: |runtime error|fuzz property violated|SUMMARY' "$log" \
            | head -5 | sed 's/^/    /'
        grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/    /'
        echo "    full log: $log"
        echo "    reproduce: $OUT/$t <crash-file>"
    fi
done

exit $failed
