"""§3.6–3.7 X3DH."""
from prims import *
from postcard import varint, bstr, opt
X3DH_ROOT_KEY = b"umbra/v1/x3dh/root-key"
X3DH_AD = b"umbra/v1/x3dh/associated-data"

def addr(account_id, device_id): return account_id + u32be(device_id)

def transcript(ik_a, addr_a, ik_b, addr_b): return ik_a + addr_a + ik_b + addr_b

def derive(dhs, parties, ek_a, spk_b, opk_b):
    ikm = b"\xff" * 32 + b"".join(dhs)
    info = X3DH_ROOT_KEY + parties + ek_a + spk_b + (opk_b or b"")
    return ikm, info, hkdf(bytes(32), ikm, info, 32), X3DH_AD + parties

def initiate(ik_a_xsecret, parties, ek_secret, ik_b_x, spk_b, opk_b):
    dhs = [x25519(ik_a_xsecret, spk_b), x25519(ek_secret, ik_b_x), x25519(ek_secret, spk_b)]
    if opk_b: dhs.append(x25519(ek_secret, opk_b))
    return dhs, derive(dhs, parties, x25519_pub(ek_secret), spk_b, opk_b)

def respond(spk_secret, ik_b_xsecret, opk_secret, ik_a_x, ek_a, parties):
    dhs = [x25519(spk_secret, ik_a_x), x25519(ik_b_xsecret, ek_a), x25519(spk_secret, ek_a)]
    if opk_secret: dhs.append(x25519(opk_secret, ek_a))
    return dhs, derive(dhs, parties, ek_a, x25519_pub(spk_secret), x25519_pub(opk_secret) if opk_secret else None)

# serde / postcard forms (local storage only, 3.3, 3.5, 3.6)
def spk_public_postcard(id_, created_at, pub, sig):
    return varint(id_) + varint(created_at) + bstr(pub) + bstr(sig)
def opk_public_postcard(id_, pub): return varint(id_) + bstr(pub)
def kem_prekey_postcard(id_, created_at, key, sig):
    # KemPreKeyWire (3.9): varint id, varint created_at, byte string key, byte string signature
    return varint(id_) + varint(created_at) + bstr(key) + bstr(sig)
def bundle_postcard(identity, spk, otp, lr, kem_otk=None, kem_lr=None):
    # kem_otk / kem_lr: None (a classical bundle) or (id, created_at, key, sig)
    return (bstr(identity) + spk_public_postcard(*spk) + opt(otp, lambda o: opk_public_postcard(*o))
            + opt(lr, lambda o: opk_public_postcard(*o))
            + opt(kem_otk, lambda k: kem_prekey_postcard(*k)) + opt(kem_lr, lambda k: kem_prekey_postcard(*k)))
def initial_header_postcard(identity, ek, spk_id, extra, kem=None):
    # extra: None | ("OneTime", id) | ("LastResort", id)
    # kem: None (classical) | (kind byte, id, ciphertext): u8, varint u32, byte string (3.6)
    enc = lambda e: varint({"OneTime": 0, "LastResort": 1}[e[0]]) + varint(e[1])
    return (bstr(identity) + bstr(ek) + varint(spk_id) + opt(extra, enc)
            + opt(kem, lambda k: bytes([k[0]]) + varint(k[1]) + bstr(k[2])))
# wire form (4.11 pre-key fields)
def initial_header_wire(identity, ek, spk_id, extra):
    if extra is None: return identity + ek + u32be(spk_id) + b"\x00"
    return identity + ek + u32be(spk_id) + {"OneTime": b"\x01", "LastResort": b"\x02"}[extra[0]] + u32be(extra[1])
