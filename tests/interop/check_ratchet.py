"""§4 ratchet.json."""
from prims import *
import ratchet

def main():
    d = load("ratchet.json"); c = Checker("ratchet.json"); ini = d["initial"]
    c.eq("bob spk public", x25519_pub(H(ini["bob_signed_prekey_private"])), ini["bob_signed_prekey_public"])
    c.eq("alice first public", x25519_pub(H(ini["alice_first_ratchet_private"])), ini["alice_first_ratchet_public"])
    sk, ad = H(ini["x3dh_root_key"]), H(ini["associated_data"])
    c.eq("AD length", len(ad), 325)
    s = {"alice": ratchet.Session.initiator(sk, ad, H(ini["bob_signed_prekey_public"]), H(ini["alice_first_ratchet_private"])),
         "bob": ratchet.Session.responder(sk, ad, H(ini["bob_signed_prekey_private"]))}
    c.eq("alice root key", s["alice"].rk, ini["alice_root_key"]); c.eq("alice ck", s["alice"].cks, ini["alice_sending_chain_key"])
    for i, st in enumerate(d["steps"]):
        w = f"step{i}({st['by']} {st['op']})"; me = s[st["by"]]
        if st["op"] == "encrypt":
            np_ = H(st["new_ratchet_private"]) if st["new_ratchet_private"] else None
            msg = me.encrypt(H(st["plaintext"]), np_)
            t = me.trace
            c.eq(w + " DH step taken iff new_ratchet_private", t["took_step"], np_ is not None)
            for k in ("chain_key", "message_number", "message_key", "nonce", "header", "aead_associated_data", "message"):
                c.eq(f"{w}.{k}", t[k], st[k])
            c.eq(w + ".root_key_after", me.rk, st["root_key_after"]); c.eq(w + ".sending_chain_key_after", me.cks, st["sending_chain_key_after"])
        else:
            pt = me.decrypt(H(st["message"]))
            c.eq(w + ".plaintext", pt, st["plaintext"])
            c.eq(w + ".root_key_after", me.rk, st["root_key_after"])
            c.eq(w + ".receiving_chain_key_after", me.ckr, st["receiving_chain_key_after"])
            c.eq(w + ".receiving_index_after", me.nr, st["receiving_index_after"])
            c.eq(w + ".skipped_keys_after", len(me.skipped), st["skipped_keys_after"])
            # replay must fail and leave the state unchanged
            try: me.decrypt(H(st["message"])); got = "accepted"
            except ratchet.RatchetError as e: got = str(e)
            c.eq(w + " replay refused", got, "DuplicateMessage")
            # the same bytes under the pre-key type byte must not decrypt (type byte in AD)
    # type byte: re-encrypt nothing; instead check that a plain message presented as pre-key fails
    return c.report()

if __name__ == "__main__": main()
