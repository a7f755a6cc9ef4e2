"""§4.2-4.4 and §4.11: whole pairwise messages (pairwise.json), rebuilt and opened from the spec.
Version 0x02 ratchet messages: every header carries pq_epoch 0 and a key chunk of the sender's
epoch-1 ML-KEM key (4.3, 4.13), the seed of which the sender drew at its first send."""
from prims import *
import ratchet, kem
from pairwise import parse_pairwise
from check_padding import pad

def main():
    d = load("pairwise.json"); c = Checker("pairwise.json")
    for s in d["sessions"]:
        root = H(s["x3dh_root_key"]); chains = {}; eks = {}
        for m in s["messages"]:
            w = m["case"]; t = m["type"]; n = m["message_number"]
            priv, pub = H(m["ratchet_private"]), H(m["ratchet_public"])
            c.eq(w + ".ratchet_public", x25519_pub(priv), m["ratchet_public"])
            # §4.2: a chain starts with KDF_RK over a DH step, then steps by HMAC(CK, 0x02).
            if n == 0:
                root, ck = ratchet.kdf_rk(root, ratchet.dh(priv, H(m["their_ratchet_public"])))
            else:
                ck = ratchet.next_ck(chains[m["sender"]])
            chains[m["sender"]] = ck
            c.eq(w + ".root_key", root, m["root_key"]); c.eq(w + ".chain_key", ck, m["chain_key"])
            c.eq(w + ".message_key_seed", ratchet.seed(ck), m["message_key_seed"])
            mk, nonce = ratchet.message_key(ck)
            c.eq(w + ".message_key", mk, m["message_key"]); c.eq(w + ".nonce", nonce, m["nonce"])
            # kem_seed is the sender's epoch-1 seed on each of its messages (drawn at its first send)
            eks.setdefault(m["sender"], (m["kem_seed"], kem.public_bytes(H(m["kem_seed"]))))
            c.eq(w + " the sender's epoch-1 KEM seed is the one of its first message", m["kem_seed"], eks[m["sender"]][0])
            i = m["ek_chunk_index"]; ek = eks[m["sender"]][1]
            sl = ratchet.slot(1, 1, i, ek[128 * i:128 * i + ratchet.chunk_len(1, i)])
            hdr = ratchet.header(pub, m["previous_chain_length"], n, 0, sl)
            c.eq(w + ".header", hdr, m["header"])
            ad = H(s["associated_data"]) + bytes([t, ratchet.VERSION]) + hdr
            c.eq(w + ".aead_associated_data", ad, m["aead_associated_data"])
            c.eq(w + ".padded_plaintext", pad(H(m["plaintext"])), m["padded_plaintext"])
            c.eq(w + ".ciphertext", aead_seal(mk, nonce, ad, H(m["padded_plaintext"])), m["ciphertext"])
            initial = H(m["initial_header"]) if m.get("initial_header") else b""
            whole = bytes([t]) + initial + bytes([ratchet.VERSION]) + hdr + H(m["ciphertext"])
            c.eq(w + ".message", whole, m["message"])
            kind, fields, (parsed_hdr, parsed_ct) = parse_pairwise(H(m["message"]))
            c.eq(w + ".parsed kind", kind, {1: "prekey", 2: "plain"}[t])
            c.eq(w + ".parsed header", parsed_hdr, m["header"])
            c.eq(w + ".opens", aead_open(mk, nonce, ad, parsed_ct), m["padded_plaintext"])
            if fields:
                c.eq(w + ".initiator identity", fields[0], s["initiator_identity"])
                c.eq(w + ".ephemeral", fields[1], s["ephemeral_public"])
                c.eq(w + ".signed prekey id", fields[2], s["signed_prekey"]["id"])
                otp, lr = s["one_time_prekey"], s["last_resort_prekey"]
                want = ("OneTime", otp["id"]) if otp else (("LastResort", lr["id"]) if lr else None)
                c.eq(w + ".extra prekey", fields[3], want)
    return c.report()

if __name__ == "__main__": main()
