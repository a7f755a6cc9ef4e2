"""§3 X3DH vectors."""
from prims import *
from identity import check_identity_dict, SIGNED_PREKEY, verify_identity
import x3dh

def main():
    d = load("x3dh.json"); c = Checker("x3dh.json")
    cases = [(f"case{n}", v) for n, v in enumerate(d["cases"])]
    cases += [(f"last_resort_case{n}", v) for n, v in enumerate(d.get("last_resort_cases", []))]
    for w, v in cases:
        ik_a = check_identity_dict(c, w + ".initiator", v["initiator"])
        ik_b = check_identity_dict(c, w + ".responder", v["responder"])
        spk = v["signed_prekey"]; otp = v["one_time_prekey"]; lr = v.get("last_resort_prekey")
        # §3.5: the one-time prekey if the bundle has one, else the last-resort one.
        extra_key = otp or lr
        c.eq(w + ".spk.public", x25519_pub(H(spk["secret"])), spk["public"])
        sig = labelled_sign(H(v["responder"]["ed25519_seed"]), SIGNED_PREKEY,
                            u32be(spk["id"]) + u64be(spk["created_at"]) + H(spk["public"]))
        c.eq(w + ".spk.signature", sig, spk["signature"])
        if extra_key: c.eq(w + ".extra.public", x25519_pub(H(extra_key["secret"])), extra_key["public"])
        c.eq(w + ".ephemeral_public", x25519_pub(H(v["ephemeral_secret"])), v["ephemeral_public"])
        a_addr = x3dh.addr(H(v["initiator_address"]["account_id"]), v["initiator_address"]["device_id"])
        b_addr = x3dh.addr(H(v["responder_address"]["account_id"]), v["responder_address"]["device_id"])
        parties = x3dh.transcript(ik_a, a_addr, ik_b, b_addr)
        opk_pub = H(extra_key["public"]) if extra_key else None
        dhs, (ikm, info, rk, ad) = x3dh.initiate(H(v["initiator"]["x25519_secret"]), parties,
                                                 H(v["ephemeral_secret"]), ik_b[32:64], H(spk["public"]), opk_pub)
        for i, name in enumerate(["dh1", "dh2", "dh3", "dh4"]):
            c.eq(w + "." + name, dhs[i] if i < len(dhs) else None, v[name])
        c.eq(w + ".hkdf_ikm", ikm, v["hkdf_ikm"]); c.eq(w + ".hkdf_info", info, v["hkdf_info"])
        c.eq(w + ".root_key", rk, v["root_key"]); c.eq(w + ".associated_data", ad, v["associated_data"])
        c.eq(w + ".ad len", len(ad), 325)
        # responder side
        rdhs, (_, _, rrk, rad) = x3dh.respond(H(spk["secret"]), H(v["responder"]["x25519_secret"]),
                                              H(extra_key["secret"]) if extra_key else None, ik_a[32:64], H(v["ephemeral_public"]), parties)
        c.eq(w + ".responder root_key", rrk, v["root_key"]); c.eq(w + ".responder ad", rad, v["associated_data"])
        # postcard forms
        bundle = x3dh.bundle_postcard(ik_b, (spk["id"], spk["created_at"], H(spk["public"]), H(spk["signature"])),
                                      (otp["id"], H(otp["public"])) if otp else None,
                                      (lr["id"], H(lr["public"])) if lr else None)
        c.eq(w + ".bundle_postcard", bundle, v["bundle_postcard"])
        extra = ("OneTime", otp["id"]) if otp else (("LastResort", lr["id"]) if lr else None)
        c.eq(w + ".initial_header_postcard",
             x3dh.initial_header_postcard(ik_a, H(v["ephemeral_public"]), spk["id"], extra), v["initial_header_postcard"])
    return c.report()

if __name__ == "__main__": main()
