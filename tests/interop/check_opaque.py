"""§11.3 opaque.json: every message, MAC and key recomputed from the password, the
server setup and the ChaCha20Rng seeds."""
from prims import *
import ristretto as R, opaque as O, rng_opaque as G
from wire import encode_frame, ClientFrame, RelayFrame

def xor(a, b): return bytes(x ^ y for x, y in zip(a, b))

def main():
    d = load("opaque.json"); c = Checker("opaque.json")
    ss = H(d["server_setup"]["bytes"]); c.eq("server setup length", len(ss), 128)
    oprf_seed, server_sk, fake_pk = ss[:64], ss[64:96], ss[96:]
    g_seed, g_sk, g_fake_sk = G.server_setup(d["server_setup"]["seed"])
    c.eq("server_setup from its seed", g_seed + g_sk + R.mul_base(g_fake_sk), ss)
    server_pk = R.mul_base(server_sk)
    c.eq("server_public_key", server_pk, d["server_setup"]["server_public_key"])
    pwd = H(d["password"]); cred = H(d["credential_identifier"]); P = O.hash_to_group(pwd)
    ku, _ = O.oprf_key(oprf_seed, cred)
    # registration
    reg = d["registration"]
    blind = G.client_registration_start(reg["client_start_seed"])
    blinded = R.mul(blind, P)
    c.eq("registration_request", blinded, reg["registration_request"])
    evaluated = R.mul(ku, blinded)
    c.eq("registration_response", evaluated + server_pk, reg["registration_response"])
    unblinded = R.mul(R.invert(blind), evaluated)            # OPRF Finalize
    c.eq("unblind = k*H(pwd)", unblinded, R.mul(ku, P))
    oprf_output = O.finalize(pwd, unblinded)
    rpwd = O.extract(b"", oprf_output + O.stretch(oprf_output, d["ksf"]))
    env_nonce = G.client_registration_finish(reg["client_finish_seed"])
    ck = O.client_keys(rpwd, env_nonce, server_pk)
    upload = ck["client_pk"] + ck["masking_key"] + env_nonce + ck["auth_tag"]
    c.eq("registration_upload", upload, reg["registration_upload"])
    c.eq("registration export_key", ck["export_key"], reg["export_key"])
    c.eq("frame register_start", encode_frame(ClientFrame, {"request_id": 1, "request": {"RegisterStart": {"username": "alice", "opaque_request": list(blinded)}}}), d["frames"]["register_start"])
    # login
    lg = d["login"]
    blind2, (c_esk, c_epk), cnonce = G.client_login_start(lg["client_start_seed"])
    ke1 = R.mul(blind2, P) + cnonce + c_epk
    c.eq("KE1 (credential_request)", ke1, lg["credential_request"])
    _, mnonce, (s_esk, s_epk), snonce = G.server_login_start(lg["server_start_seed"])
    pad = O.expand(ck["masking_key"], mnonce + b"CredentialResponsePad", 128)
    cred_resp = R.mul(ku, ke1[:32]) + mnonce + xor(pad, server_pk + env_nonce + ck["auth_tag"])
    pre = O.preamble(ck["client_pk"], ke1, server_pk, cred_resp, snonce, s_epk)
    ikm_s = R.mul(s_esk, c_epk) + R.mul(server_sk, c_epk) + R.mul(s_esk, ck["client_pk"])
    ikm_c = R.mul(c_esk, s_epk) + R.mul(c_esk, server_pk) + R.mul(ck["client_sk"], s_epk)
    c.eq("3DH ikm both sides", ikm_s, ikm_c)
    sk, km2, km3 = O.ake3dh_keys(ikm_s, pre)
    server_mac = O.mac(km2, O.sha512(pre))
    ke2 = cred_resp + snonce + s_epk + server_mac
    c.eq("KE2 (credential_response)", ke2, lg["credential_response"])
    c.eq("KE3 (credential_finalization)", O.mac(km3, O.sha512(pre + server_mac)), lg["credential_finalization"])
    c.eq("session_key", sk, lg["session_key"])
    # the client's view: unmask, open the envelope, recompute export_key
    opened = xor(O.expand(ck["masking_key"], ke2[32:64] + b"CredentialResponsePad", 128), ke2[64:192])
    c.eq("client unmasks server_pk", opened[:32], server_pk)
    c.eq("client checks auth_tag", O.client_keys(rpwd, opened[32:64], opened[:32])["auth_tag"], opened[64:])
    c.eq("login export_key", ck["export_key"], lg["export_key"])
    c.eq("frame login_response", encode_frame(RelayFrame, {"Response": {"request_id": 1, "response": {"LoginResponse": {"login_id": 5, "opaque_response": list(ke2)}}}}), d["frames"]["login_response_login_id_5"])
    for n, w in ((len(blinded), 32), (len(upload), 192), (len(ke1), 96), (len(ke2), 320), (len(H(lg["credential_finalization"])), 64)):
        c.eq("message length", n, w)
    # unknown user: fake record = (ServerSetup's spare public key, fresh masking key, all-zero envelope)
    uu = d["unknown_user_login"]
    c.eq("unknown-user credential id", H(uu["credential_identifier"]), b"umbra/v1/relay/unknown-user:mallory")
    kf, _ = O.oprf_key(oprf_seed, H(uu["credential_identifier"]))
    ke1u = H(uu["credential_request"])
    fake_mk, mn, (e_sk, e_pk), sn = G.server_login_start(uu["server_start_seed"])
    cr = R.mul(kf, ke1u[:32]) + mn + xor(O.expand(fake_mk, mn + b"CredentialResponsePad", 128), server_pk + bytes(96))
    pre_u = O.preamble(fake_pk, ke1u, server_pk, cr, sn, e_pk)
    ikm_u = R.mul(e_sk, ke1u[64:]) + R.mul(server_sk, ke1u[64:]) + R.mul(e_sk, fake_pk)
    _, km2u, _ = O.ake3dh_keys(ikm_u, pre_u)
    c.eq("fake KE2", cr + sn + e_pk + O.mac(km2u, O.sha512(pre_u)), uu["credential_response"])
    return c.report()

if __name__ == "__main__": main()
