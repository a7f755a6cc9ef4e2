"""Ed25519 point decompression check (RFC 8032 5.1.3), used only to classify
'does not decompress' (IdentityError::InvalidSigningKey / group InvalidSigningKey)."""
P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P

def decompresses(b):
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    y %= P   # curve25519-dalek reads the field element without a canonicity check
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x2 = u * pow(v, P - 2, P) % P
    if x2 == 0: return True
    return pow(x2, (P - 1) // 2, P) == 1
