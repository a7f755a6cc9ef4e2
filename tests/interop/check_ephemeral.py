"""§4.12 ephemeral.json."""
from prims import *
import ratchet
from check_padding import pad, unpad

def seal_eph(ek, ad, rpub, sent_at_ms, nonce, padded):
    hdr = b"\x01" + rpub + u64be(sent_at_ms) + nonce
    aad = ad + b"\x03" + hdr
    return aad, hdr + aead_seal(ek, nonce, aad, padded)

def open_eph(ek, ad, m):
    if len(m) < 69: raise ValueError("Truncated")
    if m[0] != 1: raise ValueError("UnsupportedVersion")
    return unpad(aead_open(ek, m[41:53], ad + b"\x03" + m[:53], m[53:]))

def main():
    d = load("ephemeral.json"); c = Checker("ephemeral.json")
    sk, ad = H(d["x3dh_root_key"]), H(d["associated_data"])
    spk = H(d["bob_signed_prekey_private"]); spk_pub = x25519_pub(spk)
    a, b = d["epochs"]
    alice_priv = H(a["ratchet_private"]); alice_pub = x25519_pub(alice_priv)
    # Alice's epoch: her first sending chain
    rk_a, ck0_a = ratchet.kdf_rk(sk, x25519(alice_priv, spk_pub))
    # Bob's root key after receiving Alice's first message (new peer ratchet key)
    rk_b, ckr_b = ratchet.kdf_rk(sk, x25519(spk, alice_pub))
    c.eq("bob_root_key_after_receiving", rk_b, d["bob_root_key_after_receiving"])
    bob_priv = H(b["ratchet_private"]); bob_pub = x25519_pub(bob_priv)
    _, ck0_b = ratchet.kdf_rk(rk_b, x25519(bob_priv, alice_pub))
    for e, ck0, rpub in ((a, ck0_a, alice_pub), (b, ck0_b, bob_pub)):
        w = e["by"]
        c.eq(w + ".chain_key_0", ck0, e["chain_key_0"])
        ek = hmac256(ck0, ratchet.EPH_LABEL)
        c.eq(w + ".ephemeral_key", ek, e["ephemeral_key"])
        padded = H(e["padded_plaintext"]); pt = unpad(padded)
        c.eq(w + ".padded", pad(pt), padded)
        aad, msg = seal_eph(ek, ad, rpub, e["sent_at_ms"], H(e["nonce"]), padded)
        c.eq(w + ".aead_associated_data", aad, e["aead_associated_data"])
        c.eq(w + ".message", msg, e["message"]); c.eq(w + ".pairwise_inner", b"\x03" + msg, e["pairwise_inner"])
    # receivers: Bob keeps Alice's epoch key; Alice derives Bob's epoch temporarily from her RK
    c.eq("bob opens alice", open_eph(hmac256(ckr_b, ratchet.EPH_LABEL), ad, H(a["message"])), unpad(H(a["padded_plaintext"])))
    _, tmp = ratchet.kdf_rk(rk_a, x25519(alice_priv, bob_pub))
    c.eq("alice opens bob", open_eph(hmac256(tmp, ratchet.EPH_LABEL), ad, H(b["message"])), unpad(H(b["padded_plaintext"])))
    return c.report()

if __name__ == "__main__": main()
