"""Primitives for the independent umbra implementation (from docs/PROTOCOL.md only)."""
import hashlib, hmac, json, os
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

VEC = os.environ.get("UMBRA_VECTORS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "test-vectors"))

def load(name):
    with open(os.path.join(VEC, name)) as f:
        return json.load(f)

H = bytes.fromhex
def hx(b): return b.hex()

def u16be(n): return n.to_bytes(2, "big")
def u32be(n): return n.to_bytes(4, "big")
def u64be(n): return n.to_bytes(8, "big")

def _raw(k):
    return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def x25519_pub(secret):
    return _raw(X25519PrivateKey.from_private_bytes(secret).public_key())

class NonContributory(Exception): pass

def x25519(secret, pub):
    # cryptography raises ValueError on an all-zero result (non-contributory)
    try:
        out = X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(pub))
    except ValueError:
        raise NonContributory()
    if out == bytes(32):
        raise NonContributory()
    return out

def ed_pub(seed):
    return _raw(Ed25519PrivateKey.from_private_bytes(seed).public_key())

def ed_sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)

def ed_verify(pub, msg, sig):
    # NOTE: OpenSSL's Ed25519 is not dalek's verify_strict (no small-order R/A refusal);
    # acceptable for recomputing vectors made by honest keys.
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except Exception:
        return False

def hmac256(k, m): return hmac.new(k, m, hashlib.sha256).digest()
def hmac512(k, m): return hmac.new(k, m, hashlib.sha512).digest()

def hkdf_extract(salt, ikm, h=hashlib.sha256):
    if salt is None or len(salt) == 0:
        salt = bytes(h().digest_size)
    return hmac.new(salt, ikm, h).digest()

def hkdf_expand(prk, info, L, h=hashlib.sha256):
    out, t, i = b"", b"", 1
    while len(out) < L:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:L]

def hkdf(salt, ikm, info, L, h=hashlib.sha256):
    return hkdf_expand(hkdf_extract(salt, ikm, h), info, L, h)

def aead_seal(k, n, ad, m): return ChaCha20Poly1305(k).encrypt(n, m, ad)
def aead_open(k, n, ad, c): return ChaCha20Poly1305(k).decrypt(n, c, ad)

def signed_bytes(label, msg): return u64be(len(label)) + label + msg
def labelled_sign(seed, label, msg): return ed_sign(seed, signed_bytes(label, msg))

class Checker:
    def __init__(self, name):
        self.name, self.ok, self.bad = name, 0, []
    def eq(self, what, got, want):
        if isinstance(got, bytes): got = got.hex()
        if isinstance(want, bytes): want = want.hex()
        if got == want:
            self.ok += 1
        else:
            self.bad.append(what)
            print(f"  MISMATCH {self.name}: {what}\n    got  {str(got)[:200]}\n    want {str(want)[:200]}")
    def report(self):
        status = "OK" if not self.bad else f"FAIL ({len(self.bad)})"
        print(f"{self.name}: {self.ok} checks passed, {len(self.bad)} failed -> {status}")
        return not self.bad
