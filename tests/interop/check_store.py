"""PROTOCOL.md 12.8-12.9: open a real umbra client store (format 3, or 4 after a password change: 12.8 "Key slots") with the spec alone.
usage: python check_store.py DATA_DIR PASSWORD_FILE [--expect-pending]
(--expect-pending: the store is one a password change whose answer was lost
left, run_interop.sh through lose_answer.py; it must hold a PendingExportKey)

Reads the header, derives the keys, opens every record (generation, nonce,
associated data of 12.9), parses the kinds whose layout 12.9 gives, and checks
the generation index against the guarded records (Session, Outbox,
OneTimePreKey, KemOneTimePreKey, GroupSenderKey, GroupReceiverKey, Fanout): every guarded row has an entry with its sealed generation, and
every entry has its row."""
import sqlite3, sys, hashlib
from prims import *
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as xdec
from argon2.low_level import hash_secret_raw, Type
from postcard import Reader
from store_open import Store
from identity import public_identity
import kem, session_pickle_read

d, pwf = sys.argv[1:3]
expect_pending = sys.argv[3:] == ["--expect-pending"]
pw = open(pwf, "rb").read().rstrip(b"\n")
store = Store(d, pw)
db, owner, record_key, slot_key, check = store.db, store.owner, store.record_key, store.slot_key, store.check

sealed_gen = {}
def open_rec(kind, slot, sealed):
    v, sealed_gen[(kind, slot)] = store.open_rec(kind, slot, sealed)
    return v

pt = open_rec(1, b"", check); print("check record:", pt)
assert pt == b"umbra client store check v1"
kinds = {}
for kind, slot, sealed in db.execute("select kind, slot, sealed from records"):
    v = open_rec(kind, bytes(slot), bytes(sealed)); kinds[kind] = kinds.get(kind, 0) + 1
    if kind == 2:
        print("raw Account:", v[:70].hex(), len(v)); r = Reader(v); ed = r.fixed(32); xs = r.fixed(32); user = r.string(); acct = r.take(16); dev = r.u32()
        print("Account record:", user, acct.hex(), "device", dev, "left", r.left())
        print("  public identity", public_identity(ed, xs).hex()[:32] + "...")
    if kind == 8:
        expect = hmac256(slot_key, bytes([8]) + v[1:17]) if v[0] == 16 else None
print("records opened per kind:", dict(sorted(kinds.items())))
def rows(kind):
    for _, slot, sealed in db.execute("select kind, slot, sealed from records where kind = ?", (kind,)):
        yield bytes(slot), open_rec(kind, bytes(slot), bytes(sealed))
ok = True
def chk(what, cond):
    global ok; ok &= bool(cond); print(("ok   " if cond else "FAIL ") + what)
for slot, v in rows(8):
    r = Reader(v); acct = r.take(16); user = r.string(); pinned = r.bytes(); trust = r.u32(); pend = r.opt(r.bytes)
    chk(f"Contact {user}: slot = HMAC(slot_key, 08 || account), pinned identity {len(pinned)} bytes, trust {trust}, fully parsed",
        hmac256(slot_key, b"\x08" + acct) == slot and len(pinned) == 128 and r.left() == 0)
    sess_slot = hmac256(slot_key, b"\x0a" + acct + u32be(1) + pinned)
    chk(f"  its Session record sits at HMAC(slot_key, 0a || account || u32be(1) || identity)",
        any(s == sess_slot for s, _ in rows(10)))
for slot, v in rows(3):
    r = Reader(v); tok = r.take(32); exp = r.u64(); chk(f"Token: 32 bytes + expires_at {exp}", r.left() == 0)
for slot, v in rows(12):
    r = Reader(v); fmt = r.u32(); mid = r.fixed(16); dirn = r.u32(); body = r.string(); sent = r.u64(); recv = r.u64(); status = r.u32(); rep = r.bool()
    if fmt == 1:  # V2 (10.6): reply_to, reactions, edited_at_ms, deleted
        r.opt(lambda: r.fixed(16)); r.seq(lambda: (r.take(16), r.string())); r.opt(r.u64); r.bool()
    chk(f"History V{fmt + 1} {['in','out'][dirn]} {body[:30]!r} status {status} reported {rep}: fully parsed, slot = HMAC prefix (32) || u64be", r.left() == 0 and len(slot) == 40)
for slot, v in rows(15):
    r = Reader(v); a = r.u64(); b = r.u64(); chk(f"Counters {a},{b}", r.left() == 0)
