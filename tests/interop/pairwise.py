"""§4.4 ratchet message and §4.11 pairwise message decoding (types 0x01-0x03, 0x05 hybrid pre-key)."""
from edpoint import decompresses
import ratchet

class PairwiseError(Exception): pass

def parse_ratchet(b):
    """4.4 (version 0x02, 178-byte header, chunk slot of 4.3) -> (header, ciphertext)."""
    try: hdr, _, ct = ratchet.parse(b)
    except ratchet.RatchetError as e: raise PairwiseError(str(e))
    return hdr, ct

def parse_identity(b):
    if len(b) != 128: raise PairwiseError("BadLength")
    if not decompresses(b[:32]): raise PairwiseError("InvalidSigningKey")
    return b

def parse_pairwise(b):
    if not b: raise PairwiseError('Malformed("empty message")')
    t = b[0]
    if t == 2:
        return ("plain", None, _ratchet(b[1:]))
    if t in (1, 5):
        fields, rest = prekey_fields(t, b[1:])
        return ("prekey" if t == 1 else "hybrid", fields, _ratchet(rest))
    if t == 3:
        return ("ephemeral", None, b[1:])
    raise PairwiseError('Malformed("unknown message type")')

def prekey_fields(t, rest):
    """Field by field (PROTOCOL.md 4.11, types 0x01 and 0x05), each checked before the next is read.
    -> (fields, the ratchet message bytes)."""
    pos = 0
    trunc = "truncated pre-key message" if t == 1 else "truncated hybrid pre-key message"
    def take(n, what=trunc):
        nonlocal pos
        if len(rest) - pos < n: raise PairwiseError(f'Malformed("{what}")')
        pos += n; return rest[pos - n:pos]
    try: ident = parse_identity(take(128))
    except PairwiseError as e:
        if "truncated" in str(e): raise
        raise PairwiseError('Malformed("initiator identity")')
    ek = take(32); spk_id = int.from_bytes(take(4), "big"); tag = take(1)[0]
    if tag == 0: extra = None
    elif tag in (1, 2): extra = ({1: "OneTime", 2: "LastResort"}[tag], int.from_bytes(take(4), "big"))
    else: raise PairwiseError('Malformed("unknown extra prekey tag")')
    if t == 1:
        return (ident, ek, spk_id, extra), rest[pos:]
    kind = take(1)[0]
    if kind not in (1, 2): raise PairwiseError('Malformed("unknown KEM prekey kind")')
    kem_id = int.from_bytes(take(4), "big")
    kem_ct = take(1088, "truncated KEM ciphertext in hybrid pre-key message")
    return (ident, ek, spk_id, extra, kind, kem_id, kem_ct), rest[pos:]

def _ratchet(b):
    try: return parse_ratchet(b)
    except PairwiseError as e: raise PairwiseError(f"RatchetEncoding({e})")
