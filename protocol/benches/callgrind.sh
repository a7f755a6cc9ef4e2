#!/usr/bin/env bash
# Instruction counts (callgrind) of every operation in benches/protocol.rs,
# for umbra, vodozemac and bare ChaCha20-Poly1305, with the umbra/vodozemac
# ratio and the primitive operations each one performed. Counts repeat on
# any machine however loaded; see docs/BENCHMARKS.md for why and for the
# floor each count is compared with.
#
# Usage: protocol/benches/callgrind.sh [FILTER]
#   FILTER: run only the operations whose name contains it.
#   ITERS=N (environment) overrides the per-operation iteration counts.
#   KEEP=DIR keeps the raw callgrind.out files there (for callgrind_annotate).
set -euo pipefail

cd "$(dirname "$0")/../.."
filter="${1:-}"

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

# Build (bench profile: release) and find the harness binary.
bin=$(cargo bench -p umbra-protocol --bench callgrind --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "callgrind":
        print(m["executable"])')
[ -x "$bin" ] || { echo "could not build the callgrind harness" >&2; exit 1; }

out="${KEEP:-$(mktemp -d)}"
mkdir -p "$out"

iterations() {
    if [ -n "${ITERS:-}" ]; then echo "$ITERS"; return; fi
    case "$1" in
        attachment_8MiB/*) echo 1 ;;
        safety_number/*) echo 2 ;;
        key_agreement*|dh_ratchet*|sealed*) echo 10 ;;
        *64KiB*) echo 20 ;;
        *) echo 100 ;;
    esac
}

results="$out/results.tsv"
: >"$results"
for op in $("$bin" | tail -n +2); do
    case "$op" in *"$filter"*) ;; *) continue ;; esac
    n=$(iterations "$op")
    # Twice, with N and 2N runs: callgrind counts calls even while
    # collection is off (set-up, warm-up), so per-run figures are the
    # difference of the two profiles divided by N. Both make the same
    # number of batched inputs (2N + 1), so set-up calls cancel too.
    for k in 1 2; do
        file="$out/$(echo "$op" | tr '/' '.').$k.out"
        valgrind --tool=callgrind --callgrind-out-file="$file" \
            --collect-atstart=no --toggle-collect=umbra_callgrind_measure \
            "$bin" "$op" $((n * k)) $((2 * n + 1)) >/dev/null 2>"$file.log" \
            || { echo "valgrind failed on $op, see $file.log" >&2; exit 1; }
    done
    printf '%s\t%s\t%s\t%s\n' "$op" "$n" "${file%.2.out}.1.out" "$file" >>"$results"
done

python3 "$(dirname "$0")/callgrind_report.py" "$results"
[ -n "${KEEP:-}" ] || rm -rf "$out"
