"""§3.2–3.3 identities (shared by several checkers)."""
from prims import *

IDENTITY_BINDING = b"umbra/v1/identity/binding"
SIGNED_PREKEY = b"umbra/v1/prekey/signed"

def public_identity(ed_seed, x_secret):
    edp = ed_pub(ed_seed); xp = x25519_pub(x_secret)
    return edp + xp + labelled_sign(ed_seed, IDENTITY_BINDING, xp)

def verify_identity(pi):
    if len(pi) != 128: raise ValueError("BadLength")
    return ed_verify(pi[:32], signed_bytes(IDENTITY_BINDING, pi[32:64]), pi[64:])

def check_identity_dict(c, what, d):
    """Recompute a vector's identity dict {ed25519_seed, x25519_secret, ...}."""
    pi = public_identity(H(d["ed25519_seed"]), H(d["x25519_secret"]))
    c.eq(what + ".ed25519_public", pi[:32], d["ed25519_public"])
    c.eq(what + ".x25519_public", pi[32:64], d["x25519_public"])
    c.eq(what + ".public_identity", pi, d["public_identity"])
    c.eq(what + ".binding verifies", verify_identity(pi), True)
    return pi
