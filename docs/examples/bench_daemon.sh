#!/bin/sh
# Cold `umbra send` beside `umbra send` through a running daemon, and the
# JSON-RPC `send` round trip over the socket, in one run on loopback
# (docs/BENCHMARKS.md, "Daemon"). Needs hyperfine and python3.
#   docs/examples/bench_daemon.sh [BIN_DIR]      (default target/release)
# TMPDIR=/dev/shm puts every data directory on tmpfs; RELAY_TMP=/dev/shm
# only the relay's (how much of a send is the relay's fsync).
set -eu
BIN=${1:-target/release}
RUNS=${RUNS:-30}
RPC_RUNS=${RPC_RUNS:-500}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bench.XXXXXX")
RELAY_DIR=$(mktemp -d "${RELAY_TMP:-$WORK}/umbra-relay.XXXXXX")
PORT=${PORT:-17878}
trap 'kill $DAEMON $RELAY 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK" "$RELAY_DIR"' EXIT INT TERM
DAEMON=
"$BIN/umbra-relay" --listen 127.0.0.1:$PORT --data-dir "$RELAY_DIR" \
    --auth-per-ip-per-minute 100000 --auth-per-username-per-minute 100000 \
    --bundle-fetches-per-minute 100000 --max-queue-len 100000 >"$WORK/relay.log" 2>&1 &
RELAY=$!
sleep 1
umask 077
printf 'alice bench password 1\n' >"$WORK/pw-alice"
printf 'bob bench password 1\n' >"$WORK/pw-bob"
A="$BIN/umbra --server http://127.0.0.1:$PORT --data-dir $WORK/alice"
B="$BIN/umbra --server http://127.0.0.1:$PORT --data-dir $WORK/bob"
UMBRA_PASSWORD_FILE="$WORK/pw-alice" $A register alice >/dev/null
UMBRA_PASSWORD_FILE="$WORK/pw-bob" $B register bob >/dev/null
# The first message sets up the session; only steady-state sends are timed.
UMBRA_PASSWORD_FILE="$WORK/pw-alice" $A send bob hello >/dev/null

echo "machine: nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $(df --output=fstype "$WORK" | tail -n 1) (clients), $(df --output=fstype "$RELAY_DIR" | tail -n 1) (relay)"
export UMBRA_PASSWORD_FILE="$WORK/pw-alice"
hyperfine --warmup 2 --runs "$RUNS" -N --export-markdown "$WORK/cold.md" \
    -n 'cold umbra send' "$A send bob cold"
"$BIN/umbra" --server http://127.0.0.1:$PORT --data-dir "$WORK/alice" daemon 2>"$WORK/daemon.log" &
DAEMON=$!
until grep -qs 'serving on' "$WORK/daemon.log"; do sleep 0.1; done
unset UMBRA_PASSWORD_FILE # through the daemon no password is needed
hyperfine --warmup 2 --runs "$RUNS" -N --export-markdown "$WORK/daemon.md" \
    -n 'umbra send through the daemon' "$A send bob warm"
python3 - "$WORK/alice/umbra-daemon.sock" "$RPC_RUNS" <<'PY'
import json, socket, statistics, sys, time
sock = socket.socket(socket.AF_UNIX); sock.connect(sys.argv[1])
reader = sock.makefile("r")
def measure(method, params_of):
    times = []
    for i in range(int(sys.argv[2])):
        line = json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                           "params": params_of(i)}) + "\n"
        start = time.perf_counter()
        sock.sendall(line.encode())
        while True:
            answer = json.loads(reader.readline())
            if answer.get("id") == i:
                break
        times.append((time.perf_counter() - start) * 1000)
        assert "result" in answer, answer
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
    print(f"JSON-RPC {method} over the socket, {len(times)} calls: p50 {q(0.5):.2f} ms, "
          f"p90 {q(0.9):.2f} ms, p99 {q(0.99):.2f} ms, mean {statistics.mean(times):.2f} ms")
# whoami touches neither disk nor relay: the cost of the daemon and framing.
measure("whoami", lambda i: {})
measure("send", lambda i: {"to": "bob", "message": f"rpc {i}"})
PY
cat "$WORK/cold.md"; tail -n 1 "$WORK/daemon.md"
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
# FSYNCS=N: then N more JSON-RPC sends with the daemon under strace,
# counting its fsync/fdatasync calls per send (how many syncs a send waits
# for, whatever the machine's load; strace slows the daemon, so nothing
# above is timed with it).
if [ "${FSYNCS:-0}" -gt 0 ]; then
    kill $DAEMON; wait $DAEMON 2>/dev/null || true
    rm -f "$WORK/daemon.log"
    UMBRA_PASSWORD_FILE="$WORK/pw-alice" strace -f -qq -e trace=fsync,fdatasync -o "$WORK/strace.txt" \
        "$BIN/umbra" --server http://127.0.0.1:$PORT --data-dir "$WORK/alice" daemon 2>"$WORK/daemon.log" &
    DAEMON=$!
    until grep -qs 'serving on' "$WORK/daemon.log"; do
        kill -0 $DAEMON 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
        sleep 0.1
    done
    : >"$WORK/strace.txt"
    python3 - "$WORK/alice/umbra-daemon.sock" "$FSYNCS" <<'PY'
import json, socket, sys
sock = socket.socket(socket.AF_UNIX); sock.connect(sys.argv[1])
reader = sock.makefile("r")
for i in range(int(sys.argv[2])):
    sock.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": "send",
                              "params": {"to": "bob", "message": f"counted {i}"}}) + "\n").encode())
    while json.loads(reader.readline()).get("id") != i:
        pass
PY
    syncs=$(grep -c 'sync(' "$WORK/strace.txt" || true)
    # strace leaves its tracee running when it is stopped: stop both.
    kill $(pgrep -P $DAEMON) $DAEMON 2>/dev/null || true
    echo "daemon syncs during $FSYNCS JSON-RPC sends: $syncs ($(python3 -c "print(round($syncs / $FSYNCS, 2))") per send)"
fi
