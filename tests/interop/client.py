"""A spec-only umbra client in Python, for interop against a real relay and the Rust CLI.

usage: python client.py URL USERNAME PASSWORD send PEER TEXT
       python client.py URL USERNAME PASSWORD reply PEER_ADDRESS_HEX TEXT [COUNT]
       python client.py URL USERNAME PASSWORD receive SECONDS
State (identity, prekeys, sessions) is kept in ./state-USERNAME.json (plaintext: test only)."""
import asyncio, json, os, sys, time
import websockets
from prims import *
import ristretto as R, opaque as O, wire, x3dh, sealed, ratchet, pairwise, content, kem, pqxdh
from identity import public_identity, verify_identity, SIGNED_PREKEY
from check_padding import pad, unpad
from check_wire import spec_error_table

wire.ERROR_CODES.update({n: v[0] for n, v in spec_error_table().items()})
KSF = dict(salt="00" * 16, iterations=3, memory_kib=65536, parallelism=1, output_len=64, version=19)

class Conn:
    def __init__(self, ws): self.ws, self.rid, self.pushes = ws, 0, []
    async def req(self, request):
        self.rid += 1
        await self.ws.send(wire.encode_frame(wire.ClientFrame, {"request_id": self.rid, "request": request}))
        while True:
            f = wire.decode_frame(wire.RelayFrame, await self.ws.recv())
            if isinstance(f, dict) and "Response" in f and f["Response"]["request_id"] == self.rid:
                return f["Response"]["response"]
            self.pushes.append(f)

def xor(a, b): return bytes(x ^ y for x, y in zip(a, b))

async def register(c, username, pwd):
    blind = R.reduce64(os.urandom(64)); P = O.hash_to_group(pwd)
    r = await c.req({"RegisterStart": {"username": username, "opaque_request": list(R.mul(blind, P))}})
    resp = bytes(r["RegisterResponse"]["opaque_response"]); ev, spk = resp[:32], resp[32:]
    y = O.finalize(pwd, R.mul(R.invert(blind), ev))
    rpwd = O.extract(b"", y + O.stretch(y, KSF))
    nonce = os.urandom(32); ck = O.client_keys(rpwd, nonce, spk)
    up = ck["client_pk"] + ck["masking_key"] + nonce + ck["auth_tag"]
    r = await c.req({"RegisterFinish": {"username": username, "opaque_upload": list(up)}})
    return bytes(r["RegisterDone"]["account"])

async def login(c, username, pwd):
    blind = R.reduce64(os.urandom(64)); P = O.hash_to_group(pwd)
    esk, epk = O.derive_key_pair(os.urandom(32), b"OPAQUE-DeriveDiffieHellmanKeyPair"); cn = os.urandom(32)
    ke1 = R.mul(blind, P) + cn + epk
    r = await c.req({"LoginStart": {"username": username, "opaque_request": list(ke1)}})
    lid, ke2 = r["LoginResponse"]["login_id"], bytes(r["LoginResponse"]["opaque_response"])
    ev, mn, masked, sn, sks, smac = ke2[:32], ke2[32:64], ke2[64:192], ke2[192:224], ke2[224:256], ke2[256:]
    y = O.finalize(pwd, R.mul(R.invert(blind), ev))
    rpwd = O.extract(b"", y + O.stretch(y, KSF))
    mk = O.expand(rpwd, b"MaskingKey", 64)
    opened = xor(O.expand(mk, mn + b"CredentialResponsePad", 128), masked)
    spk, env_nonce, tag = opened[:32], opened[32:64], opened[64:]
    ck = O.client_keys(rpwd, env_nonce, spk)
    if not hmac.compare_digest(ck["auth_tag"], tag): raise SystemExit("login: envelope does not open (wrong password)")
    pre = O.preamble(ck["client_pk"], ke1, spk, ke2[:192], sn, sks)
    ikm = R.mul(esk, sks) + R.mul(esk, spk) + R.mul(ck["client_sk"], sks)
    _, km2, km3 = O.ake3dh_keys(ikm, pre)
    if not hmac.compare_digest(O.mac(km2, O.sha512(pre)), smac): raise SystemExit("login: bad server_mac")
    r = await c.req({"LoginFinish": {"login_id": lid, "opaque_finalization": list(O.mac(km3, O.sha512(pre + smac)))}})
    return bytes(r["LoginDone"]["token"]), bytes(r["LoginDone"]["account"])

