"""Authenticated relay behaviour vs PROTOCOL.md 9.9/11.6/11.8: python probe_authed.py URL USER PASSWORD OTHER_USER
(USER must exist in ./state-USER.json, i.e. made by client.py)."""
import asyncio, sys, os
from prims import *
import client, wire, kem
from identity import SIGNED_PREKEY, public_identity
URL, USER, PW, OTHER = sys.argv[1:5]
res = []
def note(what, ok, detail=""): res.append(ok); print(("ok   " if ok else "FAIL ") + what + ("" if ok else "  -> " + str(detail)[:300]))
def code(r): return r.get("Error", {}).get("code") if isinstance(r, dict) else None

async def main():
    c, st, me = await client.setup(URL, USER, PW.encode())
    acct = list(H(st["account"]))
    r = await c.req({"ResolveUsername": {"username": OTHER}})
    o = client.load_state(OTHER)
    other_id = public_identity(H(o["ed"]), H(o["x"]))
    note("Resolved carries the identity the account published", bytes(r["Resolved"]["identity"]) == other_id, r)
    r = await c.req("PreKeyCount"); note("PreKeyCount answers remaining/low_water 20", r.get("PreKeyCount", {}).get("low_water") == 20, r)
    r = await c.req({"Send": {"messages": []}}); note("Send with 0 envelopes -> TooManyRecipients (12)", code(r) == 12, r)
    r = await c.req({"Send": {"messages": [{"to": {"account": list(H(o["account"])), "device": 2}, "envelope": [1] * 10},
                                           {"to": {"account": list(H(o["account"])), "device": 1}, "envelope": [1] * 98305},
                                           {"to": {"account": [9] * 16, "device": 1}, "envelope": [1] * 10}]}})
    rs = r.get("SendResult", {}).get("results")
    note("per-envelope outcomes: device 2 -> UnknownRecipient, >98304 -> EnvelopeTooLarge, no account -> UnknownRecipient",
         rs == [{"Rejected": {"code": 9}}, {"Rejected": {"code": 11}}, {"Rejected": {"code": 9}}], r)
    r = await c.req({"Ack": {"seqs": list(range(1025))}}); note("Ack of 1025 seqs -> LimitExceeded (24)", code(r) == 24, r)
    r = await c.req({"Ack": {"seqs": [999999]}}); note("Ack of an unknown seq -> Ok", r == "Ok", r)
    r = await c.req({"Ephemeral": {"to": {"account": list(H(o["account"])), "device": 1}, "payload": [0] * 4097}})
    note("Ephemeral of 4097 bytes -> LimitExceeded (24)", code(r) == 24, r)
    r = await c.req({"Ephemeral": {"to": {"account": [9] * 16, "device": 1}, "payload": [0] * 10}})
    note("Ephemeral to nobody -> Ok", r == "Ok", r)
    k = list(x25519_pub(os.urandom(32)))
    r = await c.req({"UploadPreKeys": {"prekeys": [{"id": 50, "key": k}, {"id": 50, "key": k}]}}); note("duplicate ids -> BadPreKey (23)", code(r) == 23, r)
    r = await c.req({"UploadPreKeys": {"prekeys": [{"id": 100 + i, "key": k} for i in range(101)]}}); note("101 prekeys -> TooManyPreKeys (14)", code(r) == 14, r)
    r = await c.req({"UploadPreKeys": {"prekeys": [{"id": 60, "key": k}]}}); r2 = await c.req({"UploadPreKeys": {"prekeys": [{"id": 60, "key": k}]}})
    r3 = await c.req({"UploadPreKeys": {"prekeys": [{"id": 60, "key": list(x25519_pub(os.urandom(32)))}]}})
    note("same id+key again is harmless; same id, other key -> BadPreKey", "PreKeyCount" in r2 and r2["PreKeyCount"]["remaining"] == r["PreKeyCount"]["remaining"] and code(r3) == 23, (r, r2, r3))
    spk_pub = x25519_pub(H(st["spk"]))
    sig = labelled_sign(H(st["ed"]), SIGNED_PREKEY, u32be(st["spk_id"]) + u64be(st["spk_at"]) + spk_pub)
    bad = bytearray(sig); bad[0] ^= 1
    r = await c.req({"PublishKeys": {"identity": list(me), "signed_prekey": {"id": st["spk_id"], "created_at": st["spk_at"], "key": list(spk_pub), "signature": list(bad)}, "last_resort": None}})
    note("PublishKeys with a bad prekey signature -> BadSignature (13)", code(r) == 13, r)
    osig = labelled_sign(H(o["ed"]), SIGNED_PREKEY, u32be(1) + u64be(o["spk_at"]) + x25519_pub(H(o["spk"])))
    r = await c.req({"PublishKeys": {"identity": list(other_id), "signed_prekey": {"id": 1, "created_at": o["spk_at"], "key": list(x25519_pub(H(o["spk"]))), "signature": list(osig)}, "last_resort": None}})
    note("PublishKeys of another account's identity -> IdentityInUse (25)", code(r) == 25, r)
    r = await c.req({"LoginStart": {"username": USER, "opaque_request": [0] * 96}}); note("LoginStart after auth -> AlreadyAuthenticated (21)", code(r) == 21, r)
    r = await c.req({"FetchBundle": {"target": {"Username": "nobodyhere"}}}); note("FetchBundle unknown -> UnknownUsername (20)", code(r) == 20, r)
    r = await c.req({"ResolveUsername": {"username": "nobodyhere"}}); note("ResolveUsername unknown -> UnknownUsername (20)", code(r) == 20, r)
    await kem_probes(c, st, me)
    print(f"{sum(res)}/{len(res)} authenticated behaviours as specified")
    await c.ws.close()