for slot, v in rows(14):
    r = Reader(v); t = r.u64(); chk(f"Seen received_at_ms {t}", r.left() == 0 and len(slot) == 32)
for slot, v in rows(7):
    r = Reader(v); a, b, cur = r.u32(), r.u32(), r.u32(); at = r.u64(); held = r.seq(lambda: (r.u32(), r.u64())); lr = r.u32()
    chk(f"PreKeyState next_otp {a} next_spk {b} current {cur} held {held} last_resort {lr}", r.left() == 0)
for slot, v in rows(18):
    r = Reader(v); acct = r.take(16); nc = r.opt(lambda: r.take(16)); chk("NameBinding: account + option newcomer", r.left() == 0)
for slot, v in rows(10):
    # 4.9: the whole SessionRecordPickle, ratchet format 2 with the 4.13 braids
    try:
        cur, since, prev = session_pickle_read.read_record(v); rs = cur["ratchet"]; why = ""
    except Exception as e:
        cur, why = None, f" ({type(e).__name__}: {e})"
    chk(f"Session record: SessionRecordPickle of {len(v)} bytes read to its end{why}" + (
        f", ratchet format {2 if cur['format2'] else 1}, {len(prev)} archived, pq_epoch {rs.pqs}, own epoch {rs.e_own}, "
        f"peer epoch {rs.e_peer} ({rs.peer[0]}), {len(rs.skipped)} skipped keys" if cur else ""), cur is not None)
for slot, v in rows(13):
    r = Reader(v); mid = r.fixed(16); to = r.take(16); user = r.string(); env = r.bytes(); at = r.u64(); vis = r.bool()
    chk(f"Outbox to {user}: envelope {len(env)} bytes, fully parsed, slot u64be", r.left() == 0 and len(slot) == 8)
for slot, v in rows(20):
    r = Reader(v); log = r.bytes(); m = r.u32(); remover = r.take(16) if m == 2 else None
    recent = r.seq(lambda: r.fixed(16)); sup = r.seq(r.bytes)
    lr = Reader(log[1:]); base = lr.bytes(); kept = lr.seq(lr.bytes); pend = lr.seq(lr.bytes); br = Reader(base[1:])
    losers = lr.seq(lambda: lr.fixed(32))
    gid, gver, ghead, gname = br.fixed(32), br.u64(), br.fixed(32), br.string()
    chk(f"  its log (8.13): base snapshot of {gname!r} at version {gver}, {len(kept)} kept and {len(pend)} pending changes, {len(losers)} remembered losers",
        lr.left() == 0 and base[0] == 1 and hmac256(slot_key, b"\x14" + gid) == slot and len(losers) <= 64)
    chk(f"Group: log pickle {len(log)} bytes (version {log[0]:#04x}), membership {['Active','Left','Removed'][m]}, "
        f"{len(recent)} recent ids, {len(sup)} superseded, slot HMAC (32), fully parsed",
        r.left() == 0 and len(slot) == 32 and log[0] == 1)
for slot, v in rows(21):
    # 12.9: the format marker 2^64 - 2, then the key with the head it was made at and its (account, device) marks.
    r = Reader(v); fmt = r.u64(); epoch = r.u64(); made_at = r.opt(lambda: r.fixed(32)); sender = r.bytes(); to = r.seq(lambda: (r.take(16), r.u32()))
    chk(f"GroupSenderKey epoch {epoch}, made at head {made_at.hex()[:16] if made_at else None}: sender pickle {len(sender)} bytes, distributed to {len(to)} device(s) (ascending), fully parsed",
        r.left() == 0 and fmt == 2**64 - 2 and made_at is not None and to == sorted(to) and len(set(to)) == len(to) and len(slot) == 32)
for slot, v in rows(22):
    # 12.9: format 0x40, then per device of the member its keys (at most 2), at most 8 devices.
    r = Reader(v); fmt = r.u8(); devs = r.seq(lambda: (r.u32(), r.seq(lambda: (r.u64(), r.u32(), r.bytes()))))
    chk(f"GroupReceiverKey: {len(devs)} device(s), keys {[len(k) for _, k in devs]} (at most 2 each), fully parsed",
        r.left() == 0 and fmt == 0x40 and len(devs) <= 8 and all(len(k) <= 2 for _, k in devs))
