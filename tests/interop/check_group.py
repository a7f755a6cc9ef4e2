"""§8 group.json."""
from prims import *
import group

def main():
    d = load("group.json"); c = Checker("group.json")
    dist = H(d["distribution"]); dist_id = H(d["distribution_id"]); seed = H(d["signing_seed"])
    chain_id = int.from_bytes(dist[17:21], "big"); ck = dist[25:57]
    c.eq("distribution", group.distribution(dist_id, chain_id, 0, ck, ed_pub(seed)), dist)
    for m in d["messages"]:
        w = f"it{m['iteration']}"
        c.eq(w + ".chain_key", ck, m["chain_key"])
        s, k, n, msg = group.encrypt(seed, dist_id, chain_id, m["iteration"], ck, H(m["plaintext"]))
        c.eq(w + ".seed", s, m["message_key_seed"]); c.eq(w + ".key", k, m["aead_key"]); c.eq(w + ".nonce", n, m["aead_nonce"])
        c.eq(w + ".message", msg, m["message"])
        ck = group.next_ck(ck)
    # receiver: deliver 2, 0, 1 (skipped keys), then replay 0
    r = group.Receiver(dist)
    for i in (2, 0, 1):
        c.eq(f"receive {i}", r.decrypt(H(d["messages"][i]["message"])), d["messages"][i]["plaintext"])
    try: r.decrypt(H(d["messages"][0]["message"])); got = "accepted"
    except group.GroupError as e: got = str(e)
    c.eq("replay", got, "Replay(0)")
    return c.report()

if __name__ == "__main__": main()
