"""Key transparency (docs/PROTOCOL.md section 16), from the specification alone:
the ECVRF-RISTRETTO255-SHA512 VRF and leaf indices, labels and values, version
chains, the depth-256 sparse Merkle map and its paths, lookup and history proofs,
epoch entries and signed heads, and the RFC 9162 log. Errors are raised as KtError
whose str() is the name the vectors give."""
import ctypes, hashlib
import ristretto as r255
from prims import u64be, signed_bytes, ed_verify

SUITE = b"\xffc2sp.org/vrf-r255"
VRF_INPUT = b"umbra/v1/kt/vrf-input"
IDENTITY = b"umbra/v1/kt/identity"
DEVICE_LIST = b"umbra/v1/kt/device-list"
VERSION = b"umbra/v1/kt/version"
LEAF = b"umbra/v1/kt/leaf"
NODE = b"umbra/v1/kt/node"
EMPTY = b"umbra/v1/kt/empty"
EPOCH_HEAD = b"umbra/v1/kt/epoch-head"
DEPTH = 256
MAX_HISTORY = 1024
MAX_LOG_HASHES = 128
ZERO = bytes(32)

class KtError(Exception):
    pass

def sha256(*parts): return hashlib.sha256(b"".join(parts)).digest()
def sha512(*parts): return hashlib.sha512(b"".join(parts)).digest()

# ---- 16.2 the VRF ----
def _sub(p, q):
    out = ctypes.create_string_buffer(32)
    if r255._lib.crypto_core_ristretto255_sub(out, bytes(p), bytes(q)) != 0: raise KtError("BadVrfProof")
    return out.raw

def _mul_or_identity(s, p):
    try: return r255.mul(s, p)
    except ValueError: return bytes(32)

def _encode_to_curve(Y, alpha): return r255.from_uniform(sha512(SUITE, b"\x82", Y, alpha))

def _challenge(*points): return sha512(SUITE, b"\x02", *points, b"\x00")[:16]

def vrf_public(x): return r255.mul_base(x)

def vrf_prove(x, alpha):
    Y = vrf_public(x)
    H = _encode_to_curve(Y, alpha)
    gamma = r255.mul(x, H)
    k = r255.reduce64(sha512(SUITE, b"\x81", x, H))
    c = _challenge(Y, H, gamma, r255.mul_base(k), r255.mul(k, H))
    s = r255.scalar_from_int(r255.scalar_to_int(k) + int.from_bytes(c, "little") * r255.scalar_to_int(x))
    return gamma + c + s

def vrf_beta(gamma): return sha512(SUITE, b"\x03", gamma, b"\x00")

def vrf_verify(Y, alpha, pi):
    """RFC 9381 5.3; returns the leaf index (beta[0..32])."""
    gamma, c, s = pi[:32], pi[32:48], pi[48:80]
    if not r255.is_valid(gamma) or int.from_bytes(s, "little") >= r255.L: raise KtError("BadVrfProof")
    H = _encode_to_curve(Y, alpha)
    c32 = c + bytes(16)
    U = _sub(_mul_or_identity(s, r255.mul_base(r255.scalar_from_int(1))), _mul_or_identity(c32, Y))
    V = _sub(_mul_or_identity(s, H), _mul_or_identity(c32, gamma))
    if _challenge(Y, H, gamma, U, V) != c: raise KtError("BadVrfProof")
    return vrf_beta(gamma)[:32]

# ---- 16.1, 16.3 labels, values, chains ----
def label_account(account): return b"\x01" + account
def label_username(name): return b"\x02" + bytes([len(name)]) + name.encode()
def alpha(label): return VRF_INPUT + label

def value_account(identity, device_list):
    ih = sha256(IDENTITY, identity) if identity is not None else ZERO
    dh = sha256(DEVICE_LIST, device_list) if device_list is not None else ZERO
    return b"\x01" + ih + dh

def value_username(account): return b"\x02\x01" + account if account is not None else b"\x02" + bytes(17)

def take_value(b):
    if not b: raise KtError("Truncated")
    n = {1: 65, 2: 18}.get(b[0])
    if n is None: raise KtError("UnknownByte")
    if len(b) < n: raise KtError("Truncated")
    v = b[:n]
    if v[0] == 2:
        if v[1] not in (0, 1): raise KtError("UnknownByte")
        if v[1] == 0 and v[2:] != bytes(16): raise KtError("Malformed")
    return v, b[n:]

def chain(n, epoch, value, prev): return sha256(VERSION, u64be(n), u64be(epoch), value, prev)

