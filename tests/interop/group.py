"""§8.1–8.6 sender keys (group message and distribution version 2)."""
from prims import *
from check_padding import pad, unpad
SEED = b"umbra/v1/group/message-seed"
CHAIN = b"umbra/v1/group/chain-key"
MKEY = b"umbra/v1/group/message-key"
SIG = b"umbra/v1/group/message-signature"
DSIG = b"umbra/v1/group/distribution-signature"
MIN_LEN, MAX_LEN = 129, 65665

class GroupError(Exception): pass

def header(group_id, epoch, chain_id, it): return b"\x02" + group_id + u64be(epoch) + u32be(chain_id) + u32be(it)

def keys(ck, hdr):
    seed = hmac256(ck, SEED)
    okm = hkdf(None, seed, MKEY + hdr, 44)
    return seed, okm[:32], okm[32:]

def next_ck(ck): return hmac256(ck, CHAIN)

def encrypt(sign_seed, group_id, epoch, chain_id, it, ck, payload):
    hdr = header(group_id, epoch, chain_id, it)
    seed, k, n = keys(ck, hdr)
    body = hdr + aead_seal(k, n, hdr, pad(payload))
    return seed, k, n, body + labelled_sign(sign_seed, SIG, body)

def distribution(identity_seed, group_id, epoch, chain_id, it, ck, sign_pub):
    signed = b"\x02" + group_id + u64be(epoch) + u32be(chain_id) + u32be(it) + ck + sign_pub
    return signed + labelled_sign(identity_seed, DSIG, signed)

def parse_header(m):
    if not MIN_LEN <= len(m) <= MAX_LEN: raise GroupError(f"BadMessageLength {{ len: {len(m)} }}")
    if m[0] != 2: raise GroupError(f"UnsupportedVersion({m[0]})")
    return m[1:33], int.from_bytes(m[33:41], "big"), int.from_bytes(m[41:45], "big"), int.from_bytes(m[45:49], "big")

def verify_distribution(d, sender_identity, expected_group):
    """8.5, in the order of its table; returns the fields."""
    if len(d) != 177: raise GroupError(f"BadDistributionLength {{ len: {len(d)} }}")
    if d[0] != 2: raise GroupError(f"UnsupportedVersion({d[0]})")
    if d[1:33] != expected_group: raise GroupError("WrongGroup")
    if not ed_verify(sender_identity[:32], signed_bytes(DSIG, d[:113]), d[113:]): raise GroupError("BadDistributionSignature")
    from edpoint import decompresses
    if not decompresses(d[81:113]): raise GroupError("InvalidSigningKey")
    return d

class Receiver:
    MAX_SKIP = 2000
    def __init__(self, verified_dist, sender_identity):
        d = verified_dist
        self.sender = sender_identity
        self.group, self.epoch, self.chain_id = d[1:33], int.from_bytes(d[33:41], "big"), int.from_bytes(d[41:45], "big")
        self.c, self.ck, self.pub = int.from_bytes(d[45:49], "big"), d[49:81], d[81:113]
        self.skipped = {}
    def decrypt(self, sealed_identity, m):
        """8.6, in the order of its table (m: the group message after the 0x04 type byte)."""
        group, epoch, cid, it = parse_header(m)
        if sealed_identity != self.sender: raise GroupError("WrongSender")
        if group != self.group: raise GroupError("WrongGroup")
        if epoch != self.epoch: raise GroupError("WrongEpoch")
        if cid != self.chain_id: raise GroupError("WrongChain")
        body, sig = m[:-64], m[-64:]
        if not ed_verify(self.pub, signed_bytes(SIG, body), sig): raise GroupError("BadSignature")
        hdr = m[:49]
        if it < self.c:
            if it not in self.skipped: raise GroupError(f"Replay({it})")
            okm = hkdf(None, self.skipped[it], MKEY + hdr, 44)
            pt = unpad(aead_open(okm[:32], okm[32:], hdr, body[49:]))
            del self.skipped[it]; return pt
        if it == 0xFFFFFFFF: raise GroupError("ChainExhausted")
        if it - self.c > self.MAX_SKIP: raise GroupError("TooFarAhead")
        ck, coll = self.ck, {}
        for j in range(self.c, it):
            coll[j] = hmac256(ck, SEED); ck = next_ck(ck)
        _, k, n = keys(ck, hdr)
        try: padded = aead_open(k, n, hdr, body[49:])
        except Exception: raise GroupError("Undecryptable")
        pt = unpad(padded)
        self.ck, self.c = next_ck(ck), it + 1
        self.skipped.update(coll)
        while len(self.skipped) > 2000: del self.skipped[min(self.skipped)]
        return pt
