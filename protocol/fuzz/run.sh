#!/usr/bin/env bash
# Builds and runs every fuzz target of protocol/fuzz and client-core/fuzz
# for SECONDS each (default 8: the short run .ci/run does), starting from
# the seed corpus build-corpus.py writes from docs/test-vectors/.
#
#   protocol/fuzz/run.sh            # CI's short run, 8 s a target
#   protocol/fuzz/run.sh 600        # the longer run docs/TESTING.md describes
#   protocol/fuzz/run.sh 600 sealed_open pairwise_decrypt   # only these
#
# New inputs a run finds go to a scratch directory, not into the seeds, so
# every run starts from the same corpus. A crash, leak, timeout or
# out-of-memory stops the run with libFuzzer's report and the input in
# <crate>/fuzz/artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run <target> <artifact>     (in that crate's fuzz dir)
# and make it a regression test in the owning crate (docs/TESTING.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-8}"
shift || true
only=("$@")

# libFuzzer limits. malloc: no single allocation a decoder makes comes near
# 64 MiB (the largest input is a 256 KiB frame), so one that does is
# reported as unbounded; rss: 2 GiB for the whole process (libFuzzer's own
# corpus and AddressSanitizer's quarantine reach ~500 MiB in a 2-minute
# run, so a tighter cap would fail long runs for no decoder's fault);
# timeout: an input that takes 10 s is a hang.
fuzz_args=(-rss_limit_mb=2048 -malloc_limit_mb=64 -timeout=10 "-max_total_time=$seconds")

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked"
  exit 1
fi

protocol/fuzz/build-corpus.py --check >/dev/null

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
for crate in protocol/fuzz client-core/fuzz; do
  echo "-- building $crate"
  (cd "$crate" && cargo +nightly fuzz build)
  # The binaries are run directly: `cargo fuzz run` would re-check (and,
  # while the tree changes, rebuild) before every target.
  # Where cargo put them: CARGO_TARGET_DIR if set (relative to the fuzz
  # crate, where the build ran, unless absolute), else the crate's target/.
  target_dir="${CARGO_TARGET_DIR:-target}"
  case "$target_dir" in
    /*) bin="$target_dir/$triple/release" ;;
    *) bin="$crate/$target_dir/$triple/release" ;;
  esac
  for target in $(cd "$crate" && cargo +nightly fuzz list); do
    if [ "${#only[@]}" -gt 0 ] && [[ ! " ${only[*]} " =~ " $target " ]]; then
      continue
    fi
    mkdir -p "$scratch/$target" "$crate/corpus/$target" "$crate/artifacts/$target"
    log="$scratch/$target.log"
    # detect_odr_violation=0: as cargo fuzz run sets it (Rust generics trip it).
    if ASAN_OPTIONS=detect_odr_violation=0 "$bin/$target" "-artifact_prefix=$crate/artifacts/$target/" \
        "${fuzz_args[@]}" "$scratch/$target" "$crate/corpus/$target" >"$log" 2>&1; then
      echo "$target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || tail -n 1 "$log")"
    else
      cat "$log"
      echo "FAIL: fuzz target $target (input saved under $crate/artifacts/$target/)"
      exit 1
    fi
  done
done
