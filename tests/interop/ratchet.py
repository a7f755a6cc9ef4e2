"""§4 Double Ratchet (spec-only implementation)."""
import copy
from prims import *
RK_INFO = b"umbra/v1/ratchet/root-key"
MK_INFO = b"umbra/v1/ratchet/message-key"
EPH_LABEL = b"umbra/v1/ratchet/ephemeral-key"
MAX_SKIP, MAX_SKIPPED = 1000, 2000
TYPE_PREKEY, TYPE_PLAIN = 1, 2

class RatchetError(Exception): pass

def kdf_rk(rk, dh_out):
    okm = hkdf(rk, dh_out, RK_INFO, 64)
    return okm[:32], okm[32:]

def seed(ck): return hmac256(ck, b"\x01")
def next_ck(ck): return hmac256(ck, b"\x02")
def message_key(ck):
    okm = hkdf(None, seed(ck), MK_INFO, 44)
    return okm[:32], okm[32:]

def header(pub, pn, n): return pub + u32be(pn) + u32be(n)

def dh(priv, pub):
    try: return x25519(priv, pub)
    except NonContributory: raise RatchetError("BadRatchetKey")

class Session:
    def __init__(self, ad):
        self.ad = ad; self.rk = None; self.dhs = None; self.dhr = None
        self.cks = None; self.ns = 0; self.ckr = None; self.nr = 0; self.pn = 0
        self.skipped = {}  # (pub, n) -> (key, nonce); dict keeps insertion order
        self.retired = []
        self.trace = {}

    @classmethod
    def initiator(cls, sk, ad, bob_spk_pub, dhs_priv):
        s = cls(ad); s.dhs = dhs_priv; s.dhr = bob_spk_pub
        s.rk, s.cks = kdf_rk(sk, dh(dhs_priv, bob_spk_pub)); s.ns = 0; s.pn = 0
        return s

    @classmethod
    def responder(cls, sk, ad, spk_priv):
        s = cls(ad); s.rk = sk; s.dhs = spk_priv
        return s

    def encrypt(self, pt, new_priv=None, msg_type=TYPE_PLAIN):
        rk, dhs, cks, ns = self.rk, self.dhs, self.cks, self.ns
        took_step = False
        if cks is None:
            if self.dhr is None: raise RatchetError("NotReadyToSend")
            if new_priv is None: raise RatchetError("need RNG output for a DH step")
            dhs = new_priv; rk, cks = kdf_rk(rk, dh(dhs, self.dhr)); ns = 0; took_step = True
        if ns == 0xFFFFFFFF: raise RatchetError("SendingChainExhausted")
        hdr = header(x25519_pub(dhs), self.pn, ns)
        key, nonce = message_key(cks)
        aad = self.ad + bytes([msg_type, 1]) + hdr
        msg = b"\x01" + hdr + aead_seal(key, nonce, aad, pt)
        self.trace = dict(chain_key=cks, message_number=ns, message_key=key, nonce=nonce, header=hdr,
                          aead_associated_data=aad, message=msg, took_step=took_step)
        self.rk, self.dhs, self.cks, self.ns = rk, dhs, next_ck(cks), ns + 1
        return msg

    def _open(self, key, nonce, hdr, ct, msg_type):
        try: return aead_open(key, nonce, self.ad + bytes([msg_type, 1]) + hdr, ct)
        except Exception: raise RatchetError("DecryptionFailed")

    def decrypt(self, msg, msg_type=TYPE_PLAIN):
        if len(msg) < 57: raise RatchetError(f"Truncated {{ actual: {len(msg)} }}")
        if msg[0] != 1: raise RatchetError(f"UnsupportedVersion({msg[0]})")
        hdr, ct = msg[1:41], msg[41:]
        rpub, pn, n = hdr[:32], int.from_bytes(hdr[32:36], "big"), int.from_bytes(hdr[36:40], "big")
        if (rpub, n) in self.skipped:
            key, nonce = self.skipped[(rpub, n)]
            pt = self._open(key, nonce, hdr, ct, msg_type)
            del self.skipped[(rpub, n)]
            return pt
        if n == 0xFFFFFFFF: raise RatchetError("MessageNumberOutOfRange")
        if self.dhr is not None and rpub == self.dhr and self.ckr is not None:
            if n < self.nr: raise RatchetError("DuplicateMessage")
            if n - self.nr > MAX_SKIP: raise RatchetError(f"TooFarAhead {{ skipped: {n - self.nr} }}")
            ck, cur = self.ckr, []
            for i in range(self.nr, n):
                cur.append(((rpub, i), message_key(ck))); ck = next_ck(ck)
            key, nonce = message_key(ck)
            pt = self._open(key, nonce, hdr, ct, msg_type)
            self._store(cur); self.ckr, self.nr = next_ck(ck), n + 1
            return pt
        if rpub in self.retired: raise RatchetError("DuplicateMessage")
        if self.ckr is not None and pn > self.nr and pn - self.nr > MAX_SKIP:
            raise RatchetError(f"TooFarAhead {{ skipped: {pn - self.nr} }}")
        if n > MAX_SKIP: raise RatchetError(f"TooFarAhead {{ skipped: {n} }}")
        old = []
        if self.ckr is not None and pn > self.nr:
            ck = self.ckr
            for i in range(self.nr, pn):
                old.append(((self.dhr, i), message_key(ck))); ck = next_ck(ck)
        rk2, ck = kdf_rk(self.rk, dh(self.dhs, rpub))
        ck0 = ck
        cur = []
        for i in range(0, n):
            cur.append(((rpub, i), message_key(ck))); ck = next_ck(ck)
        key, nonce = message_key(ck)
        pt = self._open(key, nonce, hdr, ct, msg_type)
        # commit
        self._store(old)
        if self.dhr is not None:
            self.retired.append(self.dhr); self.retired = self.retired[-16:]
        self.rk, self.dhr = rk2, rpub
        self.epochs = (getattr(self, "epochs", []) + [(rpub, hmac256(ck0, EPH_LABEL))])[-4:]
        if self.cks is not None:
            self.pn = self.ns; self.cks = None
        self._store(cur); self.ckr, self.nr = next_ck(ck), n + 1
        return pt

    def _store(self, items):
        for k, v in items:
            self.skipped[k] = v
            while len(self.skipped) > MAX_SKIPPED:
                del self.skipped[next(iter(self.skipped))]
