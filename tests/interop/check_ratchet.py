"""§4 ratchet.json (version 0x02: 4.2 hybrid KDF_RK, 4.3 header and chunk slot, 4.6/4.7, 4.13 braids)."""
import hashlib
from prims import *
import ratchet, kem

def encaps_secret(ek, m):
    """FIPS 203 ML-KEM.Encaps_internal's shared key: (K, r) = G(m || H(ek)), K its first 32 bytes."""
    return hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()[:32]

def braids(me):
    """The 4.10 `braids_after` record of one party's 4.13 state."""
    own = "secret_ready" if me.own_ready is not None else ("awaiting_ciphertext" if me.own_seed is not None else "no_key_pair")
    peer = {"collecting": "collecting", "complete": "key_complete", "encapsulated": "encapsulated"}[me.peer[0]]
    return {"e_own": me.e_own, "e_peer": me.e_peer, "own_phase": own, "peer_phase": peer}

class Script(ratchet.Rng):
    """Every draw of one step, from the vector; a draw the vector does not list is a mismatch.
    The pinned `cryptography` has no Encaps_internal(ek, m), so an encapsulation's ciphertext is
    the vector's `encapsulated_ciphertext`, checked three ways: the secret against G(m || H(ek)) from
    m, the receiver's decapsulation (with the key its own vector seed derives) against that secret,
    and the bytes against the chunks the sender's messages carry for that epoch."""
    def __init__(self, c, w, st, cts, by, peer):
        self.c, self.w, self.st, self.cts, self.by, self.peer, self.drew = c, w, st, cts, by, peer, set()
    def dh(self):
        self.c.eq(self.w + " DH draw listed", self.st["new_ratchet_private"] is not None, True)
        return H(self.st["new_ratchet_private"] or "00" * 32)
    def kem_seed(self):
        self.drew.add("seed"); self.c.eq(self.w + " KEM seed draw listed", self.st["new_kem_seed"] is not None, True)
        return H(self.st["new_kem_seed"] or "00" * 64)
    def encaps(self, ek, epoch):
        self.drew.add("m"); m, ct = self.st["encapsulation_m"], self.st.get("encapsulated_ciphertext")
        self.c.eq(self.w + " encapsulation draw listed", m is not None, True)
        self.c.eq(self.w + " encapsulated_ciphertext given", ct is not None, True)
        if m is None or ct is None: return bytes(32), bytes(1088)
        ct = H(ct)
        ss = encaps_secret(ek, H(m))
        self.c.eq(self.w + ".encapsulated_secret = G(m || H(ek))[..32]", ss, self.st["encapsulated_secret"])
        self.c.eq(self.w + " ciphertext is 1088 bytes", len(ct), kem.CIPHERTEXT_LEN)
        # the receiver holds the key of this epoch, from its own new_kem_seed
        self.c.eq(self.w + " receiver's epoch is the one encapsulated to", self.peer.e_own, epoch)
        self.c.eq(self.w + " receiver drew its key pair", self.peer.own_seed is not None, True)
        if self.peer.own_seed is not None:
            self.c.eq(self.w + " Decaps(dk from the receiver's seed, encapsulated_ciphertext) = encapsulated_secret",
                      kem.decapsulate(self.peer.own_seed, ct), self.st["encapsulated_secret"])
            self.c.eq(self.w + " the receiver's seed derives the key encapsulated to", kem.public_bytes(self.peer.own_seed), ek)
        chunks = self.cts.get((self.by, epoch), {})
        carried = b"".join(chunks.get(i, b"") for i in range(ratchet.CT_CHUNKS))
        self.c.eq(self.w + " encapsulated_ciphertext = the chunks its sender's messages carry", carried, ct)
        return ss, ct