def kem_entry(st, kind, id_, seed=None, key=None, flip=False):
    key = key if key is not None else kem.public_bytes(seed or kem.new_seed()); at = st["spk_at"]
    sig = bytearray(kem.sign_prekey(H(st["ed"]), kind, id_, at, key))
    if flip: sig[5] ^= 1
    return {"id": id_, "created_at": at, "key": list(key), "signature": list(sig)}

async def kem_probes(c, st, me):
    """Issue 14, PROTOCOL 11.8 (UploadKemPreKeys, KemPreKeyCount, FetchHybridBundle), 9.6, 9.9: the relay checks every KEM prekey signature with
    the kind its field implies and refuses the whole upload on one bad entry; one-time KEM prekeys
    are handed out at most once, the last-resort one always."""
    def count(r): return r.get("KemPreKeyCount", {}).get("remaining") if isinstance(r, dict) else None
    r0 = await c.req("KemPreKeyCount"); n0 = count(r0)
    note("KemPreKeyCount answers remaining/low_water 20", n0 is not None and r0["KemPreKeyCount"]["low_water"] == 20, r0)
    good = kem_entry(st, kem.ONE_TIME, 300)
    for what, entries, want in [("a flipped signature bit", [kem_entry(st, kem.ONE_TIME, 301, flip=True)], 13),
                                ("a one-time key signed as last-resort (kind 0x02)", [kem_entry(st, kem.LAST_RESORT, 302)], 13),
                                ("one good and one bad entry", [good, kem_entry(st, kem.ONE_TIME, 303, flip=True)], 13),
                                ("a 1183-byte key", [kem_entry(st, kem.ONE_TIME, 304, key=bytes(1183))], 23),
                                ("a 1185-byte key", [kem_entry(st, kem.ONE_TIME, 304, key=bytes(1185))], 24),
                                ("a duplicate id", [good, kem_entry(st, kem.ONE_TIME, 300)], 23),
                                ("101 entries", [kem_entry(st, kem.ONE_TIME, 400 + i) for i in range(101)], 14)]:
        r = await c.req({"UploadKemPreKeys": {"last_resort": None, "one_time": entries}})
        r2 = await c.req("KemPreKeyCount")
        note(f"UploadKemPreKeys with {what} -> {wire.ERROR_CODES.get(want)} ({want}), nothing stored", code(r) == want and count(r2) == n0, (r, r2))
    r = await c.req({"UploadKemPreKeys": {"last_resort": kem_entry(st, kem.ONE_TIME, 1), "one_time": []}})
    note("a last-resort KEM prekey signed as one-time (kind 0x01) -> BadSignature (13)", code(r) == 13, r)
    r = await c.req({"UploadKemPreKeys": {"last_resort": None, "one_time": [good, kem_entry(st, kem.ONE_TIME, 305)]}})
    note("two good one-time KEM prekeys -> KemPreKeyCount + 2", count(r) == n0 + 2, r)
    # another account fetches this one's hybrid bundle three times
    o, _, _ = await client.setup(URL, OTHER, f"{OTHER} pw".encode())  # run_interop.sh names python users' passwords so
    served = []
    for _ in range(3):
        r = await o.req({"FetchHybridBundle": {"account": list(H(st["account"])), "device": None}})
        served.append(r.get("HybridBundle"))
    await o.ws.close()
    ok = all(served) and all(bytes(h["bundle"]["identity"]) == me for h in served)
    ots = [h["kem_one_time"] for h in served if ok]
    lrs = [h["kem_last_resort"] for h in served if ok]
    note("FetchHybridBundle: the own identity's bundle each time", ok, served)
    ids = [k["id"] for k in ots if k]
    note("one-time KEM prekeys 300 and 305 served once each, then none", ok and sorted(ids) == [300, 305] and ots[2] is None, ids)
    note("the last-resort KEM prekey is always served, and every served key verifies with its kind",
         ok and all(lrs) and all(kem.verify_prekey(me[:32], kem.LAST_RESORT, k["id"], k["created_at"], bytes(k["key"]), bytes(k["signature"])) for k in lrs)
         and all(kem.verify_prekey(me[:32], kem.ONE_TIME, k["id"], k["created_at"], bytes(k["key"]), bytes(k["signature"])) for k in ots if k), (lrs, ots))
    r = await c.req("KemPreKeyCount"); note("KemPreKeyCount back to where it was", count(r) == n0, r)

asyncio.run(main())
sys.exit(0 if all(res) else 1)
