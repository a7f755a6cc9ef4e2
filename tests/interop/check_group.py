"""§8.1–8.6 group.json (sender keys v2)."""
from prims import *
import group, sealed

def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n == 0: return out + bytes([b])
        out += bytes([b | 0x80])

def bstr(b): return varint(len(b)) + b

def main():
    d = load("group.json"); c = Checker("group.json")
    gid, epoch, chain_id = H(d["group_id"]), d["epoch"], d["chain_id"]
    alice_seed, alice_pub = H(d["alice_identity_seed"]), H(d["alice_public_identity"])
    bob_pub, bob_x = H(d["bob_public_identity"]), H(d["bob_x25519_secret"])
    sseed = H(d["sender_signing_seed"])
    c.eq("sender signing public", ed_pub(sseed), d["sender_signing_public"])
    dist = H(d["distribution"]); ck = dist[49:81]
    c.eq("distribution", group.distribution(alice_seed, gid, epoch, chain_id, 0, ck, ed_pub(sseed)), dist)
    c.eq("distribution verifies", group.verify_distribution(dist, alice_pub, gid), dist)
    seeds = []
    for m in d["messages"]:
        w = f"it{m['iteration']}"
        c.eq(w + ".chain_key", ck, m["chain_key"])
        s, k, n, msg = group.encrypt(sseed, gid, epoch, chain_id, m["iteration"], ck, H(m["payload"]))
        c.eq(w + ".seed", s, m["message_key_seed"]); c.eq(w + ".key", k, m["aead_key"]); c.eq(w + ".nonce", n, m["aead_nonce"])
        c.eq(w + ".header", msg[:49], m["header"]); c.eq(w + ".message", msg, m["message"])
        seeds.append(s); ck = group.next_ck(ck)
    # The first envelope: sealed inner 0x04 || message 0, from alice.
    ik_a, addr_a, inner = sealed.open_(bob_pub, bob_x, H(d["first_envelope"]))
    c.eq("envelope sender", ik_a, alice_pub)
    c.eq("envelope inner", inner, b"\x04" + H(d["messages"][0]["message"]))
    # Receiver: deliver 2, 0, 1 (skipped keys), then replay 0; a re-seal by someone else is WrongSender.
    r = group.Receiver(dist, alice_pub)
    try: r.decrypt(bob_pub, H(d["messages"][0]["message"])); got = "accepted"
    except group.GroupError as e: got = str(e)
    c.eq("other sealer", got, "WrongSender")
    for i in (2, 0, 1):
        c.eq(f"receive {i}", r.decrypt(alice_pub, H(d["messages"][i]["message"])), d["messages"][i]["payload"])
    try: r.decrypt(alice_pub, H(d["messages"][0]["message"])); got = "accepted"
    except group.GroupError as e: got = str(e)
    c.eq("replay", got, "Replay(0)")
    # Pickles (8.6): sender at iteration 3; receiver at 3 with iteration 1 skipped.
    sp = b"\x01" + bstr(gid) + varint(epoch) + varint(chain_id) + bstr(sseed) + bstr(ck) + varint(3)
    c.eq("sender pickle", sp, d["sender_pickle"])
    rp = (b"\x01" + bstr(gid) + varint(epoch) + varint(chain_id) + bstr(alice_pub) + bstr(ed_pub(sseed))
          + bstr(ck) + varint(3) + varint(1) + varint(1) + bstr(seeds[1]))
    c.eq("receiver pickle", rp, d["receiver_pickle"])
    return c.report()

if __name__ == "__main__": main()
