"""§5 sealed sender."""
from prims import *
from identity import verify_identity
SALT = b"umbra/v1/sealed/ephemeral/salt"
CHAIN = b"umbra/v1/sealed/ephemeral/chain-key"
CK1 = b"umbra/v1/sealed/ephemeral/cipher-key"
CK2 = b"umbra/v1/sealed/static/cipher-key"
MAX_INNER_LEN = 73728
OVERHEAD = 213
MAX_ENVELOPE_LEN = MAX_INNER_LEN + OVERHEAD
N0 = bytes(12)

class SealedError(Exception): pass

def layer1(s1, ik_b, E):
    salt1 = SALT + ik_b + E
    prk1 = hkdf_extract(salt1, s1)
    return salt1, hkdf_expand(prk1, CHAIN, 32), hkdf_expand(prk1, CK1, 32)

def layer2_key(chain, s2, c1):
    return hkdf_expand(hkdf_extract(chain, s2), CK2 + c1, 32)

def seal(ik_a, a_xsecret, addr_a, ik_b, inner, e, trace=None):
    if len(inner) > MAX_INNER_LEN: raise SealedError("InnerTooLong")
    if not verify_identity(ik_b): raise SealedError("InvalidRecipient")
    E = x25519_pub(e)
    try: s1 = x25519(e, ik_b[32:64])
    except NonContributory: raise SealedError("LowOrderEphemeral")
    salt1, chain, k1 = layer1(s1, ik_b, E)
    c1 = aead_seal(k1, N0, b"\x01" + E, ik_a + addr_a)
    try: s2 = x25519(a_xsecret, ik_b[32:64])
    except NonContributory: raise SealedError("LowOrderStatic")
    k2 = layer2_key(chain, s2, c1)
    c2 = aead_seal(k2, N0, b"\x01" + E + c1, inner)
    if trace is not None:
        trace.update(ephemeral_public=E, ephemeral_dh=s1, ephemeral_salt=salt1, chain_key=chain,
                     sender_cipher_key=k1, sender_plaintext=ik_a + addr_a, sender_ciphertext=c1,
                     static_dh=s2, inner_cipher_key=k2)
    return b"\x01" + E + c1 + c2

def open_(ik_b, b_xsecret, env):
    if len(env) > MAX_ENVELOPE_LEN: raise SealedError(f"TooLong {{ len: {len(env)} }}")
    if len(env) < OVERHEAD: raise SealedError(f"TooShort {{ len: {len(env)} }}")
    if env[0] != 1: raise SealedError(f"UnsupportedVersion({env[0]})")
    E, c1, c2 = env[1:33], env[33:197], env[197:]
    try: s1 = x25519(b_xsecret, E)
    except NonContributory: raise SealedError("LowOrderEphemeral")
    _, chain, k1 = layer1(s1, ik_b, E)
    try: sender = aead_open(k1, N0, b"\x01" + E, c1)
    except Exception: raise SealedError("SenderLayerUndecryptable")
    ik_a, addr_a = sender[:128], sender[128:]
    if not verify_identity(ik_a): raise SealedError("InvalidSender")
    try: s2 = x25519(b_xsecret, ik_a[32:64])
    except NonContributory: raise SealedError("LowOrderStatic")
    k2 = layer2_key(chain, s2, c1)
    try: inner = aead_open(k2, N0, b"\x01" + E + c1, c2)
    except Exception: raise SealedError("InnerLayerUndecryptable")
    return ik_a, addr_a, inner
