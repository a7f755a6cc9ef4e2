"""PROTOCOL.md 12.8-12.9: open a real umbra client store with the spec alone.
usage: python check_store.py DATA_DIR PASSWORD_FILE"""
import sqlite3, sys, hashlib
from prims import *
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as xdec
from argon2.low_level import hash_secret_raw, Type
from postcard import Reader
from identity import public_identity

d, pwf = sys.argv[1:3]
pw = open(pwf, "rb").read().rstrip(b"\n")
db = sqlite3.connect(f"{d}/umbra-client.db")
hdr = db.execute("select bytes from header where id = 1").fetchone()[0]
assert hdr[:7] == b"UMBRACS" and hdr[7] == 1, "magic/version"
mem, it, par = (int.from_bytes(hdr[8 + 4*i:12 + 4*i], "big") for i in range(3))
salt, owner, check = hdr[20:36], hdr[36:52], hdr[52:]
print(f"header: m={mem} KiB t={it} p={par}, owner {owner.hex()}, check {len(check)} bytes")
master = hash_secret_raw(pw, salt, time_cost=it, memory_cost=mem, parallelism=par, hash_len=32, type=Type.ID, version=0x13)
record_key = hkdf(None, master, b"umbra/v1/client-store/record-key", 32)
slot_key = hkdf(None, master, b"umbra/v1/client-store/slot-key", 32)

def open_rec(kind, slot, sealed):
    ad = b"\x01" + bytes([kind]) + owner + slot
    return xdec(sealed[24:], ad, sealed[:24], record_key)

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
    r = Reader(v); mid = r.take(16); dirn = r.u32(); body = r.string(); sent = r.u64(); recv = r.u64(); status = r.u32(); rep = r.bool()
    chk(f"History {['in','out'][dirn]} {body[:30]!r} status {status} reported {rep}: fully parsed, slot = HMAC prefix (32) || u64be", r.left() == 0 and len(slot) == 40)
for slot, v in rows(15):
    r = Reader(v); a = r.u64(); b = r.u64(); chk(f"Counters {a},{b}", r.left() == 0)
for slot, v in rows(14):
    r = Reader(v); t = r.u64(); chk(f"Seen received_at_ms {t}", r.left() == 0 and len(slot) == 32)
for slot, v in rows(7):
    r = Reader(v); a, b, cur = r.u32(), r.u32(), r.u32(); at = r.u64(); held = r.seq(lambda: (r.u32(), r.u64())); lr = r.u32()
    chk(f"PreKeyState next_otp {a} next_spk {b} current {cur} held {held} last_resort {lr}", r.left() == 0)
for slot, v in rows(18):
    r = Reader(v); acct = r.take(16); nc = r.opt(lambda: r.take(16)); chk("NameBinding: account + option newcomer", r.left() == 0)
for slot, v in rows(4):
    idb = None
print("STORE FORMAT AS SPECIFIED" if ok else "STORE FORMAT MISMATCH")