def load_state(u):
    p = f"state-{u}.json"
    return json.load(open(p)) if os.path.exists(p) else None
def save_state(u, st): json.dump(st, open(f"state-{u}.json", "w"), indent=1)

def new_state(account):
    ed, xs = os.urandom(32), os.urandom(32)
    spk = os.urandom(32); now = int(time.time())
    return {"account": account.hex(), "ed": ed.hex(), "x": xs.hex(), "spk": spk.hex(), "spk_id": 1, "spk_at": now,
            "lr": os.urandom(32).hex(), "sessions": {},
            # ML-KEM-768 prekeys (issue 14): the last-resort one (id 1) and, with UPLOAD_OTPS, one-time ones
            "kem_lr": {"id": 1, "at": now, "seed": kem.new_seed().hex()}, "kem_otps": {}}

def kem_wire(st, kind, id_, at, seed):
    pub = kem.public_bytes(H(seed))
    return {"id": id_, "created_at": at, "key": list(pub), "signature": list(kem.sign_prekey(H(st["ed"]), kind, id_, at, pub))}

async def upload_kem_prekeys(c, st, one_time=()):
    """UploadKemPreKeys (request 29): the last-resort key and the given one-time ids, each signed (3.9)."""
    lr = st["kem_lr"]
    r = await c.req({"UploadKemPreKeys": {"last_resort": kem_wire(st, kem.LAST_RESORT, lr["id"], lr["at"], lr["seed"]),
                     "one_time": [kem_wire(st, kem.ONE_TIME, int(i), st["kem_otps"][i]["at"], st["kem_otps"][i]["seed"]) for i in one_time]}})
    print("kem upload:", r)
    return r

def _hx(v): return v.hex() if isinstance(v, bytes) else v
def session_to_json(s):
    """Everything of 4.5's state, the braids of 4.13 included (plaintext: test only)."""
    peer = s.peer
    if peer[0] == "collecting": peer_j = ["collecting", {str(i): d.hex() for i, d in peer[1].items()}]
    elif peer[0] == "complete": peer_j = ["complete", peer[1].hex()]
    else: peer_j = ["encapsulated", peer[1].hex(), peer[2].hex(), peer[3]]
    return {k: _hx(v) for k, v in
            dict(ad=s.ad, rk=s.rk, dhs=s.dhs, dhr=s.dhr, cks=s.cks, ns=s.ns, ckr=s.ckr, nr=s.nr, pn=s.pn,
                 pqs=s.pqs, e_own=s.e_own, own_seed=s.own_seed, own_ready=s.own_ready, own_next=s.own_next,
                 e_peer=s.e_peer, turn=s.turn).items()} | {
            "skipped": [[k[0].hex(), k[1], v[0].hex(), v[1].hex()] for k, v in s.skipped.items()],
            "retired": [r.hex() for r in s.retired], "epochs": [[a.hex(), b.hex()] for a, b in s.epochs],
            "own_ct": {str(i): d.hex() for i, d in s.own_ct.items()}, "peer": peer_j}
def session_from_json(j):
    s = ratchet.Session(H(j["ad"]))
    for k in ("rk", "dhs", "dhr", "cks", "ckr", "own_seed", "own_ready"): setattr(s, k, H(j[k]) if j[k] else None)
    for k in ("ns", "nr", "pn", "pqs", "e_own", "own_next", "e_peer", "turn"): setattr(s, k, j[k])
    s.skipped = {(H(a), n): (H(k), H(nn)) for a, n, k, nn in j["skipped"]}
    s.retired = [H(r) for r in j["retired"]]; s.epochs = [(H(a), H(b)) for a, b in j["epochs"]]
    s.own_ct = {int(i): H(d) for i, d in j["own_ct"].items()}
    p = j["peer"]
    s.peer = (("collecting", {int(i): H(d) for i, d in p[1].items()}) if p[0] == "collecting" else
              ("complete", H(p[1])) if p[0] == "complete" else ("encapsulated", H(p[1]), H(p[2]), p[3]))
    return s

