#!/usr/bin/env bash
# Seed the corpora and fuzz hydra's readers with cargo-fuzz (libFuzzer) on the stable
# toolchain (no sanitizer). See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS] [TARGET ...]   seed, build, then run each target SECONDS (default 120)
#   fuzz/run.sh seed                     only (re)seed fuzz/corpus/<target>/
#   fuzz/run.sh build                    only build the targets
#   fuzz/run.sh summary [SECONDS]        the results table again, from the last run's logs
#   fuzz/run.sh repro TARGET FILE        run one input (a crash-*, timeout-*, oom-* artifact)
#                                        once, with RUST_BACKTRACE=1, to see the panic and where
#
# Targets: weights npy image list_file config (default: all). Runs at `nice -n 19`.
# Logs go to fuzz/artifacts/logs/<target>.log, crashes / timeouts / out-of-memory inputs to
# fuzz/artifacts/<target>/, new corpus entries to fuzz/corpus/<target>/ (all git-ignored).
# A summary table is printed at the end and kept in fuzz/artifacts/logs/summary.md.
#
# Environment: FUZZ_MAX_LEN (65536), FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (10 s per input),
# FUZZ_EXTRA (more libFuzzer flags, e.g. "-jobs=2 -workers=2"), HYDRA_FUZZ_STRICT=1 (panics
# that hydra contains around third-party decoders count as findings too; see src/lib.rs).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1

ALL_TARGETS=(weights npy image list_file config)
MAX_LEN=${FUZZ_MAX_LEN:-65536}
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
EXTRA=${FUZZ_EXTRA:-}
NICE=(nice -n 19)
# A panic found while fuzzing is printed with its backtrace (file:line of hydra's code).
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
CARGO_FUZZ=("${NICE[@]}" cargo fuzz)
FLAGS=(--sanitizer none --release)

die() { echo "run.sh: $*" >&2; exit 1; }

# Copy FILE into DIR; a file longer than the fuzzer's max length is cut to it (libFuzzer
# would cut it on loading anyway), so the corpus stays small.
seed_file() {
    local dir=$1 file=$2 name
    [ -f "$file" ] || return 0
    name=$(basename "$file")
    if [ "$(stat -c %s "$file")" -gt "$MAX_LEN" ]; then
        head -c "$MAX_LEN" "$file" > "$dir/head-$name"
    else
        cp "$file" "$dir/$name"
    fi
}