def main():
    d = load("ratchet.json"); c = Checker("ratchet.json"); ini = d["initial"]
    c.eq("bob spk public", x25519_pub(H(ini["bob_signed_prekey_private"])), ini["bob_signed_prekey_public"])
    c.eq("alice first public", x25519_pub(H(ini["alice_first_ratchet_private"])), ini["alice_first_ratchet_public"])
    sk, ad = H(ini["x3dh_root_key"]), H(ini["associated_data"])
    c.eq("AD length", len(ad), 325)
    # the ciphertext chunks each side sent, by (sender, epoch): see Script
    cts = {}
    for st in d["steps"]:
        if st["op"] == "encrypt":
            ch = ratchet.parse_slot(H(st["header"])[44:])
            if ch and ch[0] == 2: cts.setdefault((st["by"], ch[1]), {})[ch[2]] = ch[3]
    s = {"alice": ratchet.Session.initiator(sk, ad, H(ini["bob_signed_prekey_public"]), H(ini["alice_first_ratchet_private"])),
         "bob": ratchet.Session.responder(sk, ad, H(ini["bob_signed_prekey_private"]))}
    c.eq("alice root key", s["alice"].rk, ini["alice_root_key"]); c.eq("alice ck", s["alice"].cks, ini["alice_sending_chain_key"])
    hybrid_steps, mixing_receives = 0, 0
    for i, st in enumerate(d["steps"]):
        w = f"step{i}({st['by']} {st['op']})"; me = s[st["by"]]
        other = s["bob" if st["by"] == "alice" else "alice"]
        if st["op"] == "encrypt":
            rng = Script(c, w, st, cts, st["by"], other)
            msg = me.encrypt(H(st["plaintext"]), rng=rng)
            t = me.trace
            c.eq(w + " DH step taken iff new_ratchet_private", t["took_step"], st["new_ratchet_private"] is not None)
            c.eq(w + " KEM seed drawn iff new_kem_seed", "seed" in rng.drew, st["new_kem_seed"] is not None)
            c.eq(w + " encapsulated iff encapsulation_m", "m" in rng.drew, st["encapsulation_m"] is not None)
            c.eq(w + " encapsulated iff encapsulated_ciphertext", "m" in rng.drew, st.get("encapsulated_ciphertext") is not None)
            for k in ("chain_key", "message_number", "message_key", "nonce", "header", "aead_associated_data", "message", "kem_secret_mixed"):
                c.eq(f"{w}.{k}", t[k], st[k])
            if t["kem_secret_mixed"]: hybrid_steps += 1
            c.eq(w + ".root_key_after", me.rk, st["root_key_after"]); c.eq(w + ".sending_chain_key_after", me.cks, st["sending_chain_key_after"])
        else:
            pt = me.decrypt(H(st["message"]))
            c.eq(w + ".plaintext", pt, st["plaintext"])
            for k in ("kem_secret_mixed", "kem_secret_ready"):
                c.eq(f"{w}.{k}", me.trace[k], st[k])
            if me.trace["kem_secret_mixed"]: mixing_receives += 1
            c.eq(w + ".root_key_after", me.rk, st["root_key_after"])
            c.eq(w + ".receiving_chain_key_after", me.ckr, st["receiving_chain_key_after"])
            c.eq(w + ".receiving_index_after", me.nr, st["receiving_index_after"])
            c.eq(w + ".skipped_keys_after", len(me.skipped), st["skipped_keys_after"])
            # replay must fail and leave the state unchanged
            before = me.rk, me.ckr, me.nr, len(me.skipped), me.peer[0], me.own_ready
            try: me.decrypt(H(st["message"])); got = "accepted"
            except ratchet.RatchetError as e: got = str(e)
            c.eq(w + " replay refused", got, "DuplicateMessage")
            c.eq(w + " replay changed nothing", (me.rk, me.ckr, me.nr, len(me.skipped), me.peer[0], me.own_ready), before)
        # PQ-S1 / PQ-R1: both parties' epochs and phases after every step
        for name in ("alice", "bob"):
            c.eq(f"{w}.braids_after.{name}", braids(s[name]), st["braids_after"][name])
    c.eq("hybrid sending steps and mixing receives (two epochs each way, 4.13)", (hybrid_steps, mixing_receives), (4, 4))
    c.eq("both parties end at epoch 3 both ways", [(x.e_own, x.e_peer) for x in s.values()], [(3, 3), (3, 3)])
    # 4.4/4.3 refusals
    m0 = H(d["steps"][0]["message"])
    for what, bad, want in [("version 0x01", b"\x01" + m0[1:], "UnsupportedVersion(1)"),
                            ("194 bytes", m0[:194], "Truncated { actual: 194 }"),
                            ("chunk kind 3", m0[:45] + b"\x03" + m0[46:], "MalformedChunk(UnknownKind(3))"),
                            ("chunk epoch 0", m0[:45] + b"\x01" + bytes(4) + m0[50:], "MalformedChunk(OutOfRange)"),
                            ("key chunk index 10", m0[:50] + b"\x0a" + m0[51:], "MalformedChunk(OutOfRange)")]:
        try: ratchet.parse(bad); got = "accepted"
        except ratchet.RatchetError as e: got = str(e)
        c.eq("refused: " + what, got, want)
    return c.report()

if __name__ == "__main__": main()