for slot, v in rows(23):
    r = Reader(v); fmt = r.u8(); mid = r.fixed(16); gid = r.fixed(32); purpose = r.u32()
    items = r.seq(lambda: (r.take(16), r.u32(), r.string(), r.bytes(), r.opt(r.u64))); at = r.u64()
    chk(f"Fanout purpose {purpose}: {len(items)} item(s) (each to one device), fully parsed, slot u64be",
        r.left() == 0 and fmt == 1 and len(slot) == 8 and all(i[1] >= 1 for i in items))
for slot, v in rows(24):
    r = Reader(v); acct = r.take(16); who = r.string(); fmt = r.u32(); mid = r.fixed(16); dirn = r.u32(); body = r.string()
    sent = r.u64(); recv = r.u64(); status = r.u32(); rep = r.bool()
    if fmt == 1: r.opt(lambda: r.fixed(16)); r.seq(lambda: (r.take(16), r.string())); r.opt(r.u64); r.bool()
    chk(f"GroupHistory {who}: {body[:30]!r}, fully parsed, slot HMAC prefix (32) || u64be", r.left() == 0 and len(slot) == 40)
for slot, v in rows(25):
    r = Reader(v); ek = r.bytes(); acked = r.opt(r.u64); dig = r.opt(lambda: r.take(32))
    chk(f"Backup: export key {len(ek)} bytes, acked seq {acked}, digest {'set' if dig else 'none'}, empty slot, fully parsed",
        r.left() == 0 and len(ek) == 64 and slot == b"")
# 12.15 "A lost answer": a PendingExportKey only while a password change is
# undecided; a store such a change left must hold exactly one, another key
# than the current one in Backup.
pending = list(rows(26))
current = [Reader(v).bytes() for _, v in rows(25)]
if expect_pending:
    chk(f"one PendingExportKey record (kind 26) in a store a lost answer left: {len(pending)}", len(pending) == 1)
for slot, v in pending:
    r = Reader(v); ek = r.bytes()
    chk(f"PendingExportKey: {len(ek)} bytes, empty slot, fully parsed, not the current export key",
        r.left() == 0 and len(ek) == 64 and slot == b"" and ek not in current)
sent_keys = list(rows(28))
for slot, v in sent_keys:
    # 12.9 / 8.16: our last keys' chains, moved on to what the relay can still hold.
    r = Reader(v)
    def sent_key():
        epoch = r.u64(); chain_id = r.u32(); chain = r.bytes(); nxt = r.u32()
        cps = r.seq(lambda: (r.u32(), r.u64(), r.u64())); copies = r.seq(lambda: (r.u32(), r.seq(lambda: r.take(16))))
        return epoch, chain_id, chain, nxt, cps, copies
    keys = r.seq(sent_key)
    def key_ok(k):
        epoch, chain_id, chain, nxt, cps, copies = k
        its = [c[0] for c in cps]
        return (its == sorted(its) and all(i < nxt for i in its) and all(a <= b for _, a, b in cps)
                and len(cps) <= 30 * 24 + 2 and all(to == sorted(to) and i < nxt for i, to in copies))
    chk(f"GroupSentDistribution: {len(keys)} key(s) (at most 2), checkpoints {[len(k[4]) for k in keys]}, "
        f"copies {[len(k[5]) for k in keys]}, slot HMAC (32), fully parsed",
        r.left() == 0 and 1 <= len(keys) <= 2 and len(slot) == 32 and all(key_ok(k) for k in keys))
# Every group we sent in keeps one: a GroupSenderKey row means a send happened.
chk(f"GroupSentDistribution rows ({len(sent_keys)}) for the groups we sent in ({len(list(rows(21)))})",
    len(sent_keys) == len(list(rows(21))))
# 12.9 kind 29: the local privacy settings, a singleton if present.
settings = list(rows(29))
chk(f"at most one Settings record (kind 29): {len(settings)}", len(settings) <= 1)
for slot, v in settings:
    r = Reader(v); fmt = r.u32(); flags = r.take(2)
    chk(f"Settings: format {fmt}, read_receipts {flags[0]}, typing {flags[1]}, empty slot, fully parsed",
        r.left() == 0 and fmt == 0 and slot == b"" and all(b in (0, 1) for b in flags))
