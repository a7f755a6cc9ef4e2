"""Hybrid key agreement, PQXDH (issue 14; PROTOCOL 3.9/3.10, pre-key message 4.11 type 0x05).

X3DH's DHs (x3dh.py) plus one ML-KEM-768 shared secret, which is an extra HKDF
input and never replaces a DH. Pure functions: no state, no key storage."""
import hashlib
from prims import *
import x3dh
PQXDH_ROOT_KEY = b"umbra/v1/pqxdh/root-key"
PQXDH_AD = b"umbra/v1/pqxdh/associated-data"
TYPE_HYBRID_PREKEY = 0x05

def derive(dhs, ss_kem, parties, ek_a, spk_b, opk_b, kem_kind, kem_id, kem_pk, kem_ct):
    ikm = b"\xff" * 32 + b"".join(dhs) + ss_kem
    info = (PQXDH_ROOT_KEY + parties + ek_a + spk_b + (opk_b or b"") + bytes([kem_kind]) + u32be(kem_id)
            + kem_pk + kem_ct)
    ad = PQXDH_AD + parties + hashlib.sha256(kem_pk + kem_ct).digest()
    return ikm, info, hkdf(bytes(32), ikm, info, 32), ad

def initiate(ik_a_xsecret, parties, ek_secret, ik_b_x, spk_b, opk_b, kem_kind, kem_id, kem_pk, ss_kem, kem_ct):
    """The KEM encapsulation is done by the caller (kem.encapsulate) so vectors can supply it."""
    dhs, _ = x3dh.initiate(ik_a_xsecret, parties, ek_secret, ik_b_x, spk_b, opk_b)
    return dhs, derive(dhs, ss_kem, parties, x25519_pub(ek_secret), spk_b, opk_b, kem_kind, kem_id, kem_pk, kem_ct)

def respond(spk_secret, ik_b_xsecret, opk_secret, ik_a_x, ek_a, parties, kem_kind, kem_id, kem_pk, ss_kem, kem_ct):
    dhs, _ = x3dh.respond(spk_secret, ik_b_xsecret, opk_secret, ik_a_x, ek_a, parties)
    opk_pub = x25519_pub(opk_secret) if opk_secret else None
    return dhs, derive(dhs, ss_kem, parties, ek_a, x25519_pub(spk_secret), opk_pub, kem_kind, kem_id, kem_pk, kem_ct)

def hybrid_header_wire(identity, ek, spk_id, extra, kem_kind, kem_id, kem_ct):
    """The fields between type 0x05 and the ratchet message (4.11)."""
    return x3dh.initial_header_wire(identity, ek, spk_id, extra) + bytes([kem_kind]) + u32be(kem_id) + kem_ct