def braids(s):
    """The public view of 4.13's state (Session::pq_epochs and phases), for the interop log."""
    return (f"pq: sending_epoch={s.pqs} own_epoch={s.e_own} own_ready={s.own_ready is not None} "
            f"peer_epoch={s.e_peer} peer={s.peer[0]}{'(' + str(len(s.peer[1])) + ')' if s.peer[0] == 'collecting' else ''}")

async def setup(url, username, pwd):
    ws = await websockets.connect(url.replace("http", "ws") + "/v1/ws", max_size=2**20)
    c = Conn(ws); st = load_state(username)
    if st is None:
        acct = await register(c, username, pwd); st = new_state(acct)
        save_state(username, st); fresh = True
    else: fresh = False
    token, acct = await login(c, username, pwd)
    assert acct.hex() == st["account"]
    r = await c.req({"Authenticate": {"token": list(token), "device": 1}})
    assert "Authenticated" in r, r
    me = public_identity(H(st["ed"]), H(st["x"]))
    if fresh:
        spk_pub = x25519_pub(H(st["spk"]))
        sig = labelled_sign(H(st["ed"]), SIGNED_PREKEY, u32be(st["spk_id"]) + u64be(st["spk_at"]) + spk_pub)
        r = await c.req({"PublishKeys": {"identity": list(me), "signed_prekey": {"id": st["spk_id"], "created_at": st["spk_at"],
                         "key": list(spk_pub), "signature": list(sig)}, "last_resort": {"id": 0, "key": list(x25519_pub(H(st["lr"])))}}})
        assert r == "Ok", r
        if os.environ.get("UPLOAD_OTPS"):
            st["otps"] = {str(i): os.urandom(32).hex() for i in (1, 2)}
            r = await c.req({"UploadPreKeys": {"prekeys": [{"id": int(i), "key": list(x25519_pub(H(v)))} for i, v in st["otps"].items()]}})
            print("upload:", r); save_state(username, st)
        if os.environ.get("CLASSICAL") != "1":
            if os.environ.get("UPLOAD_OTPS"):
                st["kem_otps"] = {str(i): {"at": st["spk_at"], "seed": kem.new_seed().hex()} for i in (7, 8)}
            r = await upload_kem_prekeys(c, st, list(st["kem_otps"]))
            assert "KemPreKeyCount" in r, r
            save_state(username, st)
    return c, st, me

def verify_bundle(b):
    """3.5 checks of a PreKeyBundleWire: the identity binding, the signed prekey's signature."""
    ik_b = bytes(b["identity"]); spkw = b["signed_prekey"]
    assert verify_identity(ik_b), "bundle identity binding"
    assert ed_verify(ik_b[:32], signed_bytes(SIGNED_PREKEY, u32be(spkw["id"]) + u64be(spkw["created_at"]) + bytes(spkw["key"])), bytes(spkw["signature"])), "BadSignedPreKeySignature"
    return ik_b, spkw

MAX_AGE, MAX_FUTURE = 1209600, 3600   # 3.4 SIGNED_PREKEY_MAX_AGE_SECS / _MAX_FUTURE_SECS, inclusive (3.5)

