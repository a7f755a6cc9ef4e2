"""§4.9 session_pickle.json: bob's SessionRecordPickle (format 2, braids of 4.13) read from the spec
alone; alice's next message in each run opens (current first, then archived), as SessionRecord does."""
from prims import *
from postcard import Reader
import session_pickle_read as P, sealed, pairwise, ratchet
from identity import public_identity
from check_padding import unpad

def main():
    d = load("session_pickle.json"); c = Checker("session_pickle.json")
    cur, since, prev = P.read_record(H(d["record_pickle"]))
    c.eq("record: current + 1 archived", len(prev), 1)
    c.eq("current is format 2", cur["format2"], True)
    r = Reader(H(d["bob_identity_postcard"])); ed, xs = r.fixed(32), r.fixed(32)
    me = public_identity(ed, xs)
    sessions = [cur] + [p for p, _ in prev]
    for s in sessions:
        st = s["ratchet"]
        c.eq("braids: own seed drawn or none, epochs >= 1", st.e_own >= 1 and st.e_peer >= 1, True)
        if st.own_seed: c.eq("own seed expands (KeyGen_internal)", len(st.own_public()), 1184)
    for name, want_index in (("next_message", 0), ("archived_message", 1)):
        m = d[name]
        ik_a, addr_a, inner = sealed.open_(me, xs, H(m["envelope"]))
        kind, fields, _ = pairwise.parse_pairwise(inner)
        opened = None
        for i, s in enumerate(sessions):   # SessionRecord::decrypt: current, then archived newest first
            if s["remote_identity"] != ik_a: continue
            body = inner[1:] if kind == "plain" else pairwise.prekey_fields({"prekey": 1, "hybrid": 5}[kind], inner[1:])[1]
            try:
                pt = s["ratchet"].decrypt(body, inner[0]); opened = (i, pt); break
            except ratchet.RatchetError:
                continue
        c.eq(f"{name} opens", opened is not None, True)
        if opened:
            c.eq(f"{name} opens in session {want_index}", opened[0], want_index)
            c.eq(f"{name}.plaintext", unpad(opened[1]), m["plaintext"].encode())
    return c.report()

if __name__ == "__main__": main()