# ---- 16.4 the map ----
def node(l, r): return sha256(NODE, l, r)
E = [None] * (DEPTH + 1)
E[DEPTH] = sha256(EMPTY)
for _d in range(DEPTH - 1, -1, -1): E[_d] = node(E[_d + 1], E[_d + 1])

def leaf(index, c): return sha256(LEAF, index, c)
def bit(index, i): return (index[i // 8] >> (7 - i % 8)) & 1
def as_int(index): return int.from_bytes(index, "big")

def subtree(depth, prefix, leaves):
    """Hash of the subtree at `depth` whose indices start with the `depth`-bit integer
    `prefix`; `leaves` maps index bytes to leaf hashes."""
    inside = [k for k in leaves if as_int(k) >> (DEPTH - depth) == prefix]
    if not inside: return E[depth]
    if depth == DEPTH: return leaves[inside[0]]
    return node(subtree(depth + 1, prefix << 1, leaves), subtree(depth + 1, (prefix << 1) | 1, leaves))

def root(leaves): return subtree(0, 0, leaves)

def path_for(index, leaves):
    """The path encoding (bitmap || present siblings, shallowest first)."""
    bitmap, hashes = bytearray(32), b""
    for j in range(DEPTH):
        sib = (as_int(index) >> (DEPTH - j - 1)) ^ 1
        h = subtree(j + 1, sib, leaves)
        if h != E[j + 1]:
            bitmap[j // 8] |= 0x80 >> (j % 8)
            hashes += h
    return bytes(bitmap) + hashes

def decode_path(b):
    if len(b) < 32: raise KtError("Truncated")
    bitmap, rest = b[:32], b[32:]
    k = sum(bin(x).count("1") for x in bitmap)
    if len(rest) < 32 * k: raise KtError("Truncated")
    if len(rest) > 32 * k: raise KtError("Trailing")
    sibs, pos = [], 0
    for j in range(DEPTH):
        if bitmap[j // 8] & (0x80 >> (j % 8)):
            if rest[pos:pos + 32] == E[j + 1]: raise KtError("Malformed")
            sibs.append(rest[pos:pos + 32]); pos += 32
        else:
            sibs.append(None)
    return sibs

def fold(index, h, sibs):
    for j in range(DEPTH - 1, -1, -1):
        s = sibs[j] if sibs[j] is not None else E[j + 1]
        h = node(h, s) if bit(index, j) == 0 else node(s, h)
    return h

# ---- 16.5 lookup proofs ----
def verify_lookup(Y, label, proof, map_root, head_epoch):
    """Returns None (absent) or (version, epoch, value, chain)."""
    if not proof: raise KtError("Truncated")
    if proof[0] not in (0, 1): raise KtError("UnknownByte")
    if len(proof) < 81: raise KtError("Truncated")
    pi, rest = proof[1:81], proof[81:]
    if proof[0] == 0:
        sibs = decode_path(rest)
        index = vrf_verify(Y, alpha(label), pi)
        if fold(index, E[DEPTH], sibs) != map_root: raise KtError("RootMismatch")
        return None
    if len(rest) < 16: raise KtError("Truncated")
    version, epoch = int.from_bytes(rest[:8], "big"), int.from_bytes(rest[8:16], "big")
    value, rest = take_value(rest[16:])
    if len(rest) < 32: raise KtError("Truncated")
    prev, sibs = rest[:32], decode_path(rest[32:])
    index = vrf_verify(Y, alpha(label), pi)
    if value[0] != label[0]: raise KtError("ValueKindMismatch")
    if version == 0: raise KtError("BadVersion")
    if (version == 1) != (prev == ZERO): raise KtError("BadPrior")
    if epoch > head_epoch: raise KtError("BadVersionEpoch")
    c = chain(version, epoch, value, prev)
    if fold(index, leaf(index, c), sibs) != map_root: raise KtError("RootMismatch")
    return version, epoch, value, c

# ---- 16.6 history proofs ----
def verify_history(Y, label, proof, map_root, head_epoch):
    """Returns [(version, epoch, value, chain)]."""
    if len(proof) < 80 + 8 + 32 + 2: raise KtError("Truncated")
    pi = proof[:80]
    first = int.from_bytes(proof[80:88], "big")
    prior = proof[88:120]
    m = int.from_bytes(proof[120:122], "big")
    if m == 0: raise KtError("Malformed")
    if m > MAX_HISTORY: raise KtError("TooMany")
    rest, versions = proof[122:], []
    for _ in range(m):
        if len(rest) < 8: raise KtError("Truncated")
        epoch = int.from_bytes(rest[:8], "big")
        value, rest = take_value(rest[8:])
        versions.append((epoch, value))
    sibs = decode_path(rest)
    index = vrf_verify(Y, alpha(label), pi)
    if first == 0: raise KtError("BadVersion")
    if (first == 1) != (prior == ZERO): raise KtError("BadPrior")
    c, last_epoch, out = prior, None, []
    for i, (epoch, value) in enumerate(versions):
        if value[0] != label[0]: raise KtError("ValueKindMismatch")
        if (last_epoch is not None and epoch <= last_epoch) or epoch > head_epoch: raise KtError("BadVersionEpoch")
        last_epoch = epoch
        c = chain(first + i, epoch, value, c)
        out.append((first + i, epoch, value, c))
    if fold(index, leaf(index, c), sibs) != map_root: raise KtError("RootMismatch")
    return out

# ---- 16.8 the RFC 9162 log ----
def log_leaf(d): return sha256(b"\x00", d)
def log_node(l, r): return sha256(b"\x01", l, r)
def _k(n):
    k = 1
    while k * 2 < n: k *= 2
    return k

def mth(leaves):
    if not leaves: return sha256()
    if len(leaves) == 1: return leaves[0]
    k = _k(len(leaves))
    return log_node(mth(leaves[:k]), mth(leaves[k:]))

def log_path(m, leaves):
    n = len(leaves)
    if n <= 1: return []
    k = _k(n)
    if m < k: return log_path(m, leaves[:k]) + [mth(leaves[k:])]
    return log_path(m - k, leaves[k:]) + [mth(leaves[:k])]

def log_subproof(m, leaves, b):
    n = len(leaves)
    if m == n: return [] if b else [mth(leaves)]
    k = _k(n)
    if m <= k: return log_subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return log_subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]

def decode_hashes(b):
    if not b: raise KtError("Truncated")
    p = b[0]
    if p > MAX_LOG_HASHES: raise KtError("TooMany")
    if len(b) - 1 < 32 * p: raise KtError("Truncated")
    if len(b) - 1 > 32 * p: raise KtError("Trailing")
    return [b[1 + 32 * i: 33 + 32 * i] for i in range(p)]

def encode_hashes(hs): return bytes([len(hs)]) + b"".join(hs)

def decode_sized(b):
    if len(b) < 16: raise KtError("Truncated")
    return int.from_bytes(b[:8], "big"), int.from_bytes(b[8:16], "big"), decode_hashes(b[16:])

def verify_inclusion(index, size, path, leaf_hash, root_hash):
    """RFC 9162 2.1.3.2."""
    if index >= size: raise KtError("BadLogSize")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0: raise KtError("BadInclusion")
        if fn & 1 or fn == sn:
            r = log_node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            r = log_node(r, p)
        fn >>= 1; sn >>= 1
    if sn != 0 or r != root_hash: raise KtError("BadInclusion")

def verify_consistency(first, second, path, first_hash, second_hash):
    """RFC 9162 2.1.4.2 (equal sizes: empty proof, equal roots)."""
    if first == 0 or first > second: raise KtError("BadLogSize")
    if first == second:
        if path or first_hash != second_hash: raise KtError("BadConsistency")
        return
    if not path: raise KtError("BadConsistency")
    if first & (first - 1) == 0: path = [first_hash] + list(path)
    fn, sn = first - 1, second - 1
    while fn & 1: fn >>= 1; sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0: raise KtError("BadConsistency")
        if fn & 1 or fn == sn:
            fr, sr = log_node(c, fr), log_node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            sr = log_node(sr, c)
        fn >>= 1; sn >>= 1
    if fr != first_hash or sr != second_hash or sn != 0: raise KtError("BadConsistency")

# ---- 16.7 entries and heads ----
def entry(epoch, at_ms, map_root): return b"\x01" + u64be(epoch) + u64be(at_ms) + map_root

def verify_head(dir_pub, head):
    """Returns (epoch, published_at_ms, map_root, log_root, entry bytes)."""
    if len(head) < 146: raise KtError("Truncated")
    if head[0] != 1: raise KtError("UnknownByte")
    ent, log_root, sig = head[:49], head[49:81], head[81:145]
    path = decode_hashes(head[145:])
    if not ed_verify(dir_pub, signed_bytes(EPOCH_HEAD, head[:81]), sig): raise KtError("BadHeadSignature")
    epoch = int.from_bytes(ent[1:9], "big")
    verify_inclusion(epoch, epoch + 1, path, log_leaf(ent), log_root)
    return epoch, int.from_bytes(ent[9:17], "big"), ent[17:49], log_root, ent
