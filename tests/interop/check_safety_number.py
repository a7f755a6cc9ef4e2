"""§7 safety numbers."""
from prims import *
from identity import check_identity_dict

def half(stable_id, K):
    h = hashlib.sha512(u16be(1) + b"umbra/v1/fingerprint" + K + stable_id).digest()
    for _ in range(5200):
        h = hashlib.sha512(h + K).digest()
    return b"".join(b"%05d" % (int.from_bytes(h[5*j:5*j+5], "big") % 100000) for j in range(6))

def safety_number(id_l, pi_l, id_r, pi_r):
    a, b = half(id_l, pi_l[:64]), half(id_r, pi_r[:64])
    return min(a, b) + max(a, b)

def main():
    d = load("safety_number.json"); c = Checker("safety_number.json")
    pl = check_identity_dict(c, "local", d["local"]["identity"])
    pr = check_identity_dict(c, "remote", d["remote"]["identity"])
    sn = safety_number(H(d["local"]["stable_id"]), pl, H(d["remote"]["stable_id"]), pr)
    c.eq("digits", sn.decode(), d["digits"])
    c.eq("digits (other side)", safety_number(H(d["remote"]["stable_id"]), pr, H(d["local"]["stable_id"]), pl).decode(), d["digits"])
    disp = " ".join(sn.decode()[i:i+5] for i in range(0, 60, 5))
    c.eq("display", disp, d["display"])
    return c.report()

if __name__ == "__main__": main()
