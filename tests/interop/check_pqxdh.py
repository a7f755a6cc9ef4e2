"""§3.9-3.10 and the 0x05 fields of §4.11: pqxdh.json, recomputed from the spec.

The pinned `cryptography` has no ML-KEM.Encaps_internal(ek, m), so the ciphertext is not rebuilt
from m: it is decapsulated with the seed-derived key (which must give the vector's secret), and the
secret is also checked against FIPS 203's K = G(m || H(ek))[..32]."""
import hashlib
from prims import *
from identity import public_identity, verify_identity, SIGNED_PREKEY
import x3dh, pqxdh, kem
from pairwise import prekey_fields, PairwiseError

def encaps_secret(ek, m): return hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()[:32]

def main():
    d = load("pqxdh.json"); c = Checker("pqxdh.json")
    seen = set()
    for n, v in enumerate(d["cases"]):
        w = f"case{n}"
        ik = {}
        for who in ("initiator", "responder"):
            p = v[who]; ik[who] = public_identity(H(p["ed25519_seed"]), H(p["x25519_secret"]))
            c.eq(f"{w}.{who}.public_identity", ik[who], p["public_identity"]); c.eq(f"{w}.{who} binding", verify_identity(ik[who]), True)
        ed_b = H(v["responder"]["ed25519_seed"])
        spk = v["signed_prekey"]; otp = v["one_time_prekey"]
        c.eq(w + ".spk.public", x25519_pub(H(spk["secret"])), spk["public"])
        c.eq(w + ".spk.signature", labelled_sign(ed_b, SIGNED_PREKEY, u32be(spk["id"]) + u64be(spk["created_at"]) + H(spk["public"])), spk["signature"])
        if otp: c.eq(w + ".otp.public", x25519_pub(H(otp["secret"])), otp["public"])
        # 3.9: every served KEM prekey, public key from d||z, signature over kind || id || created_at || ek
        served = {}
        for field, kind in (("kem_one_time_prekey", kem.ONE_TIME), ("kem_last_resort_prekey", kem.LAST_RESORT)):
            k = v[field]
            if k is None: continue
            c.eq(f"{w}.{field}.kind", k["kind"], kind)
            pk = kem.public_bytes(H(k["seed_d_z"])); c.eq(f"{w}.{field}.public (KeyGen_internal(d, z))", pk, k["public"])
            c.eq(f"{w}.{field}.signature", kem.sign_prekey(ed_b, kind, k["id"], k["created_at"], pk), k["signature"])
            c.eq(f"{w}.{field} verifies", kem.verify_prekey(ik["responder"][:32], kind, k["id"], k["created_at"], pk, H(k["signature"])), True)
            other = kem.LAST_RESORT if kind == kem.ONE_TIME else kem.ONE_TIME
            c.eq(f"{w}.{field} does not verify as the other kind", kem.verify_prekey(ik["responder"][:32], other, k["id"], k["created_at"], pk, H(k["signature"])), False)
            served[kind] = (k, pk)
        # 3.10 initiator step 1: the one-time KEM prekey if served, else the last-resort one
        want_kind = kem.ONE_TIME if kem.ONE_TIME in served else kem.LAST_RESORT
        c.eq(w + ".kem_used (3.10 step 1)", [v["kem_used"]["kind"], v["kem_used"]["id"]], [want_kind, served[want_kind][0]["id"]])
        kk, kem_pk = served[want_kind]; kem_kind, kem_id = want_kind, kk["id"]
        seen.add((otp is not None, kem_kind))
        ct, ss = H(v["kem_ciphertext"]), H(v["kem_shared_secret"])
        c.eq(w + ".ciphertext length", len(ct), 1088)
        c.eq(w + ".Decaps(dk, KEM_CT) = kem_shared_secret", kem.decapsulate(H(kk["seed_d_z"]), ct), ss)
        c.eq(w + ".kem_shared_secret = G(m || H(ek))[..32]", encaps_secret(kem_pk, H(v["encapsulation_m"])), ss)
        c.eq(w + ".ephemeral_public", x25519_pub(H(v["ephemeral_secret"])), v["ephemeral_public"])
        a_addr = x3dh.addr(H(v["initiator_address"]["account_id"]), v["initiator_address"]["device_id"])
        b_addr = x3dh.addr(H(v["responder_address"]["account_id"]), v["responder_address"]["device_id"])
        parties = x3dh.transcript(ik["initiator"], a_addr, ik["responder"], b_addr)
        opk = H(otp["public"]) if otp else None
        dhs, (ikm, info, rk, ad) = pqxdh.initiate(H(v["initiator"]["x25519_secret"]), parties, H(v["ephemeral_secret"]),
                                                  ik["responder"][32:64], H(spk["public"]), opk, kem_kind, kem_id, kem_pk, ss, ct)
        for i, name in enumerate(["dh1", "dh2", "dh3", "dh4"]):
            c.eq(w + "." + name, dhs[i] if i < len(dhs) else None, v[name])
        c.eq(w + ".hkdf_ikm", ikm, v["hkdf_ikm"]); c.eq(w + ".hkdf_ikm length", len(ikm), 192 if otp else 160)
        c.eq(w + ".hkdf_info", info, v["hkdf_info"]); c.eq(w + ".hkdf_info length", len(info), 2692 if otp else 2660)
        c.eq(w + ".root_key", rk, v["root_key"])
        c.eq(w + ".associated_data", ad, v["associated_data"]); c.eq(w + ".AD length", len(ad), 358)
        # responder: decapsulates with its own key
        rss = kem.decapsulate(H(kk["seed_d_z"]), ct)
        _, (_, _, rrk, rad) = pqxdh.respond(H(spk["secret"]), H(v["responder"]["x25519_secret"]), H(otp["secret"]) if otp else None,
                                             ik["initiator"][32:64], H(v["ephemeral_public"]), parties, kem_kind, kem_id, kem_pk, rss, ct)
        c.eq(w + ".responder root_key", rrk, v["root_key"]); c.eq(w + ".responder AD", rad, v["associated_data"])
        # a flipped ciphertext bit decapsulates (implicit rejection) to another secret: another root key
        bad = bytearray(ct); bad[100] ^= 1; bad = bytes(bad)
        bss = kem.decapsulate(H(kk["seed_d_z"]), bad)
        _, (_, _, brk, _) = pqxdh.respond(H(spk["secret"]), H(v["responder"]["x25519_secret"]), H(otp["secret"]) if otp else None,
                                           ik["initiator"][32:64], H(v["ephemeral_public"]), parties, kem_kind, kem_id, kem_pk, bss, bad)
        c.eq(w + " modified KEM_CT gives another root key", brk != rk and bss != ss, True)
        # 4.11 type 0x05 fields
        extra = ("OneTime", otp["id"]) if otp else None
        fields = pqxdh.hybrid_header_wire(ik["initiator"], H(v["ephemeral_public"]), spk["id"], extra, kem_kind, kem_id, ct)
        c.eq(w + ".hybrid_prekey_fields", fields, v["hybrid_prekey_fields"])
        parsed, rest = prekey_fields(5, fields + b"RATCHET")
        c.eq(w + " parsed 0x05 fields", list(parsed), [ik["initiator"], H(v["ephemeral_public"]), spk["id"], extra, kem_kind, kem_id, ct])
        c.eq(w + " parsed rest", rest, b"RATCHET")
        for what, b, want in [("cut in the KEM id", fields[:len(fields) - 1088 - 2], 'Malformed("truncated hybrid pre-key message")'),
                              ("KEM kind 3", fields[:len(fields) - 1093] + b"\x03" + fields[len(fields) - 1092:], 'Malformed("unknown KEM prekey kind")'),
                              ("ciphertext cut", fields[:-1], 'Malformed("truncated KEM ciphertext in hybrid pre-key message")')]:
            try: prekey_fields(5, b); got = "accepted"
            except PairwiseError as e: got = str(e)
            c.eq(f"{w} refused: {what}", got, want)
    c.eq("cases cover one-time/last-resort KEM with and without DH4", seen >= {(True, 1), (False, 2), (True, 2)}, True)
    return c.report()

if __name__ == "__main__": main()