def choose_kem(ik_b, hb, now=None):
    """3.5 steps 3-8 for a HybridBundleWire (steps 1-2 are verify_bundle): every served KEM prekey's
    signature with the kind of its field and FIPS 203's key check; at least one (else NoKemPreKey: no
    classical fallback); the signed prekey's and a served last-resort KEM prekey's age. Then the KEM
    prekey PQXDH uses: the one-time one if served, else the last-resort one."""
    now = int(time.time()) if now is None else now
    served = []
    for field, kind, err in (("kem_one_time", kem.ONE_TIME, "one-time"), ("kem_last_resort", kem.LAST_RESORT, "last-resort")):
        k = hb[field]
        if k is None: continue
        if not kem.verify_prekey(ik_b[:32], kind, k["id"], k["created_at"], bytes(k["key"]), bytes(k["signature"])):
            raise SystemExit(f"BadKemPreKeySignature ({err})")
        try: kem.check_public(bytes(k["key"]))
        except ValueError: raise SystemExit(f"InvalidKemPreKey ({err})")
        served.append((kind, k))
    if not served: raise SystemExit("NoKemPreKey: the bundle has no ML-KEM prekey; refusing a classical session")
    def fresh(at, what):
        if at > now + MAX_FUTURE: raise SystemExit(f"{what}FromFuture {{ created_at: {at}, now: {now} }}")
        if now - at > MAX_AGE: raise SystemExit(f"{what}Expired {{ created_at: {at}, now: {now} }}")
    fresh(hb["bundle"]["signed_prekey"]["created_at"], "SignedPreKey")
    if hb["kem_last_resort"] is not None: fresh(hb["kem_last_resort"]["created_at"], "KemPreKey")
    kind, k = served[0]
    return kind, k["id"], bytes(k["key"])

async def send(url, username, pwd, peer, text):
    c, st, me = await setup(url, username, pwd)
    my_addr = x3dh.addr(H(st["account"]), 1)
    classical = os.environ.get("CLASSICAL") == "1"
    if classical:
        r = await c.req({"FetchBundle": {"target": {"Username": peer}}}); b = r["Bundle"]
    else:
        r = await c.req({"ResolveUsername": {"username": peer}}); acct = r["Resolved"]["account"]
        r = await c.req({"FetchHybridBundle": {"account": acct, "device": None}})
        assert "HybridBundle" in r, r
        hb = r["HybridBundle"]; b = hb["bundle"]
    ik_b, spkw = verify_bundle(b)
    their_addr = x3dh.addr(bytes(b["account"]), 1)
    extra_w = b["one_time_prekey"] or b["last_resort"]
    extra = None if extra_w is None else (("OneTime" if b["one_time_prekey"] else "LastResort"), extra_w["id"])
    ek = os.urandom(32)
    parties = x3dh.transcript(me, my_addr, ik_b, their_addr)
    opk = bytes(extra_w["key"]) if extra_w else None
    if classical:
        _, (_, _, sk, ad) = x3dh.initiate(H(st["x"]), parties, ek, ik_b[32:64], bytes(spkw["key"]), opk)
        msg_type = ratchet.TYPE_PREKEY
        head = b"\x01" + x3dh.initial_header_wire(me, x25519_pub(ek), spkw["id"], extra)
    else:
        kind, kem_id, kem_pk = choose_kem(ik_b, hb)
        ss, ct = kem.encapsulate(kem_pk)
        _, (_, _, sk, ad) = pqxdh.initiate(H(st["x"]), parties, ek, ik_b[32:64], bytes(spkw["key"]), opk, kind, kem_id, kem_pk, ss, ct)
        print("hybrid pre-key message, KEM prekey:", {1: "OneTime", 2: "LastResort"}[kind], kem_id)
        msg_type = pqxdh.TYPE_HYBRID_PREKEY
        head = bytes([msg_type]) + pqxdh.hybrid_header_wire(me, x25519_pub(ek), spkw["id"], extra, kind, kem_id, ct)
    sess = ratchet.Session.initiator(sk, ad, bytes(spkw["key"]), os.urandom(32))
    body = content.encode({"Text": {"id": list(os.urandom(16)), "body": text, "sent_at_ms": int(time.time() * 1000)}})
    claim_user = os.environ.get("CLAIM_USER", username)
    claim_acct = H(os.environ["CLAIM_ACCOUNT"]) if os.environ.get("CLAIM_ACCOUNT") else H(st["account"])
    payload = content.payload_encode(claim_acct, 1, claim_user, body)
    rm = sess.encrypt(pad(payload), msg_type=msg_type)
    env = sealed.seal(me, H(st["x"]), my_addr, ik_b, head + rm, os.urandom(32))
    r = await c.req({"Send": {"messages": [{"to": {"account": b["account"], "device": 1}, "envelope": list(env)}]}})
    print("send:", r)
    st["sessions"][their_addr.hex()] = {"peer": ik_b.hex(), "s": session_to_json(sess)}
    save_state(username, st)
    await c.ws.close()

