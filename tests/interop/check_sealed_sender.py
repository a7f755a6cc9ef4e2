"""§5 sealed sender vectors."""
from prims import *
from identity import check_identity_dict
import sealed, x3dh

def main():
    d = load("sealed_sender.json"); c = Checker("sealed_sender.json")
    for n, v in enumerate(d["cases"]):
        w = f"case{n}"
        ik_a = check_identity_dict(c, w + ".sender", v["sender"])
        ik_b = check_identity_dict(c, w + ".recipient", v["recipient"])
        addr_a = x3dh.addr(H(v["sender_address"]["account_id"]), v["sender_address"]["device_id"])
        tr = {}
        env = sealed.seal(ik_a, H(v["sender"]["x25519_secret"]), addr_a, ik_b, H(v["inner"]), H(v["ephemeral_secret"]), tr)
        for k, val in tr.items(): c.eq(w + "." + k, val, v[k])
        c.eq(w + ".envelope", env, v["envelope"])
        try:
            s, a, inner = sealed.open_(ik_b, H(v["recipient"]["x25519_secret"]), H(v["envelope"]))
            c.eq(w + ".open sender", s, ik_a); c.eq(w + ".open addr", a, addr_a); c.eq(w + ".open inner", inner, v["inner"])
        except sealed.SealedError as e:
            c.eq(w + ".open", str(e), "opened")
    return c.report()

if __name__ == "__main__": main()
