"""ristretto255 through the system libsodium (ctypes); PyNaCl 1.6 does not bind these functions."""
import ctypes, ctypes.util
_lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
assert _lib.sodium_init() >= 0
L = 2**252 + 27742317777372353535851937790883648493

def _buf(n): return ctypes.create_string_buffer(n)

def from_uniform(b64):
    assert len(b64) == 64
    out = _buf(32); _lib.crypto_core_ristretto255_from_hash(out, bytes(b64)); return out.raw

def is_valid(p): return _lib.crypto_core_ristretto255_is_valid_point(bytes(p)) == 1

def mul(s, p):
    out = _buf(32)
    if _lib.crypto_scalarmult_ristretto255(out, bytes(s), bytes(p)) != 0: raise ValueError("identity")
    return out.raw

def mul_base(s):
    out = _buf(32)
    if _lib.crypto_scalarmult_ristretto255_base(out, bytes(s)) != 0: raise ValueError("identity")
    return out.raw

def scalar_from_int(n): return (n % L).to_bytes(32, "little")
def scalar_to_int(s): return int.from_bytes(s, "little")
def reduce64(b): return scalar_from_int(int.from_bytes(b, "little"))
def invert(s): return scalar_from_int(pow(scalar_to_int(s), L - 2, L))
