#!/bin/sh
# Interop of the spec-only Python client with the real relay and the Rust CLI.
# Needs target/debug/umbra-relay and target/debug/umbra (cargo build -p umbra-relay -p umbra-cli).
set -e
HERE=$(cd "$(dirname "$0")" && pwd); PY=${PYTHON:-python3}; BIN=${UMBRA_BIN:-$HERE/../../target/debug}
W=$(mktemp -d "${TMPDIR:-/tmp}/umbra-interop.XXXXXX"); cd "$W"; cp "$HERE"/*.py .
"$BIN/umbra-relay" --listen 127.0.0.1:0 --data-dir ./relay > relay.out 2> relay.err & RELAY=$!
trap 'kill $RELAY 2>/dev/null' EXIT
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q listening relay.out 2>/dev/null && break; sleep 1; done
S=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' relay.out | head -1); echo "relay at $S (work dir $W)"
printf 'bob password tangerine 41' > bob.pw; chmod 600 bob.pw
U() { UMBRA_PASSWORD_FILE=bob.pw "$BIN/umbra" --server "$S" --data-dir ./bob "$@"; }
U register bob
# issue 14: client-core starts only hybrid sessions and refuses type 0x01 (PROTOCOL 12.5), so the
# stranger's sends to the Rust client are hybrid (RUST_HYBRID=0 replays the classical ones, refused)
RUST_HYBRID=${RUST_HYBRID:-1}
[ "$RUST_HYBRID" = 1 ] && TO_RUST= || TO_RUST="CLASSICAL=1"
env $TO_RUST $PY client.py "$S" alice "alice pw" send bob "python -> rust pre-key message"
U receive --timeout 10 | tee bob1.txt; grep -q "python -> rust pre-key message" bob1.txt
U send alice "rust -> python reply"
$PY client.py "$S" alice "alice pw" receive 4 | tee alice1.txt; grep -q '"rust -> python reply"' alice1.txt
PEER=$($PY -c "import json;print(list(json.load(open('state-alice.json'))['sessions'])[0])")
$PY client.py "$S" alice "alice pw" reply "$PEER" "python -> rust after a DH step"
U receive --timeout 10 | tee bob2.txt; grep -q "python -> rust after a DH step" bob2.txt
# 4.13 across the two implementations: bursts until each side's KEM epoch 1 completes and is mixed.
# alice's 11 messages carry her 10 key chunks; bob then encapsulates and his 22 messages carry the 9
# ciphertext chunks (interleaved with his own key's); alice's next send steps with pq_epoch 1, which
# opens at bob only if he mixed the secret she decapsulated; her 20 messages carry her ciphertext
# for bob's key, so bob's next DH step is hybrid (pq_epoch 1) and opens here only with her secret.
$PY client.py "$S" alice "alice pw" reply "$PEER" "pq burst a" 11 | tail -1
U receive --timeout 5 > pq1.txt; [ "$(grep -c 'pq burst a' pq1.txt)" = 11 ] || { cat pq1.txt; echo "FAIL pq burst a"; exit 1; }
for i in $(seq 1 22); do U send alice "pq burst b $i" > /dev/null; done
$PY client.py "$S" alice "alice pw" receive 4 > pq2.txt; [ "$(grep -c "pq burst b" pq2.txt)" = 22 ] || { cat pq2.txt; echo "FAIL pq burst b"; exit 1; }
grep "received from" pq2.txt | tail -1 | grep -q "own_ready=True" || { cat pq2.txt; echo "FAIL alice holds no decapsulated secret"; exit 1; }
$PY client.py "$S" alice "alice pw" reply "$PEER" "pq burst c" 20 | tee pq3.txt | sed -n '1p;$p'
head -1 pq3.txt | grep -q "header pq_epoch 1 " || { echo "FAIL alice's step was not hybrid"; exit 1; }
U receive --timeout 5 > pq4.txt; [ "$(grep -c "pq burst c" pq4.txt)" = 20 ] || { cat pq4.txt; echo "FAIL rust did not open the hybrid step"; exit 1; }
echo "ok   the Rust client opened the stranger's hybrid ratchet step (pq_epoch 1, 4.13)"
# bob's receipts for burst c took his DH step before he held all nine chunks, so it was classical;
# once alice has that chain and answers it, bob's next send steps with his secret
$PY client.py "$S" alice "alice pw" receive 3 > pq5.txt
$PY client.py "$S" alice "alice pw" reply "$PEER" "pq kick" > /dev/null
U receive --timeout 5 > pq6.txt; grep -q "pq kick" pq6.txt || { cat pq6.txt; echo "FAIL pq kick"; exit 1; }
U send alice "pq after bob's step" > /dev/null
$PY client.py "$S" alice "alice pw" receive 3 | tee pq7.txt | grep "received from"
grep -q "plain message, header pq_epoch 1 " pq7.txt && grep -q "pq after bob's step" pq7.txt \
  && echo "ok   the stranger opened the Rust client's hybrid ratchet step (pq_epoch 1, 4.13)" || { cat pq7.txt; echo "FAIL python did not open rust's hybrid step"; exit 1; }
$PY client.py "$S" alice "alice pw" safety "$PEER" > sn.txt; U verify alice | tee -a sn.txt
grep -qF "$(head -1 sn.txt)" sn.txt && echo "safety numbers agree"
# issue 14, between two stranger clients over the real relay (3.9, 3.10, 4.11 type 0x05, 9.7/9.8 tags
# 29-31, 19-20): signed KEM prekeys uploaded, FetchHybridBundle serves a one-time one once, then the
# last-resort one; both pre-key messages open; a bundle with no KEM prekey is refused by the initiator
UPLOAD_OTPS=1 $PY client.py "$S" gina "gina pw" receive 1 > /dev/null
CLASSICAL=1 $PY client.py "$S" jill "jill pw" receive 1 > /dev/null
$PY client.py "$S" alice "alice pw" send gina "hybrid, one-time KEM prekey" | tee h1.txt; grep -q "KEM prekey: OneTime 7" h1.txt
$PY client.py "$S" carl "carl pw" send gina "hybrid, second one-time KEM prekey" | tee h2.txt; grep -q "KEM prekey: OneTime 8" h2.txt
$PY client.py "$S" hugo "hugo pw" send gina "hybrid, last-resort KEM prekey" | tee h3.txt; grep -q "KEM prekey: LastResort 1" h3.txt
$PY client.py "$S" gina "gina pw" receive 3 | tee g.txt
[ "$(grep -c 'received from .*hybrid, ' g.txt)" = 3 ] && echo "ok   three hybrid pre-key messages opened" || { echo "FAIL hybrid"; exit 1; }
RC=0; $PY client.py "$S" alice "alice pw" send jill "must not be sent" > j.txt 2>&1 || RC=$?
[ "$RC" != 0 ] && grep -q NoKemPreKey j.txt && echo "ok   a bundle without a KEM prekey is refused, nothing sent" || { cat j.txt; echo "FAIL downgrade"; exit 1; }
if [ "$RUST_HYBRID" = 1 ]; then
  # 1.4's downgrade rule across implementations: the Rust client refuses the stranger's classical
  # (0x01) pre-key message, and starts no session with an account that publishes no KEM prekey
  CLASSICAL=1 $PY client.py "$S" kate "kate pw" send bob "classical, must be refused" > /dev/null
  U receive --timeout 5 > dg1.txt 2>&1 || true; cat dg1.txt
  grep -q "classical pre-key message was refused" dg1.txt && ! grep -q "classical, must be refused" dg1.txt \
    && echo "ok   umbra refuses a classical pre-key message" || { echo "FAIL umbra took a classical pre-key message"; exit 1; }
  RC=0; U send jill "must not be sent either" > dg2.txt 2>&1 || RC=$?; cat dg2.txt
  $PY client.py "$S" jill "jill pw" receive 2 > dg3.txt
  [ "$RC" != 0 ] && ! grep -q "must not be sent either" dg3.txt \
    && echo "ok   umbra refuses to start a session with an account that has no KEM prekey (exit $RC)" || { cat dg3.txt; echo "FAIL umbra downgraded"; exit 1; }
fi
UPLOAD_OTPS=1 $PY client.py "$S" carol "carol pw" receive 1 > /dev/null
$PY client.py "$S" dave "dave pw" receive 1 > /dev/null
U send carol "rust -> python, one-time prekey"; U send dave "rust -> python, last-resort prekey"
$PY client.py "$S" carol "carol pw" receive 3 | tee c.txt; grep -q "OneTime" c.txt; grep -q "one-time prekey" c.txt
$PY client.py "$S" dave "dave pw" receive 3 | tee d.txt; grep -q "LastResort" d.txt; grep -q "last-resort prekey" d.txt
$PY probe_relay.py "$S"
$PY probe_authed.py "$S" dave "dave pw" carol
# 16.13: heads and proofs from the real relay, verified with the keys a client would pin
$PY probe_kt.py "$S" dave "dave pw" carol ./relay
# a group send, so the store holds the group records (kinds 20-24, 28) the checker reads
U group create interop dave > /dev/null; U group send interop "rust -> group, for the store" > /dev/null
$PY check_store.py ./bob bob.pw | tee store.txt | tail -1
grep -q "^ok   GroupSentDistribution: " store.txt; grep -q "^STORE FORMAT AS SPECIFIED" store.txt
$PY probe_token_blob.py "$S" ./relay ./bob bob.pw
# forged claims: the payload names carol (name only, then name and account) while alice's identity seals it
CAROL=$($PY -c "import json;print(json.load(open('state-carol.json'))['account'])")
env $TO_RUST CLAIM_USER=carol $PY client.py "$S" alice "alice pw" send bob "forged: name carol"
env $TO_RUST CLAIM_USER=carol CLAIM_ACCOUNT=$CAROL $PY client.py "$S" alice "alice pw" send bob "forged: name and account of carol"
U receive --timeout 10 > forged.txt 2>&1 || true; cat forged.txt
# 12.2 step 4: a name claim the directory does not confirm keeps the stored name; a foreign account is rejected
if grep -q "alice: forged: name carol" forged.txt && ! grep -q "carol:" forged.txt && ! grep -q "name and account of carol" forged.txt
then echo "ok   forged claims: name ignored (shown as alice), foreign account rejected"; else echo "FAIL forged claims"; exit 1; fi
# 12.5: a plain message (well-formed, version 0x02, 4.4) for a session erin does not have is kept (not acked, comes again);
# a malformed inner message is rejected (acked, never again)
printf 'erin password tangerine 41' > erin.pw; chmod 600 erin.pw
E() { UMBRA_PASSWORD_FILE=erin.pw "$BIN/umbra" --server "$S" --data-dir ./erin "$@"; }
E register erin > /dev/null
$PY client.py "$S" alice "alice pw" send_raw erin 02$($PY -c "print('02' + '00' * 194)")
$PY client.py "$S" alice "alice pw" send_raw erin 7f00
E receive --timeout 8 > e1.txt 2>&1 || true; E receive --timeout 8 > e2.txt 2>&1 || true
echo "--- erin 1"; cat e1.txt; echo "--- erin 2"; cat e2.txt
if [ "$(grep -c 'could not' e1.txt)" = 2 ] && [ "$(grep -c 'could not' e2.txt)" = 1 ]
then echo "ok   kept delivery redelivered, rejected one acked"; else echo "FAIL 12.5 acknowledgement rule"; exit 1; fi
# 12.15 "A lost answer": the PasswordChanged answer of frank's password change is dropped by a proxy
# (the relay carried the change out), so frank's store keeps both passwords' key slots and the new
# export key as a PendingExportKey (kind 26), which the stranger reads from the spec; a second change
# is refused (exit 1) until a login settles the first, and the login with the new password does.
$PY lose_answer.py "$S" lose.port > lose.out 2>&1 & LOSE=$!
trap 'kill $RELAY $LOSE 2>/dev/null' EXIT
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s lose.port ] && break; sleep 1; done
L=http://127.0.0.1:$(cat lose.port)
printf 'frank password tangerine 41' > frank.pw; printf 'frank changed it to clementine 58' > frank.new
printf 'frank third one is a pomelo 75' > frank.third; chmod 600 frank.pw frank.new frank.third
F() { "$BIN/umbra" --server "$L" --data-dir ./frank "$@"; }
UMBRA_PASSWORD_FILE=frank.pw F register frank > /dev/null
RC=0; UMBRA_PASSWORD_FILE=frank.pw F password change --new-password-file frank.new > f1.txt 2>&1 || RC=$?
cat lose.out f1.txt; grep -q "its answer is dropped" lose.out
[ "$RC" = 3 ] && echo "ok   password change with a lost answer: exit 3" || { echo "FAIL lost answer: exit $RC"; exit 1; }
$PY check_store.py ./frank frank.pw --expect-pending | tee frank-store.txt | tail -1
grep -q "^STORE FORMAT AS SPECIFIED" frank-store.txt
RC=0; UMBRA_PASSWORD_FILE=frank.new F password change --new-password-file frank.third > f2.txt 2>&1 || RC=$?
cat f2.txt
[ "$RC" = 1 ] && grep -q "Log in first" f2.txt && echo "ok   a second change is refused until a login" \
  || { echo "FAIL second change while pending: exit $RC"; exit 1; }
UMBRA_PASSWORD_FILE=frank.new F login frank > /dev/null
$PY check_store.py ./frank frank.new | tee frank-store2.txt | tail -1
grep -q "^STORE FORMAT AS SPECIFIED" frank-store2.txt && ! grep -q PendingExportKey frank-store2.txt \
  && echo "ok   the login settled it: no PendingExportKey" || { echo "FAIL login did not settle"; exit 1; }
echo "INTEROP DONE"
