"""§4 Double Ratchet with the post-quantum step (4.2 hybrid KDF_RK, 4.3-4.7, 4.13), spec-only.

Ratchet message version 0x02: a 178-byte header (40 classical bytes, pq_epoch, a 134-byte chunk
slot). The braids carry an ML-KEM-768 key (10 chunks) one way and its ciphertext (9 chunks) back;
the decapsulated secret enters KDF_RK at the owner's next sending DH step. Randomness comes from
an `Rng` object so vectors can script every draw; this module never stores anything."""
import copy, os
from prims import *
import kem
RK_INFO = b"umbra/v1/ratchet/root-key"
HYBRID_RK_INFO = b"umbra/v1/ratchet/hybrid-root-key"
MK_INFO = b"umbra/v1/ratchet/message-key"
EPH_LABEL = b"umbra/v1/ratchet/ephemeral-key"
MAX_SKIP, MAX_SKIPPED = 1000, 2000
TYPE_PREKEY, TYPE_PLAIN = 1, 2
VERSION, HEADER_LEN, MIN_LEN = 2, 178, 195
CHUNK = 128
KEY_CHUNKS, CT_CHUNKS = 10, 9          # 1184 = 9*128 + 32, 1088 = 8*128 + 64
U32_MAX = 0xFFFFFFFF

class RatchetError(Exception): pass

def kdf_rk(rk, dh_out, ss=None):
    okm = hkdf(rk, dh_out, RK_INFO, 64) if ss is None else hkdf(rk, dh_out + ss, HYBRID_RK_INFO, 64)
    return okm[:32], okm[32:]

def seed(ck): return hmac256(ck, b"\x01")
def next_ck(ck): return hmac256(ck, b"\x02")
def message_key(ck):
    okm = hkdf(None, seed(ck), MK_INFO, 44)
    return okm[:32], okm[32:]

# --- chunk slot (4.3) ---
def chunk_len(kind, index):
    if kind == 1: return 32 if index == KEY_CHUNKS - 1 else CHUNK
    return 64 if index == CT_CHUNKS - 1 else CHUNK

def slot(kind=0, epoch=0, index=0, data=b""):
    if kind == 0: return bytes(134)
    return bytes([kind]) + u32be(epoch) + bytes([index]) + data + bytes(CHUNK - len(data))

def parse_slot(s):
    """-> None or (kind, epoch, index, data); MalformedChunk(...) per 4.3."""
    kind = s[0]
    if kind > 2: raise RatchetError(f"MalformedChunk(UnknownKind({kind}))")
    if kind == 0:
        if any(s[1:]): raise RatchetError("MalformedChunk(NonZeroPadding)")
        return None
    epoch, index = int.from_bytes(s[1:5], "big"), s[5]
    if epoch == 0 or index >= (KEY_CHUNKS if kind == 1 else CT_CHUNKS): raise RatchetError("MalformedChunk(OutOfRange)")
    n = chunk_len(kind, index); data = s[6:6 + CHUNK]
    if any(data[n:]): raise RatchetError("MalformedChunk(NonZeroPadding)")
    return kind, epoch, index, data[:n]

def header(pub, pn, n, pq_epoch=0, slot_bytes=bytes(134)):
    return pub + u32be(pn) + u32be(n) + u32be(pq_epoch) + slot_bytes

def parse(msg):
    if len(msg) < MIN_LEN: raise RatchetError(f"Truncated {{ actual: {len(msg)} }}")
    if msg[0] != VERSION: raise RatchetError(f"UnsupportedVersion({msg[0]})")
    hdr = msg[1:1 + HEADER_LEN]
    chunk = parse_slot(hdr[44:])
    return hdr, chunk, msg[1 + HEADER_LEN:]

def dh(priv, pub):
    try: return x25519(priv, pub)
    except NonContributory: raise RatchetError("BadRatchetKey")

