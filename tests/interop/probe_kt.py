"""Section 16.13 over the real relay, verified from docs/PROTOCOL.md alone:
python probe_kt.py URL USER PASSWORD OTHER_USER RELAY_DIR
(USER and OTHER_USER made by client.py; RELAY_DIR holds the relay's kt-directory-key,
from which the keys a client would pin are derived: the Ed25519 seed's public key and
the VRF scalar's). KtHead, KtLookup and KtHistory answers are checked with kt.py."""
import asyncio, sys
from prims import *
import client, kt
from identity import public_identity
URL, USER, PW, OTHER, RDIR = sys.argv[1:6]
MAGIC = b"umbra-relay key transparency keys v1\n"
res = []
def note(what, ok, detail=""): res.append(ok); print(("ok   " if ok else "FAIL ") + what + ("" if ok else "  -> " + str(detail)[:300]))
def code(r): return r.get("Error", {}).get("code") if isinstance(r, dict) else None

def pinned():
    b = open(f"{RDIR}/kt-directory-key", "rb").read()
    assert b.startswith(MAGIC) and len(b) == len(MAGIC) + 64, "kt key file format (16.13)"
    return ed_pub(b[len(MAGIC):len(MAGIC) + 32]), kt.vrf_public(b[len(MAGIC) + 32:])

async def main():
    dpub, Y = pinned()
    c, st, me = await client.setup(URL, USER, PW.encode())
    acct, other = H(st["account"]), H(client.load_state(OTHER)["account"])
    r = await c.req({"KtHead": {"known": None, "entry_of": None}})
    old = kt.verify_head(dpub, bytes(r["KtHead"]["head"]))
    note("KtHead: the newest head verifies under the pinned directory key, nothing else asked", r["KtHead"]["consistency"] is None and r["KtHead"]["inclusion"] is None, r)

    def lookup(r, label):
        epoch, _, map_root, _, _ = kt.verify_head(dpub, bytes(r["KtLookup"]["head"]))
        return kt.verify_lookup(Y, label, bytes(r["KtLookup"]["proof"]), map_root, epoch)
    r = await c.req({"KtLookup": {"label": {"Account": list(acct)}}})
    found = lookup(r, kt.label_account(acct))
    note("KtLookup of my account: its value commits to the identity I published (16.3)",
         found is not None and found[2][1:33] == kt.sha256(kt.IDENTITY, me), found)
    r = await c.req({"KtLookup": {"label": {"Username": OTHER}}})
    found = lookup(r, kt.label_username(OTHER))
    note(f"KtLookup of the name {OTHER}: held by its account", found is not None and found[2] == kt.value_username(other), found)
    r = await c.req({"KtLookup": {"label": {"Username": "nobodyhere"}}})
    note("KtLookup of a name nobody holds: proven absent", lookup(r, kt.label_username("nobodyhere")) is None, r)

    r = await c.req({"KtHistory": {"label": {"Account": list(acct)}, "first": 1}})
    epoch, _, map_root, _, _ = kt.verify_head(dpub, bytes(r["KtHistory"]["head"]))
    hist = kt.verify_history(Y, kt.label_account(acct), bytes(r["KtHistory"]["proof"]), map_root, epoch)
    note("KtHistory of my account from 1: verifies, the newest version is my identity",
         hist[0][0] == 1 and hist[-1][2][1:33] == kt.sha256(kt.IDENTITY, me), hist)

    r = await c.req({"KtHead": {"known": old[0], "entry_of": old[0]}})
    h = r["KtHead"]; new = kt.verify_head(dpub, bytes(h["head"]))
    a, b, path = kt.decode_sized(bytes(h["consistency"]))
    kt.verify_consistency(a, b, path, old[3], new[3])
    i, n, ipath = kt.decode_sized(bytes(h["inclusion"]))
    kt.verify_inclusion(i, n, ipath, kt.log_leaf(bytes(h["entry"])), new[3])
    note("KtHead from a remembered epoch: the new head extends it, and its entry is in the new log (16.8)",
         (a, b) == (old[0] + 1, new[0] + 1) and bytes(h["entry"]) == old[4] and new[1] >= old[1], h)
    r = await c.req({"KtHead": {"known": 2**40, "entry_of": None}})
    note("KtHead naming an epoch after the newest -> LimitExceeded (24)", code(r) == 24, r)
    r = await c.req({"KtHistory": {"label": {"Username": "nobodyhere"}, "first": 1}})
    note("KtHistory of a name never published -> UnknownUsername (20)", code(r) == 20, r)
    print(f"{sum(res)}/{len(res)} key-transparency answers as specified")
    await c.ws.close()
    sys.exit(0 if all(res) else 1)

asyncio.run(main())