# 12.9 kind 38 (issue 15): the pinned key-transparency keys, the newest head, the own leaves' links.
kt_rows = list(rows(38))
chk(f"at most one KtState record (kind 38, empty slot): {len(kt_rows)}", len(kt_rows) <= 1 and all(sl == b"" for sl, _ in kt_rows))
for slot, v in kt_rows:
    r = Reader(v); fmt = r.u32(); dkey = r.take(32); vkey = r.take(32); head = r.opt(r.bytes)
    acct = r.opt(lambda: (r.u64(), r.take(32))); name = r.opt(lambda: (r.take(r.u64()).decode(), r.u64(), r.take(32)))
    chk(f"KtState: format {fmt}, head {None if head is None else len(head)} bytes (16.7: 146 + 32p), "
        f"links {acct and acct[0]} / {name and name[:2]}, fully parsed",
        r.left() == 0 and fmt == 0 and (head is None or (len(head) >= 146 and (len(head) - 146) == 32 * head[145])))
# 12.6 / 12.9 kinds 33-35 (issue 14): the ML-KEM prekeys, signed as 3.9 by the Account's identity.
acct_rows = list(rows(2))
ed_pub_ = None
if acct_rows:
    r = Reader(acct_rows[0][1]); ed_seed = r.fixed(32); xs = r.fixed(32); ed_pub_ = public_identity(ed_seed, xs)[:32]
def kem_prekey(v):
    r = Reader(v); kind = r.u8(); id_ = r.u32(); at = r.u64(); seed = r.fixed(64); sig = r.fixed(64)
    return kind, id_, at, seed, sig, r.left()
kem_state = list(rows(33))
chk(f"at most one KemPreKeyState record (kind 33, empty slot): {len(kem_state)}", len(kem_state) <= 1 and all(sl == b"" for sl, _ in kem_state))
held_lr, cur_lr = [], None
for slot, v in kem_state:
    r = Reader(v); fmt = r.u32(); nxt_ot, nxt_lr, cur_lr = r.u32(), r.u32(), r.u32(); cur_at = r.u64()
    held_lr = r.seq(lambda: (r.u32(), r.u64()))
    chk(f"KemPreKeyState V{fmt + 1}: next one-time {nxt_ot}, next last-resort {nxt_lr}, current last-resort {cur_lr} "
        f"created {cur_at}, {len(held_lr)} replaced still held, fully parsed",
        r.left() == 0 and fmt == 0 and cur_lr not in [h[0] for h in held_lr])
for kind_rec, want_kind, name in ((34, 1, "KemOneTimePreKey"), (35, 2, "KemLastResortPreKey")):
    got = list(rows(kind_rec)); good = 0; ids = []
    for slot, v in got:
        kind, id_, at, seed, sig, left = kem_prekey(v); ids.append(id_)
        pk = kem.public_bytes(seed)
        good += (left == 0 and kind == want_kind and slot == hmac256(slot_key, bytes([kind_rec]) + u32be(id_))
                 and ed_pub_ is not None and kem.verify_prekey(ed_pub_, want_kind, id_, at, pk, sig))
    if got:
        chk(f"{name} (kind {kind_rec}): {len(got)} record(s), each kind {want_kind:#04x}, slot HMAC(kind, u32be id), "
            f"its key from the seed d||z and its 3.9 signature verifying under the Account's identity ({good} of {len(got)})", good == len(got))
    if kind_rec == 35 and kem_state:
        want = sorted([cur_lr] + [h[0] for h in held_lr])
        chk(f"  the last-resort KEM prekeys held {sorted(ids)} are the current one and the replaced ones the state names {want}", sorted(ids) == want)
GUARDED = {5, 10, 13, 21, 22, 23, 34}
gens = list(rows(19))
chk("at most one Generation record (kind 19, empty slot)", len(gens) <= 1 and all(s == b"" for s, _ in gens))
index, top = {}, 0
for _, v in gens:
    r = Reader(v); top = r.u64(); entries = r.seq(lambda: (r.u8(), r.bytes(), r.u64()))
    index = {(kind, bytes(s)): g for kind, s, g in entries}
    chk(f"Generation {top}: {len(index)} index entries, all of guarded kinds, fully parsed",
        r.left() == 0 and all(kind in GUARDED for kind, _ in index))
guarded = {key: g for key, g in sealed_gen.items() if key[0] in GUARDED}
chk(f"every guarded record ({len(guarded)}) has an index entry with its sealed generation",
    all(index.get(key) == g for key, g in guarded.items()))
chk(f"every index entry has its row", all(key in sealed_gen for key in index))
chk(f"no record sealed with a generation above the committed {top}",
    not gens or all(g <= top for g in sealed_gen.values()))
print("STORE FORMAT AS SPECIFIED" if ok else "STORE FORMAT MISMATCH")