class Rng:
    """The draws of 4.6 (a fresh ratchet key, a KEM seed d||z, an encapsulation)."""
    def dh(self): return os.urandom(32)
    def kem_seed(self): return kem.new_seed()
    def encaps(self, ek, epoch): return kem.encapsulate(ek)  # -> (ss, ct); m is drawn inside the library

def sat_inc(e): return e if e == U32_MAX else e + 1

class Session:
    def __init__(self, ad):
        self.ad = ad; self.rk = None; self.dhs = None; self.dhr = None
        self.cks = None; self.ns = 0; self.ckr = None; self.nr = 0; self.pn = 0
        self.skipped = {}  # (pub, n) -> (key, nonce); dict keeps insertion order
        self.retired = []
        self.epochs = []   # 4.12 peer epoch keys
        # 4.13 braids
        self.pqs = 0
        self.e_own, self.own_seed, self.own_ct, self.own_ready, self.own_next = 1, None, {}, None, 0
        self.e_peer, self.peer = 1, ("collecting", {})
        self.turn = 0      # 0 ours, 1 theirs
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

    def own_public(self): return kem.public_bytes(self.own_seed)

    def encrypt(self, pt, new_priv=None, msg_type=TYPE_PLAIN, rng=None):
        """new_priv: the DH draw if a step is due (else rng.dh()); rng: the KEM draws (default OS)."""
        rng = rng or Rng()
        t = copy.deepcopy(self); t.trace = {}
        took_step = False; mixed = None; drew_seed = None; encapsulated = None
        if t.cks is None:
            if t.dhr is None: raise RatchetError("NotReadyToSend")
            t.dhs = new_priv if new_priv is not None else rng.dh()
            if t.own_ready is not None:
                mixed = t.own_ready
                t.rk, t.cks = kdf_rk(t.rk, dh(t.dhs, t.dhr), t.own_ready); t.pqs = t.e_own
                # PQ-S1
                t.own_ready, t.own_seed, t.own_ct, t.e_own, t.own_next = None, None, {}, sat_inc(t.e_own), 0
            else:
                t.rk, t.cks = kdf_rk(t.rk, dh(t.dhs, t.dhr)); t.pqs = 0
            t.ns = 0; took_step = True
        # PQ-S2
        if t.own_seed is None:
            t.own_seed = drew_seed = rng.kem_seed()
        if t.peer[0] == "complete":
            ss, ct = rng.encaps(t.peer[1], t.e_peer); encapsulated = ss
            t.peer = ("encapsulated", ct, ss, 0)
        # PQ-S3
        ours = t.own_ready is None
        theirs = t.peer[0] == "encapsulated"
        pick = ("ours" if t.turn == 0 else "theirs") if ours and theirs else ("ours" if ours else ("theirs" if theirs else None))
        if pick == "ours":
            i = t.own_next; ek = t.own_public()
            sl = slot(1, t.e_own, i, ek[CHUNK * i:CHUNK * i + chunk_len(1, i)])
            t.own_next = (i + 1) % KEY_CHUNKS                                  # PQ-S4
        elif pick == "theirs":
            _, ct, ss, i = t.peer
            sl = slot(2, t.e_peer, i, ct[CHUNK * i:CHUNK * i + chunk_len(2, i)])
            t.peer = ("encapsulated", ct, ss, (i + 1) % CT_CHUNKS)
        else:
            sl = slot()
        t.turn ^= 1
        if t.ns == U32_MAX: raise RatchetError("SendingChainExhausted")
        hdr = header(x25519_pub(t.dhs), t.pn, t.ns, t.pqs, sl)
        key, nonce = message_key(t.cks)
        aad = t.ad + bytes([msg_type, VERSION]) + hdr
        msg = bytes([VERSION]) + hdr + aead_seal(key, nonce, aad, pt)
        trace = dict(chain_key=t.cks, message_number=t.ns, message_key=key, nonce=nonce, header=hdr,
                     aead_associated_data=aad, message=msg, took_step=took_step, kem_secret_mixed=mixed,
                     new_kem_seed=drew_seed, encapsulated_secret=encapsulated)
        t.cks, t.ns = next_ck(t.cks), t.ns + 1
        self.__dict__.update(t.__dict__); self.trace = trace
        return msg

    def _open(self, key, nonce, hdr, ct, msg_type):
        try: return aead_open(key, nonce, self.ad + bytes([msg_type, VERSION]) + hdr, ct)
        except Exception: raise RatchetError("DecryptionFailed")

    def decrypt(self, msg, msg_type=TYPE_PLAIN):
        hdr, chunk, ct = parse(msg)
        t = copy.deepcopy(self); t.trace = {}
        pt = t._decrypt(hdr, ct, msg_type)
        t._apply_chunk(chunk)                                                 # 4.7 step 8
        trace = t.trace
        self.__dict__.update(t.__dict__); self.trace = trace
        return pt

    def _decrypt(self, hdr, ct, msg_type):
        rpub, pn, n = hdr[:32], int.from_bytes(hdr[32:36], "big"), int.from_bytes(hdr[36:40], "big")
        pq_epoch = int.from_bytes(hdr[40:44], "big")
        self.trace = dict(kem_secret_mixed=None, kem_secret_ready=None)
        if (rpub, n) in self.skipped:
            key, nonce = self.skipped[(rpub, n)]
            pt = self._open(key, nonce, hdr, ct, msg_type)
            del self.skipped[(rpub, n)]
            return pt
        if n == U32_MAX: raise RatchetError("MessageNumberOutOfRange")
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
        ss = None
        if pq_epoch != 0:                                                     # PQ-R2
            if not (self.peer[0] == "encapsulated" and self.e_peer == pq_epoch):
                raise RatchetError(f"UnknownPqEpoch {{ epoch: {pq_epoch} }}")
            ss = self.peer[2]
        old = []
        if self.ckr is not None and pn > self.nr:
            ck = self.ckr
            for i in range(self.nr, pn):
                old.append(((self.dhr, i), message_key(ck))); ck = next_ck(ck)
        rk2, ck = kdf_rk(self.rk, dh(self.dhs, rpub), ss)
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
        self.epochs = (self.epochs + [(rpub, hmac256(ck0, EPH_LABEL))])[-4:]
        if self.cks is not None:
            self.pn = self.ns; self.cks = None
        if ss is not None:                                                    # PQ-R1
            self.trace["kem_secret_mixed"] = ss
            self.e_peer, self.peer = sat_inc(self.e_peer), ("collecting", {})
        self._store(cur); self.ckr, self.nr = next_ck(ck), n + 1
        return pt

    def _apply_chunk(self, chunk):
        """PQ-R3 / PQ-R4 for a message whose tag verified."""
        if chunk is None: return
        kind, e, i, data = chunk
        if kind == 1 and e == self.e_peer and self.peer[0] == "collecting":
            have = dict(self.peer[1]); have[i] = data
            if len(have) == KEY_CHUNKS:
                ek = b"".join(have[j] for j in range(KEY_CHUNKS))
                try:
                    kem.check_public(ek); self.peer = ("complete", ek)
                except ValueError:
                    self.peer = ("collecting", {})                             # modulus check failed: restart
            else:
                self.peer = ("collecting", have)
        elif kind == 2 and e == self.e_own and self.own_seed is not None and self.own_ready is None:
            self.own_ct = dict(self.own_ct); self.own_ct[i] = data
            if len(self.own_ct) == CT_CHUNKS:
                self.own_ready = kem.decapsulate(self.own_seed, b"".join(self.own_ct[j] for j in range(CT_CHUNKS)))
                self.trace["kem_secret_ready"] = self.own_ready
        # PQ-R4: anything else is ignored, the message still delivered

    def _store(self, items):
        for k, v in items:
            self.skipped[k] = v
            while len(self.skipped) > MAX_SKIPPED:
                del self.skipped[next(iter(self.skipped))]
