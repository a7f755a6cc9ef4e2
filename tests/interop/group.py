"""§8 sender-key groups."""
from prims import *
SEED = b"umbra/v1/group/message-seed"
CHAIN = b"umbra/v1/group/chain-key"
MKEY = b"umbra/v1/group/message-key"
SIG = b"umbra/v1/group/message-signature"

class GroupError(Exception): pass

def header(dist_id, chain_id, it): return b"\x01" + dist_id + u32be(chain_id) + u32be(it)

def keys(ck, hdr):
    seed = hmac256(ck, SEED)
    okm = hkdf(None, seed, MKEY + hdr, 44)
    return seed, okm[:32], okm[32:]

def next_ck(ck): return hmac256(ck, CHAIN)

def encrypt(sign_seed, dist_id, chain_id, it, ck, pt):
    hdr = header(dist_id, chain_id, it)
    seed, k, n = keys(ck, hdr)
    body = hdr + aead_seal(k, n, hdr, pt)
    return seed, k, n, body + labelled_sign(sign_seed, SIG, body)

def distribution(dist_id, chain_id, it, ck, sign_pub):
    return b"\x01" + dist_id + u32be(chain_id) + u32be(it) + ck + sign_pub

class Receiver:
    MAX_SKIP = 2000
    def __init__(self, dist):
        if len(dist) != 89: raise GroupError(f"BadDistributionLength {{ len: {len(dist)} }}")
        if dist[0] != 1: raise GroupError(f"UnsupportedVersion({dist[0]})")
        self.dist_id, self.chain_id = dist[1:17], int.from_bytes(dist[17:21], "big")
        self.c, self.ck, self.pub = int.from_bytes(dist[21:25], "big"), dist[25:57], dist[57:89]
        self.skipped = {}
    def decrypt(self, m):
        if not 105 <= len(m) <= 65641: raise GroupError(f"BadMessageLength {{ len: {len(m)} }}")
        if m[0] != 1: raise GroupError(f"UnsupportedVersion({m[0]})")
        if m[1:17] != self.dist_id: raise GroupError("WrongDistribution")
        cid = int.from_bytes(m[17:21], "big")
        if cid != self.chain_id: raise GroupError("WrongChain")
        body, sig = m[:-64], m[-64:]
        if not ed_verify(self.pub, signed_bytes(SIG, body), sig): raise GroupError("BadSignature")
        it = int.from_bytes(m[21:25], "big"); hdr = m[:25]
        if it < self.c:
            if it not in self.skipped: raise GroupError(f"Replay({it})")
            seed = self.skipped[it]
            okm = hkdf(None, seed, MKEY + hdr, 44)
            pt = aead_open(okm[:32], okm[32:], hdr, body[25:])
            del self.skipped[it]; return pt
        if it == 0xFFFFFFFF: raise GroupError("ChainExhausted")
        if it - self.c > self.MAX_SKIP: raise GroupError("TooFarAhead")
        ck, coll = self.ck, {}
        for j in range(self.c, it):
            coll[j] = hmac256(ck, SEED); ck = next_ck(ck)
        _, k, n = keys(ck, hdr)
        try: pt = aead_open(k, n, hdr, body[25:])
        except Exception: raise GroupError("Undecryptable")
        self.ck, self.c = next_ck(ck), it + 1
        self.skipped.update(coll)
        while len(self.skipped) > 2000: del self.skipped[min(self.skipped)]
        return pt