async def reply(url, username, pwd, peer_addr_hex, text, count=1):
    """COUNT plain messages (TEXT, or TEXT #i) on the session, one Send each, in order."""
    c, st, me = await setup(url, username, pwd)
    rec = st["sessions"][peer_addr_hex]; sess = session_from_json(rec["s"])
    assert sess.ckr is not None, "no reply received yet: a plain message needs one"
    peer = H(peer_addr_hex)
    for i in range(count):
        body = content.encode({"Text": {"id": list(os.urandom(16)), "body": text if count == 1 else f"{text} #{i}",
                                        "sent_at_ms": int(time.time() * 1000)}})
        payload = content.payload_encode(H(st["account"]), 1, username, body)
        rm = sess.encrypt(pad(payload), msg_type=ratchet.TYPE_PLAIN)
        hdr = rm[1:1 + ratchet.HEADER_LEN]
        env = sealed.seal(me, H(st["x"]), x3dh.addr(H(st["account"]), 1), H(rec["peer"]), b"\x02" + rm, os.urandom(32))
        r = await c.req({"Send": {"messages": [{"to": {"account": list(peer[:16]), "device": 1}, "envelope": list(env)}]}})
        print("reply:", r, "header pq_epoch", int.from_bytes(hdr[40:44], "big"), "slot kind", hdr[44], "|", braids(sess))
        rec["s"] = session_to_json(sess); save_state(username, st)
    await c.ws.close()

async def send_raw(url, username, pwd, peer, inner_hex):
    """Seal arbitrary pairwise bytes to PEER (for the 12.5 acknowledgement rule)."""
    c, st, me = await setup(url, username, pwd)
    r = await c.req({"FetchBundle": {"target": {"Username": peer}}}); b = r["Bundle"]
    env = sealed.seal(me, H(st["x"]), x3dh.addr(H(st["account"]), 1), bytes(b["identity"]), H(inner_hex), os.urandom(32))
    r = await c.req({"Send": {"messages": [{"to": {"account": b["account"], "device": 1}, "envelope": list(env)}]}})
    print("send_raw:", r); await c.ws.close()

def safety(username, peer_addr_hex):
    from check_safety_number import safety_number
    st = load_state(username); rec = st["sessions"][peer_addr_hex]
    me = public_identity(H(st["ed"]), H(st["x"]))
    sn = safety_number(H(st["account"]), me, H(peer_addr_hex)[:16], H(rec["peer"])).decode()
    print(" ".join(sn[i:i+5] for i in range(0, 60, 5)))

