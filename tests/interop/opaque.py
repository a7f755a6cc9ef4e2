"""§11.3 OPAQUE (RFC 9807) with ristretto255-SHA512 OPRF, 3DH, Argon2id KSF."""
import hashlib, hmac
import ristretto as R
from prims import hkdf_expand, hkdf_extract
from argon2.low_level import hash_secret_raw, Type

CONTEXT = b"OPRFV1-\x00-ristretto255-SHA512"
def i2osp(n, k): return n.to_bytes(k, "big")
def sha512(b): return hashlib.sha512(b).digest()
def expand(prk, info, L): return hkdf_expand(prk, info, L, hashlib.sha512)
def extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha512).digest()
def mac(k, m): return hmac.new(k, m, hashlib.sha512).digest()

def expand_message_xmd(msg, dst, n):
    # RFC 9380 5.3.1 with SHA-512 (b = 64, s = 128)
    ell = -(-n // 64)
    dst_prime = dst + i2osp(len(dst), 1)
    b0 = sha512(bytes(128) + msg + i2osp(n, 2) + b"\x00" + dst_prime)
    b = [sha512(b0 + b"\x01" + dst_prime)]
    for i in range(2, ell + 1):
        b.append(sha512(bytes(x ^ y for x, y in zip(b0, b[-1])) + i2osp(i, 1) + dst_prime))
    return b"".join(b)[:n]

def hash_to_group(msg): return R.from_uniform(expand_message_xmd(msg, b"HashToGroup-" + CONTEXT, 64))
def hash_to_scalar(msg, dst): return R.reduce64(expand_message_xmd(msg, dst, 64))

def derive_key_pair(seed, info):
    inp = seed + i2osp(len(info), 2) + info
    for counter in range(256):
        sk = hash_to_scalar(inp + i2osp(counter, 1), b"DeriveKeyPair" + CONTEXT)
        if R.scalar_to_int(sk) != 0: return sk, R.mul_base(sk)
    raise ValueError("DeriveKeyPairError")

def oprf_key(oprf_seed, cred_id):
    return derive_key_pair(expand(oprf_seed, cred_id + b"OprfKey", 32), b"OPAQUE-DeriveKeyPair")

def finalize(password, unblinded):
    return sha512(i2osp(len(password), 2) + password + i2osp(32, 2) + unblinded + b"Finalize")

def stretch(x, ksf):
    return hash_secret_raw(secret=x, salt=bytes.fromhex(ksf["salt"]), time_cost=ksf["iterations"],
                           memory_cost=ksf["memory_kib"], parallelism=ksf["parallelism"],
                           hash_len=ksf["output_len"], type=Type.ID, version=ksf["version"])

def client_keys(randomized_pwd, nonce, server_pk):
    masking_key = expand(randomized_pwd, b"MaskingKey", 64)
    auth_key = expand(randomized_pwd, nonce + b"AuthKey", 64)
    export_key = expand(randomized_pwd, nonce + b"ExportKey", 64)
    seed = expand(randomized_pwd, nonce + b"PrivateKey", 32)
    csk, cpk = derive_key_pair(seed, b"OPAQUE-DeriveDiffieHellmanKeyPair")
    auth_tag = mac(auth_key, nonce + server_pk + i2osp(32, 2) + server_pk + i2osp(32, 2) + cpk)
    return dict(masking_key=masking_key, auth_key=auth_key, export_key=export_key, client_sk=csk,
                client_pk=cpk, auth_tag=auth_tag)

def expand_label(secret, label, context, L):
    info = i2osp(L, 2) + i2osp(len(b"OPAQUE-" + label), 1) + b"OPAQUE-" + label + i2osp(len(context), 1) + context
    return expand(secret, info, L)
def derive_secret(secret, label, th): return expand_label(secret, label, th, 64)

def ake3dh_keys(ikm, preamble):
    prk = extract(b"", ikm)
    hs = derive_secret(prk, b"HandshakeSecret", sha512(preamble))
    sk = derive_secret(prk, b"SessionKey", sha512(preamble))
    km2 = derive_secret(hs, b"ServerMAC", b"")
    km3 = derive_secret(hs, b"ClientMAC", b"")
    return sk, km2, km3

def preamble(client_pk, ke1, server_pk, cred_resp, server_nonce, server_ks, context=b""):
    return (b"OPAQUEv1-" + i2osp(len(context), 2) + context + i2osp(32, 2) + client_pk + ke1
            + i2osp(32, 2) + server_pk + cred_resp + server_nonce + server_ks)