seed() {
    local c=fuzz/corpus f
    mkdir -p "$c"/{weights,npy,image,list_file,config}
    # Generated small valid files (safetensors, burnpack, checkpoint, .npy, PNG, JPEG).
    if command -v python3 > /dev/null; then
        python3 fuzz/make_seeds.py "$c" || echo "run.sh: make_seeds.py failed; fixture seeds only" >&2
    else
        echo "run.sh: no python3: fixture seeds only (no JPEG, safetensors or burnpack seed)" >&2
    fi
    # Weights: the small PyTorch fixtures whole, the large ones' first MAX_LEN bytes.
    for f in fixtures/pytorch/*.pth fixtures/pytorch/*.ckpt fixtures/pytorch/*.safetensors; do
        seed_file "$c/weights" "$f"
    done
    for f in fixtures/mtan/train/*/0.npy fixtures/samples/*/cmap_*.npy fixtures/pytorch/*.npy; do
        [ -f "$f" ] || continue
        # mtan/train/<kind>/0.npy: one seed per kind
        case $f in fixtures/mtan/*) cp "$f" "$c/npy/mtan-$(basename "$(dirname "$f")")-0.npy" ;; *) seed_file "$c/npy" "$f" ;; esac
    done
    for f in fixtures/samples/*/*.png fixtures/samples/*/*.jpg; do
        seed_file "$c/image" "$f"
    done
    for f in fixtures/samples/*/*_list.txt; do
        [ -f "$f" ] || continue
        cp "$f" "$c/list_file/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    # Hand-made list: BOM, comments, blank and CRLF lines, `-` fields, whitespace split.
    printf '\xef\xbb\xbf# rgb\tmask\tdepth\n\nrgb/1.png\tmasks/1.png\tdepth/1.png\r\nrgb/2.jpg\t-\t-\n  rgb/3.png masks/3.png depth/3.png\n' \
        > "$c/list_file/handmade.txt"
    for f in configs/*.toml; do
        [ -f "$f" ] || continue
        cp "$f" "$c/config/"
    done
    echo "run.sh: corpus seeded: $(for t in "${ALL_TARGETS[@]}"; do printf '%s %s files; ' "$t" "$(ls "$c/$t" | wc -l)"; done)"
}

build() {
    command -v cargo-fuzz > /dev/null || die "cargo-fuzz is missing: nice -n 19 cargo install cargo-fuzz --locked"
    "${CARGO_FUZZ[@]}" build "${FLAGS[@]}" || die "build failed"
}

dict_for() {
    [ -f "fuzz/dicts/$1.dict" ] && echo "-dict=fuzz/dicts/$1.dict"
}

summary_row() {
    # target seconds log rc: one table row from a libFuzzer log (plain or -fork mode)
    local t=$1 secs=$2 log=$3 rc=$4 execs eps cov ft corp rss finding art last ran
    stat() { sed -n "s/^stat::$1:[[:space:]]*\([0-9]*\).*/\1/p" "$log" | tail -1; }
    execs=$(stat number_of_executed_units)
    eps=$(stat average_exec_per_sec)
    rss=$(stat peak_rss_mb)
    last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9/a-zA-Z]*\).*/\1/p' <<< "$last")
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<< "$last")
    [ -n "$rss" ] || rss=$(sed -n 's/.* rss: \([0-9]*\)Mb.*/\1/p' <<< "$last")
    ran=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p;s/^INFO: exiting: [0-9]* time: \([0-9]*\)s.*/\1/p' "$log" | tail -1)
    if [ -z "$ran" ] && [ -n "$execs" ] && [ -n "$eps" ] && [ "$eps" -gt 0 ]; then ran="~$((execs / eps))"; fi
    [ -n "$eps" ] || { [ -n "$ran" ] && [ "${ran#\~}" -gt 0 ] && eps=$((execs / ${ran#\~})); }
    art=$(grep -oE '(Test unit written to|CRASH: [^ ]* saved|saved as) [^ ]*' "$log" | sed 's/.* //' | sort -u | tr '\n' ' ')
    local forked
    forked=$(sed -n 's/.*oom\/timeout\/crash: \([0-9]*\/[0-9]*\/[0-9]*\).*/\1/p' "$log" | tail -1)
    if [ -n "$forked" ] && [ "$forked" != "0/0/0" ]; then
        finding="oom/timeout/crash $forked; see fuzz/artifacts/$t/"
    elif [ "$rc" = 0 ]; then
        finding="none"
    else
        finding=$(grep -m1 -oE 'panicked at [^ ]*|ERROR: libFuzzer: [a-z-]+( after [0-9]+ seconds)?|memory allocation of [0-9]+ bytes failed' "$log" | head -1)
        finding="${finding:-exit $rc}${art:+ ($art)}"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "${ran:-$secs}" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$finding"
}

fuzz() {
    local secs=$1; shift
    local logs=fuzz/artifacts/logs
    mkdir -p "$logs"
    local table="| target | seconds | executions | exec/s | cov (edges) | ft (features) | corpus (files/size) | peak RSS MB | findings |
|---|---|---|---|---|---|---|---|---|"
    for t in "$@"; do
        local log="$logs/$t.log"
        echo "run.sh: fuzzing $t for $secs s (log: $log)"
        # shellcheck disable=SC2046,SC2086
        "${CARGO_FUZZ[@]}" run "${FLAGS[@]}" "$t" -- \
            -max_total_time="$secs" -max_len="$MAX_LEN" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" \
            -print_final_stats=1 $(dict_for "$t") $EXTRA > "$log" 2>&1
        local rc=$?
        local row
        row=$(summary_row "$t" "$secs" "$log" "$rc")
        echo "$row"
        table+=$'\n'"$row"
    done
    {
        echo "Fuzzing run of $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(rustc --version)"
        echo
        echo "$table"
    } | tee "$logs/summary.md"
}

case ${1:-} in
    seed) seed ;;
    build) build ;;
    summary)
        # Rebuild the table from the logs of the last run: fuzz/run.sh summary SECONDS
        for t in "${ALL_TARGETS[@]}"; do
            log=fuzz/artifacts/logs/$t.log
            [ -f "$log" ] || continue
            rc=0
            grep -qE '^Done [0-9]+ runs' "$log" || rc=1
            summary_row "$t" "${2:-?}" "$log" "$rc"
        done
        ;;
    -h | --help) sed -n '2,19p' "$here/$(basename "$0")" ;;
    repro)
        [ $# -eq 3 ] || die "usage: fuzz/run.sh repro TARGET FILE"
        RUST_BACKTRACE=1 "${CARGO_FUZZ[@]}" run "${FLAGS[@]}" "$2" "$3" -- -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT"
        ;;
    *)
        secs=120
        if [[ ${1:-} =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
        targets=("$@")
        [ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
        for t in "${targets[@]}"; do
            [ -f "fuzz/fuzz_targets/$t.rs" ] || die "no target $t (have: ${ALL_TARGETS[*]})"
        done
        seed
        build
        fuzz "$secs" "${targets[@]}"
        ;;
esac
