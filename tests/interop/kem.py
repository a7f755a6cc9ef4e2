"""ML-KEM-768 (FIPS 203) through `cryptography`, and signed KEM prekeys (issue 14; PROTOCOL 3.9).

Never hand-rolled: key generation from the 64-byte seed d || z, encapsulation and
decapsulation (implicit rejection) are OpenSSL's. This module never stores a key."""
import os
from cryptography.hazmat.primitives.asymmetric import mlkem
from prims import labelled_sign, ed_verify, signed_bytes, u32be, u64be

KEM_PREKEY = b"umbra/v1/prekey/kem"
PUBLIC_KEY_LEN, CIPHERTEXT_LEN, SHARED_SECRET_LEN, SEED_LEN = 1184, 1088, 32, 64
ONE_TIME, LAST_RESORT = 0x01, 0x02

def private(seed):
    if len(seed) != SEED_LEN: raise ValueError("KEM seed must be 64 bytes (d || z)")
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)

def public_bytes(seed): return private(seed).public_key().public_bytes_raw()

def encapsulate(pk):
    """-> (shared secret 32, ciphertext 1088); the RNG is the library's (OS)."""
    if len(pk) != PUBLIC_KEY_LEN: raise ValueError("BadLength encapsulation key")
    return mlkem.MLKEM768PublicKey.from_public_bytes(pk).encapsulate()

def decapsulate(seed, ct):
    if len(ct) != CIPHERTEXT_LEN: raise ValueError("BadLength ciphertext")
    return private(seed).decapsulate(ct)

def signed_message(kind, id_, created_at, key): return bytes([kind]) + u32be(id_) + u64be(created_at) + key

def sign_prekey(ed_seed, kind, id_, created_at, key):
    return labelled_sign(ed_seed, KEM_PREKEY, signed_message(kind, id_, created_at, key))

def verify_prekey(ed_public, kind, id_, created_at, key, sig):
    return len(key) == PUBLIC_KEY_LEN and ed_verify(ed_public, signed_bytes(KEM_PREKEY, signed_message(kind, id_, created_at, key)), sig)

def new_seed(): return os.urandom(SEED_LEN)

def check_public(ek):
    """FIPS 203 7.2 encapsulation-key check (length and modulus): ValueError if it fails."""
    if len(ek) != PUBLIC_KEY_LEN: raise ValueError("BadLength encapsulation key")
    try: mlkem.MLKEM768PublicKey.from_public_bytes(ek)
    except Exception as e: raise ValueError(f"InvalidEncapsulationKey: {e}")
