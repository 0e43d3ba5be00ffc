#!/usr/bin/env bash
# Builds every fuzz target, seeds the corpora, replays fuzz/regressions/, fuzzes each target
# for SECONDS_PER_TARGET (default 10) and prints one line per target. Exits non-zero if any
# target crashes (the input is left in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment:
#   FUZZ_BUILD=cargo-fuzz  build with `cargo fuzz build` (default; installs cargo-fuzz if
#                          missing, which takes about two minutes);
#   FUZZ_BUILD=direct      build with plain cargo and the same flags cargo-fuzz passes (no
#                          cargo-fuzz needed: what CI uses);
#   FUZZ_SANITIZER=none    or address (ASan needs nightly flags: RUSTC_BOOTSTRAP is set);
#   FUZZ_CODEGEN_UNITS=16  codegen units (cargo-fuzz's default of 1 builds ~2x slower);
#   FUZZ_LOG_DIR=fuzz/logs where each target's libFuzzer output goes;
#   FUZZ_OPT_LEVEL=3       optimization level (1 builds faster, runs slower: CI smoke runs);
#   FUZZ_JOBS=1            targets fuzzed at the same time (long runs on a multi-core box);
#   FUZZ_NICE=0            niceness of the fuzzers (19 keeps an interactive machine usable);
#   FUZZ_PLAIN_CRYPTO=1    build the crypto primitive crates without coverage (0: every
#                          crate instrumented; see rustc-uninstrumented.sh);
#   CARGO_TARGET_DIR       honoured (default fuzz/target).
#
# Stable Rust works: libFuzzer needs no nightly feature with FUZZ_SANITIZER=none, and
# RUSTC_BOOTSTRAP=1 covers cargo-fuzz's and ASan's nightly-only flags.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

secs="${1:-10}"
if [ $# -gt 0 ]; then shift; fi
all_targets=(invitation announcement block host_hello ctrl_hello session_body app_info
  protocol_json tls_capture tls_chain handshake session_sequence)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

build="${FUZZ_BUILD:-cargo-fuzz}"
sanitizer="${FUZZ_SANITIZER:-none}"
cgu="${FUZZ_CODEGEN_UNITS:-16}"
logs="${FUZZ_LOG_DIR:-$here/logs}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-$here/target}/$triple/release"
export RUSTC_BOOTSTRAP=1
if [ -n "${FUZZ_OPT_LEVEL:-}" ]; then export CARGO_PROFILE_RELEASE_OPT_LEVEL="$FUZZ_OPT_LEVEL"; fi
# The crypto primitives without coverage instrumentation (the wrapper's comment says why). The
# extra `--cfg` is in RUSTFLAGS so that cargo's fingerprints see the choice: a target dir built
# the other way is rebuilt instead of silently mixing the two.
plain_crypto="${FUZZ_PLAIN_CRYPTO:-1}"
extra_flags=""
if [ "$plain_crypto" = 1 ]; then
  export RUSTC_WRAPPER="$here/rustc-uninstrumented.sh"
  extra_flags="--cfg xrcp_fuzz_plain_crypto"
fi

# Largest input per target: block-sized inputs for the block decoders, a little above the
# decoders' own limits for the invitation (4096) and the announcement (2048).
max_len() {
  case "$1" in
    block | host_hello | ctrl_hello) echo 16500 ;;
    invitation) echo 4200 ;;
    announcement) echo 2100 ;;
    *) echo 4096 ;;
  esac
}

start=$(date +%s)
case "$build" in
  cargo-fuzz)
    if ! cargo fuzz --version >/dev/null 2>&1; then
      echo "installing cargo-fuzz" >&2
      cargo install cargo-fuzz --locked
    fi
    RUSTFLAGS="${RUSTFLAGS:-} $extra_flags" cargo fuzz build -O -s "$sanitizer" --codegen-units "$cgu"
    ;;
  direct)
    flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
    flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
    flags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
    flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
    flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
    flags+=" -Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions"
    flags+=" -Ccodegen-units=$cgu $extra_flags"
    case "$sanitizer" in
      none) ;;
      address) flags+=" -Zsanitizer=address" ;;
      *) echo "FUZZ_BUILD=direct supports FUZZ_SANITIZER=none or address" >&2; exit 2 ;;
    esac
    # --target keeps the instrumentation away from build scripts and proc macros.
    RUSTFLAGS="$flags" cargo build --release --target "$triple" --bins \
      --config 'profile.release.debug="line-tables-only"'
    ;;
  *) echo "FUZZ_BUILD must be cargo-fuzz or direct" >&2; exit 2 ;;
esac
built=$(date +%s)
echo "build: $((built - start)) s ($build, sanitizer $sanitizer, codegen units $cgu, opt-level ${FUZZ_OPT_LEVEL:-3}, plain crypto $plain_crypto)"

"$here/seed.sh" "$here/corpus" >/dev/null

mkdir -p "$logs"
jobs_max="${FUZZ_JOBS:-1}"
nice_level="${FUZZ_NICE:-0}"

# Fuzzes one target and writes its summary line to $logs/<target>.summary (first line) and the
# crash excerpt after it; returns libFuzzer's exit code.
fuzz_one() {
  local t="$1" log="$logs/$1.log" summary="$logs/$1.summary" rc
  mkdir -p "corpus/$t" "artifacts/$t"
  local dirs=("corpus/$t")
  if [ -d "regressions/$t" ]; then dirs+=("regressions/$t"); fi
  set +e
  nice -n "$nice_level" "$bin_dir/$t" "${dirs[@]}" -max_total_time="$secs" \
    -max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  local execs rate last cov ft corp status
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$rc" -eq 0 ]; then status=ok; else status="CRASH (exit $rc, log $log)"; fi
  printf '%-17s execs=%-9s exec/s=%-7s cov=%-5s ft=%-6s corpus=%-5s %s\n' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status" >"$summary"
  if [ "$rc" -ne 0 ]; then
    grep -E "panicked at|assertion|Test unit written|ERROR: libFuzzer" "$log" | head -8 |
      sed 's/^/    /' >>"$summary"
  fi
  return "$rc"
}

failed=()
pending=("${targets[@]}")
declare -A running=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  while [ ${#pending[@]} -gt 0 ] && [ ${#running[@]} -lt "$jobs_max" ]; do
    fuzz_one "${pending[0]}" &
    running[$!]="${pending[0]}"
    pending=("${pending[@]:1}")
  done
  set +e
  wait -n -p done_pid "${!running[@]}"
  rc=$?
  set -e
  t="${running[$done_pid]}"
  unset "running[$done_pid]"
  cat "$logs/$t.summary"
  if [ "$rc" -ne 0 ]; then failed+=("$t"); fi
done
echo "fuzzing: $(($(date +%s) - built)) s, ${#targets[@]} targets x ${secs} s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]}" >&2
  exit 1
fi
