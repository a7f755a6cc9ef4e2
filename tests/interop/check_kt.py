"""Section 16 key transparency, from docs/PROTOCOL.md alone: the VRF key from its
seed, every label's VRF proof and index, the version chains and map roots of the
four epochs, the entries, signed heads and log roots, the lookup and history proofs
byte for byte, the RFC 9162 inclusion and consistency proofs, and every refusal."""
from prims import *
from chacharng import ChaCha20Rng
import ristretto as r255
import kt

T0 = 1_700_000_000_000

def scenario(bob_list):
    a, b, c = bytes([0xa1]) * 16, bytes([0xb0]) * 16, bytes([0xc0]) * 16
    acct = lambda acc, ident, lst=None: (kt.label_account(acc), kt.value_account(bytes([ident]) * 128, lst))
    held = lambda name, acc: (kt.label_username(name), kt.value_username(acc))
    return [
        [acct(a, 0x11), held("alice", a), acct(b, 0x22), held("bob", b)],
        [acct(c, 0x33), held("carol", c)],
        [acct(b, 0x22, bob_list)],
        [acct(a, 0x12), (kt.label_username("carol"), kt.value_username(None))],
    ]

def main():
    v = load("kt.json")
    ck = Checker("kt")
    x = r255.reduce64(ChaCha20Rng([0x56] * 32).fill_bytes(64))
    ck.eq("vrf secret key (64 ChaCha bytes mod l)", x, v["vrf_secret_key"])
    Y = kt.vrf_public(x)
    ck.eq("vrf public key", Y, v["vrf_public_key"])
    dseed = bytes([0x44]) * 32
    dpub = ed_pub(dseed)
    ck.eq("directory public key", dpub, v["directory_public_key"])
    for e in v["empty_hashes"]:
        ck.eq(f"E[{e['depth']}]", kt.E[e["depth"]], e["hash"])

    index_of = {}
    for case in v["vrf"]:
        label = bytes.fromhex(case["label"])
        ck.eq("alpha", kt.alpha(label), case["alpha"])
        pi = kt.vrf_prove(x, kt.alpha(label))
        ck.eq(f"vrf proof {case['label']}", pi, case["proof"])
        idx = kt.vrf_verify(Y, kt.alpha(label), pi)
        ck.eq(f"vrf index {case['label']}", idx, case["index"])
        index_of[label] = (idx, pi)

    bob_list = bytes.fromhex(v["bob_device_list"])
    chains, leaves, entries, heads, log_leaves = {}, {}, [], [], []
    leaves_at = []
    for e, (pubs, want) in enumerate(zip(scenario(bob_list), v["epochs"])):
        got = []
        for label, value in pubs:
            idx, _ = index_of[label]
            n, prev = chains.get(label, (0, kt.ZERO))
            c = kt.chain(n + 1, e, value, prev)
            chains[label] = (n + 1, c)
            leaves[idx] = kt.leaf(idx, c)
            got.append({"label": label.hex(), "value": value.hex(), "version": n + 1, "chain": c.hex()})
        ck.eq(f"epoch {e} publications", sorted(got, key=lambda p: p["label"]),
              sorted(want["publications"], key=lambda p: p["label"]))
        root = kt.root(leaves)
        leaves_at.append(dict(leaves))
        ck.eq(f"epoch {e} map root", root, want["map_root"])
        ent = kt.entry(e, T0 + 5000 * e, root)
        ck.eq(f"epoch {e} entry", ent, want["entry"])
        log_leaves.append(kt.log_leaf(ent))
        log_root = kt.mth(log_leaves)
        ck.eq(f"epoch {e} log root", log_root, want["log_root"])
        signed = ent + log_root
        head = signed + labelled_sign(dseed, kt.EPOCH_HEAD, signed) + kt.encode_hashes(kt.log_path(e, log_leaves))
        ck.eq(f"epoch {e} head", head, want["head"])
        ck.eq(f"epoch {e} head verifies", kt.verify_head(dpub, head)[0], e)
        heads.append((ent, log_root))
    map3, root3 = leaves_at[3], heads[3][0][17:49]

    for case in v["lookups"]:
        label = bytes.fromhex(case["label"])
        idx, pi = index_of[label]
        if label in chains:
            n, c = chains[label]
            hist = [p for ep in v["epochs"] for p in ep["publications"] if p["label"] == case["label"]]
            prev = bytes.fromhex(hist[-2]["chain"]) if n >= 2 else kt.ZERO
            ep = max(i for i, ep in enumerate(v["epochs"]) for p in ep["publications"] if p["label"] == case["label"])
            proof = b"\x01" + pi + u64be(n) + u64be(ep) + bytes.fromhex(hist[-1]["value"]) + prev + kt.path_for(idx, map3)
        else:
            proof = b"\x00" + pi + kt.path_for(idx, map3)
        ck.eq(f"lookup proof {case['label']}", proof, case["proof"])
        res = kt.verify_lookup(Y, label, proof, root3, case["head_epoch"])
        want = case["result"]
        if res is None:
            ck.eq("absent", want["present"], False)
        else:
            ck.eq(f"lookup result {case['label']}", [res[0], res[1], res[2].hex(), res[3].hex()],
                  [want["version"], want["epoch"], want["value"], want["chain"]])

    for case in v["histories"]:
        label, first = bytes.fromhex(case["label"]), case["first"]
        idx, pi = index_of[label]
        hist = [(i, p) for i, ep in enumerate(v["epochs"]) for p in ep["publications"] if p["label"] == case["label"]]
        prior = bytes.fromhex(hist[first - 2][1]["chain"]) if first > 1 else kt.ZERO
        body = b"".join(u64be(i) + bytes.fromhex(p["value"]) for i, p in hist[first - 1:])
        proof = pi + u64be(first) + prior + u16be(len(hist) - first + 1) + body + kt.path_for(idx, map3)
        ck.eq(f"history proof {case['label']} from {first}", proof, case["proof"])
        out = kt.verify_history(Y, label, proof, root3, case["head_epoch"])
        ck.eq(f"history {case['label']}", [[a, b, c.hex(), d.hex()] for a, b, c, d in out],
              [[w["version"], w["epoch"], w["value"], w["chain"]] for w in case["versions"]])

    inc = v["inclusion"]
    path = kt.log_path(inc["entry_epoch"], log_leaves[:inc["head_epoch"] + 1])
    proof = u64be(inc["entry_epoch"]) + u64be(inc["head_epoch"] + 1) + kt.encode_hashes(path)
    ck.eq("inclusion proof", proof, inc["proof"])
    i, n, hs = kt.decode_sized(proof)
    kt.verify_inclusion(i, n, hs, log_leaves[i], heads[inc["head_epoch"]][1])
    for con in v["consistency"]:
        old, new = con["old_epoch"] + 1, con["new_epoch"] + 1
        hs = kt.log_subproof(old, log_leaves[:new], True)
        proof = u64be(old) + u64be(new) + kt.encode_hashes(hs)
        ck.eq(f"consistency {old}->{new}", proof, con["proof"])
        kt.verify_consistency(old, new, hs, heads[old - 1][1], heads[new - 1][1])
        ck.eq(f"consistency {old}->{new} verifies", True, True)

    for r in v["rejects"]:
        b = bytes.fromhex(r["bytes"])
        try:
            if r["kind"] == "lookup":
                ent = heads[r["head_epoch"]][0]
                kt.verify_lookup(Y, bytes.fromhex(r["label"]), b, ent[17:49], r["head_epoch"])
            elif r["kind"] == "history":
                kt.verify_history(Y, bytes.fromhex(r["label"]), b, root3, r["head_epoch"])
            elif r["kind"] == "head":
                kt.verify_head(dpub, b)
            elif r["kind"] == "consistency":
                old, new, hs = kt.decode_sized(b)
                kt.verify_consistency(old, new, hs, heads[r["old_epoch"]][1], heads[r["new_epoch"]][1])
            elif r["kind"] == "inclusion":
                i, n, hs = kt.decode_sized(b)
                kt.verify_inclusion(i, n, hs, kt.log_leaf(heads[r["entry_epoch"]][0]), heads[r["head_epoch"]][1])
            got = "accepted"
        except kt.KtError as e:
            got = str(e)
        ck.eq(f"refused: {r['why']}", got, r["error"])
    return ck.report()

if __name__ == "__main__":
    import sys
    sys.exit(0 if main() else 1)
