"""The opaque.json randomness: ChaCha20Rng::from_seed([seed; 32]) per step. Draw order
(found by matching the vectors; opaque-ke 4's): every fresh 3DH key share is
DeriveDiffieHellmanKeyPair(32 random bytes); the OPRF blind and the ServerSetup key pairs
are 64 random bytes reduced mod l."""
import ristretto as R, opaque as O
from chacharng import ChaCha20Rng
DH = b"OPAQUE-DeriveDiffieHellmanKeyPair"

def server_setup(seed):            # -> oprf_seed, server sk, fake-record key pair sk
    r = ChaCha20Rng([seed] * 32)
    sk = R.reduce64(r.fill_bytes(64)); oprf_seed = r.fill_bytes(64); fake_sk = R.reduce64(r.fill_bytes(64))
    return oprf_seed, sk, fake_sk

def client_registration_start(seed):
    return R.reduce64(ChaCha20Rng([seed] * 32).fill_bytes(64))          # blind

def client_registration_finish(seed):
    return ChaCha20Rng([seed] * 32).fill_bytes(32)                       # envelope_nonce

def client_login_start(seed):      # -> blind, key share (sk, pk), client_nonce
    r = ChaCha20Rng([seed] * 32)
    blind = R.reduce64(r.fill_bytes(64)); ks = O.derive_key_pair(r.fill_bytes(32), DH); nonce = r.fill_bytes(32)
    return blind, ks, nonce

def server_login_start(seed):      # -> fake masking key, masking_nonce, key share, server_nonce
    r = ChaCha20Rng([seed] * 32)
    fake_mk = r.fill_bytes(64); mn = r.fill_bytes(32); ks = O.derive_key_pair(r.fill_bytes(32), DH); sn = r.fill_bytes(32)
    return fake_mk, mn, ks, sn
