"""§8.7-8.10 group_state.json: every change re-encoded from its fields, its
signature verified with raw Ed25519, its hash recomputed, applied to its
parent with 8.9's table, and the snapshot re-encoded; refused changes give
the named error; each fork's winner is the sibling of lowest rank (8.10), and each
overrule's winner the lowest-ranked child not overruled: another branch removes its
author, the most senior remover's overrule first (an overruled child's are void)."""
from prims import *
import group_state as gs

def as_change_fields(ch):
    a = dict(ch["body"])
    for key in ("members",):
        if key in a: a[key] = [{"account": H(m["account"]), "username": m["username"]} for m in a[key]]
    if "accounts" in a: a["accounts"] = [H(x) for x in a["accounts"]]
    if "account" in a: a["account"] = H(a["account"])
    return a

def same_state(s, j):
    return (s["group"] == H(j["group"]) and s["version"] == j["version"] and s["head"] == H(j["head"])
            and s["name"] == j["name"] and s["members_may_rename"] == j["members_may_rename"]
            and s["rotation_point"] == j["rotation_point"]
            and [(m["account"], m["username"], m["admin_since"]) for m in s["members"]]
               == [(H(m["account"]), m["username"], m["admin_since"]) for m in j["members"]])

def main():
    d = load("group_state.json"); c = Checker("group_state.json")
    c.eq("labels", (d["labels"]["signature"], d["labels"]["hash"]),
         (gs.SIG_LABEL.decode(), gs.HASH_LABEL.decode()))
    states, state = [], None
    for i, step in enumerate(d["chain"]):
        ch, w = step["change"], f"chain[{i}] ({step['change']['what']})"
        raw = H(ch["hex"])
        body = gs.encode_body(H(ch["group"]), ch["version"], H(ch["parent"]), H(ch["author"]), as_change_fields(ch))
        c.eq(w + " body re-encoded", b"\x01" + body + H(ch["signature"]), raw)
        dec = gs.decode(raw)
        try: gs.verify(dec, H(ch["author_identity"])); sig_ok = True
        except gs.Refused: sig_ok = False
        c.eq(w + " signature verifies", sig_ok, True)
        c.eq(w + " hash", dec["hash"], ch["hash"])
        state = gs.apply(state, dec)
        c.eq(w + " state after", same_state(state, step["state"]), True)
        c.eq(w + " snapshot bytes", gs.encode_state(state), step["state"]["hex"])
        states.append(state)
    for j, bad in enumerate(d["refused"]):
        w = f"refused[{j}] ({bad['what']})"
        try:
            dec = gs.decode(H(bad["hex"])); gs.verify(dec, H(bad["author_identity"]))
            gs.apply(states[bad["applied_to"]], dec); got = "accepted"
        except gs.Refused as e: got = str(e)
        c.eq(w, got, bad["error"])
    for f, fork in enumerate(d["forks"]):
        parent = states[fork["parent_version"]]; ranked = []
        for k, ch in enumerate(fork["changes"]):
            dec = gs.decode(H(ch["hex"])); gs.verify(dec, H(ch["author_identity"])); gs.apply(parent, dec)
            c.eq(f"forks[{f}][{k}] hash", dec["hash"], ch["hash"]); ranked.append(gs.rank(parent, dec))
        c.eq(f"forks[{f}] winner = lowest rank ({fork['what']})", min(ranked)[3], H(fork["winner"]))
    for o_i, o in enumerate(d["overrules"]):
        parent = states[o["parent_version"]]; firsts = []; authors = []; removed = []
        for b_i, branch in enumerate(o["branches"]):
            state, gone = parent, []
            for k, ch in enumerate(branch):
                dec = gs.decode(H(ch["hex"])); gs.verify(dec, H(ch["author_identity"]))
                c.eq(f"overrules[{o_i}][{b_i}][{k}] parent", dec["parent"], state["head"])
                # The remover's standing where he signed, on this branch.
                if dec["action"]["action"] == "Remove":
                    gone += [(a, gs.rank(state, dec)[:3]) for a in dec["action"]["accounts"]]
                state = gs.apply(state, dec)
                c.eq(f"overrules[{o_i}][{b_i}][{k}] hash", dec["hash"], ch["hash"])
                if k == 0: firsts.append(gs.rank(parent, dec)); authors.append(dec["author"])
            removed.append(gone)
        # 8.10: a child is overruled when another branch removes its author;
        # overrules take effect most senior remover first, those of one
        # standing together, and an overruled child's own overrules are void.
        n = len(firsts)
        edges = sorted((s, j, i) for j in range(n) for (a, s) in removed[j] for i in range(n) if i != j and a == authors[i])
        out = set()
        for s in sorted({e[0] for e in edges}):
            out |= {i for (t, j, i) in edges if t == s and j not in out}
        free = [i for i in range(n) if i not in out] or list(range(n))
        best = min(free, key=lambda i: firsts[i])
        c.eq(f"overrules[{o_i}] winner ({o['what']})", firsts[best][3], H(o["winner"]))
        c.eq(f"overrules[{o_i}] head", H(o["branches"][best][-1]["hash"]), H(o["head"]))
    return c.report()

if __name__ == "__main__": main()
