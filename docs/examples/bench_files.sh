#!/bin/sh
# `umbra file send` / `umbra file get` of the largest file a blob holds
# (104 832 000 bytes, PROTOCOL 14.8) beside bare `curl` POST/GET of a blob
# of the same length to the same relay, alternating, in one run on loopback
# (docs/BENCHMARKS.md, "Files"). Needs curl, sqlite3 and python3. curl is
# told not to wait for `100 Continue` (`Expect:`), as umbra does not.
#   docs/examples/bench_files.sh [BIN_DIR]      (default target/release)
# curl needs a bearer token, which umbra keeps only in its encrypted store:
# the script inserts one of its own for alice into the relay's SQLite
# tokens table (the relay stores SHA-256("umbra/v1/relay/token-hash" ||
# token), server/src/auth/tokens.rs). Never do that to a real relay.
set -eu
BIN=${1:-target/release}
RUNS=${RUNS:-3}
SIZE=${SIZE:-104832000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bench-files.XXXXXX")
PORT=${PORT:-17879}
trap 'kill $RELAY 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
mkdir "$WORK/relay"
"$BIN/umbra-relay" --listen 127.0.0.1:$PORT --data-dir "$WORK/relay" \
    --auth-per-ip-per-minute 100000 --auth-per-username-per-minute 100000 \
    --logins-per-username-per-minute 100000 --bundle-fetches-per-minute 100000 \
    --max-blob-bytes-per-account 4294967296 >"$WORK/relay.log" 2>&1 &
RELAY=$!
sleep 1
umask 077
printf 'alice bench password 1\n' >"$WORK/pw-alice"
printf 'bob bench password 1\n' >"$WORK/pw-bob"
A="$BIN/umbra --server http://127.0.0.1:$PORT --data-dir $WORK/alice"
B="$BIN/umbra --server http://127.0.0.1:$PORT --data-dir $WORK/bob"
UMBRA_PASSWORD_FILE="$WORK/pw-alice" $A register alice >/dev/null
UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B register bob >/dev/null
UMBRA_PASSWORD_FILE="$WORK/pw-alice" $A send bob hello >/dev/null
UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B receive >/dev/null

set -- $(python3 -c '
import hashlib, os
t = os.urandom(32)
print(t.hex(), hashlib.sha256(b"umbra/v1/relay/token-hash" + t).hexdigest())')
TOKEN=$1
sqlite3 "$WORK/relay/umbra.db" "INSERT INTO tokens (account_id, token_hash, device_id, expires_at)
  SELECT t.account_id, X'$2', t.device_id, 4102444800 FROM tokens t
  JOIN accounts a ON a.account_id = t.account_id WHERE a.username = 'alice' LIMIT 1;"

head -c "$SIZE" /dev/urandom >"$WORK/file.bin"
BLOB=$(python3 -c "s=$SIZE; print(s + 16 * (s // 65536 + 1))")
head -c "$BLOB" /dev/urandom >"$WORK/blob.bin"
now() { python3 -c 'import time; print(time.monotonic())'; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $(df --output=fstype "$WORK" | tail -n 1); file $SIZE bytes, blob $BLOB bytes"
echo "run | curl POST s | umbra file send s | curl GET s | umbra file get s"
i=1
while [ "$i" -le "$RUNS" ]; do
    t0=$(now)
    curl -sS --fail -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/octet-stream' -H 'Expect:' -T "$WORK/blob.bin" \
        "http://127.0.0.1:$PORT/v1/blobs" >"$WORK/up.json"
    t1=$(now)
    UMBRA_PASSWORD_FILE="$WORK/pw-alice" $A --json file send bob "$WORK/file.bin" \
        --timeout 60 >"$WORK/sent.json"
    t2=$(now)
    ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/up.json")
    t3=$(now)
    curl -sS --fail -o "$WORK/down.bin" "http://127.0.0.1:$PORT/v1/blobs/$ID"
    t4=$(now)
    cmp -s "$WORK/down.bin" "$WORK/blob.bin" || { echo "curl GET: bytes differ"; exit 1; }
    rm -f "$WORK/down.bin"
    FILE=$(UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B --json receive | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get("file"): print(r["file"]["id"])')
    mkdir "$WORK/get-$i"
    t5=$(now)
    UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B --json file get "$FILE" "$WORK/get-$i" >/dev/null
    t6=$(now)
    cmp -s "$WORK/get-$i/file.bin" "$WORK/file.bin" || { echo "umbra file get: bytes differ"; exit 1; }
    rm -rf "$WORK/get-$i"
    echo "$i | $(secs $t0 $t1) | $(secs $t1 $t2) | $(secs $t3 $t4) | $(secs $t5 $t6)"
    i=$((i + 1))
done
# What an umbra command costs besides the transfer (opening the store with
# the password's Argon2id, connecting, logging the session in): `whoami`
# opens the store the same way.
t0=$(now); UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B whoami >/dev/null; t1=$(now)
echo "umbra whoami (store unlock, no transfer): $(secs $t0 $t1) s"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
