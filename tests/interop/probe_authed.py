"""Authenticated relay behaviour vs PROTOCOL.md 9.9/11.6/11.8: python probe_authed.py URL USER PASSWORD OTHER_USER
(USER must exist in ./state-USER.json, i.e. made by client.py)."""
import asyncio, sys, os
from prims import *
import client, wire
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
    print(f"{sum(res)}/{len(res)} authenticated behaviours as specified")
    await c.ws.close()
asyncio.run(main())