async def receive(url, username, pwd, secs):
    c, st, me = await setup(url, username, pwd)
    deadline = time.time() + secs
    seen_qe = False
    while time.time() < deadline:
        while c.pushes:
            f = c.pushes.pop(0)
            if f == "QueueEmpty": seen_qe = True; print("QueueEmpty"); continue
            if isinstance(f, dict) and "Deliver" in f:
                env = bytes(f["Deliver"]["envelope"])
                try:
                    ik_a, addr_a, inner = sealed.open_(me, H(st["x"]), env)
                    kind, hdr, _ = pairwise.parse_pairwise(inner)
                    rec = st["sessions"].get(addr_a.hex())
                    if kind == "plain":
                        assert rec and H(rec["peer"]) == ik_a, "SenderMismatch"
                        s = session_from_json(rec["s"]); pt = s.decrypt(inner[1:], ratchet.TYPE_PLAIN)
                        print("plain message, header pq_epoch", int.from_bytes(inner[2 + 40:2 + 44], "big"), "slot kind", inner[2 + 44])
                    elif kind == "prekey":
                        ident, ek_a, spk_id, extra = hdr
                        assert ident == ik_a, "SenderMismatch"
                        assert spk_id == st["spk_id"]
                        opk = None if extra is None else (H(st["lr"]) if extra[0] == "LastResort" else H(st["otps"].pop(str(extra[1]))))
                        print("pre-key message, extra prekey:", extra)
                        parties = x3dh.transcript(ik_a, addr_a, me, x3dh.addr(H(st["account"]), 1))
                        _, (_, _, sk, ad) = x3dh.respond(H(st["spk"]), H(st["x"]), opk, ik_a[32:64], ek_a, parties)
                        s = ratchet.Session.responder(sk, ad, H(st["spk"]))
                        pt = s.decrypt(pairwise.prekey_fields(1, inner[1:])[1], ratchet.TYPE_PREKEY)
                    elif kind == "hybrid":
                        ident, ek_a, spk_id, extra, kem_kind, kem_id, kem_ct = hdr
                        assert ident == ik_a, "SenderMismatch"
                        assert spk_id == st["spk_id"]
                        opk = None if extra is None else (H(st["lr"]) if extra[0] == "LastResort" else H(st["otps"].pop(str(extra[1]))))
                        if kem_kind == kem.LAST_RESORT:
                            assert kem_id == st["kem_lr"]["id"], "UnknownPreKey (KEM last resort)"
                            kseed = H(st["kem_lr"]["seed"])
                        else:
                            kseed = H(st["kem_otps"].pop(str(kem_id))["seed"])
                        print("hybrid pre-key message, extra prekey:", extra, "KEM prekey:", {1: "OneTime", 2: "LastResort"}[kem_kind], kem_id)
                        ss = kem.decapsulate(kseed, kem_ct)
                        parties = x3dh.transcript(ik_a, addr_a, me, x3dh.addr(H(st["account"]), 1))
                        _, (_, _, sk, ad) = pqxdh.respond(H(st["spk"]), H(st["x"]), opk, ik_a[32:64], ek_a, parties,
                                                          kem_kind, kem_id, kem.public_bytes(kseed), ss, kem_ct)
                        s = ratchet.Session.responder(sk, ad, H(st["spk"]))
                        pt = s.decrypt(pairwise.prekey_fields(5, inner[1:])[1], pqxdh.TYPE_HYBRID_PREKEY)
                    else:
                        raise Exception("ephemeral in a Deliver")
                    acct, dev, user, cont = content.payload_decode(unpad(pt))
                    print("received from", user, acct.hex(), dev, json.dumps(cont), "|", braids(s))
                    st["sessions"][addr_a.hex()] = {"peer": ik_a.hex(), "s": session_to_json(s)}
                    save_state(username, st)
                except Exception as e:
                    print("undecryptable:", type(e).__name__, e)
                await c.req({"Ack": {"seqs": [f["Deliver"]["seq"]]}})
            else:
                print("push:", f)
        try:
            m = await asyncio.wait_for(c.ws.recv(), timeout=0.5)
            c.pushes.append(wire.decode_frame(wire.RelayFrame, m))
        except asyncio.TimeoutError:
            pass
    await c.ws.close()

if __name__ == "__main__":
    url, user, pw, cmd = sys.argv[1:5]
    if cmd == "reply": asyncio.run(reply(url, user, pw.encode(), sys.argv[5], sys.argv[6], int(sys.argv[7]) if len(sys.argv) > 7 else 1))
    elif cmd == "send_raw": asyncio.run(send_raw(url, user, pw.encode(), sys.argv[5], sys.argv[6]))
    elif cmd == "safety": safety(user, sys.argv[5])
    elif cmd == "send": asyncio.run(send(url, user, pw.encode(), sys.argv[5], sys.argv[6]))
    else: asyncio.run(receive(url, user, pw.encode(), float(sys.argv[5])))
