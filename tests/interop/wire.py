"""§9 client <-> relay frames: schema from 9.5, 9.7, 9.8 (encoder + decoder)."""
from postcard import *
from content import valid_username

ERROR_CODES = {}  # filled from the spec table by check_wire (numbers 1..26)

def S(*fields): return ("struct", list(fields))
def E(*variants): return ("enum", list(variants))
FIX = lambda n: ("fixed", n)
OPT = lambda t: ("opt", t)
VEC = lambda t: ("vec", t)

AccountId = FIX(16)
Address = S(("account", AccountId), ("device", "u32"))
PublicKey = FIX(32)
PreKeyWire = S(("id", "u32"), ("key", PublicKey))
SignedPreKeyWire = S(("id", "u32"), ("created_at", "u64"), ("key", PublicKey), ("signature", FIX(64)))
PreKeyBundleWire = S(("account", AccountId), ("device", "u32"), ("identity", "bytes"), ("signed_prekey", SignedPreKeyWire),
                     ("one_time_prekey", OPT(PreKeyWire)), ("last_resort", OPT(PreKeyWire)))
AccountRef = E(("Username", "username"), ("Account", AccountId))
# issue 14 (PQ.md contract; PROTOCOL 9.5 rows pending): a signed ML-KEM-768 prekey and a hybrid bundle.
# The kind (one-time 0x01 / last-resort 0x02) is not on the wire: it is the field the key sits in.
KemPreKeyWire = S(("id", "u32"), ("created_at", "u64"), ("key", "bytes"), ("signature", FIX(64)))
HybridBundleWire = S(("bundle", PreKeyBundleWire), ("kem_one_time", OPT(KemPreKeyWire)), ("kem_last_resort", OPT(KemPreKeyWire)))
OutgoingEnvelope = S(("to", Address), ("envelope", "bytes"))
# §9.5, for the device frames of §15.4-15.6
Ticket = FIX(16)
DeviceInfo = S(("device", "u32"), ("created_at", "u64"), ("last_seen_at", "u64"))
LinkEnrolled = S(("account", AccountId), ("device", "u32"), ("token", FIX(32)), ("expires_at", "u64"))
SendOutcome = E(("Accepted", S(("seq", "u64"))), ("Rejected", S(("code", "code"))))

Request = E(
    ("RegisterStart", S(("username", "username"), ("opaque_request", "bytes"))),
    ("RegisterFinish", S(("username", "username"), ("opaque_upload", "bytes"))),
    ("LoginStart", S(("username", "username"), ("opaque_request", "bytes"))),
    ("LoginFinish", S(("login_id", "u64"), ("opaque_finalization", "bytes"))),
    ("Authenticate", S(("token", FIX(32)), ("device", "u32"))),
    ("Logout", S(("everywhere", "bool"))),
    ("PublishKeys", S(("identity", "bytes"), ("signed_prekey", SignedPreKeyWire), ("last_resort", OPT(PreKeyWire)))),
    ("UploadPreKeys", S(("prekeys", VEC(PreKeyWire)))),
    ("PreKeyCount", None),
    ("FetchBundle", S(("target", AccountRef))),
    ("ResolveUsername", S(("username", "username"))),
    ("Send", S(("messages", VEC(OutgoingEnvelope)))),
    ("Ack", S(("seqs", VEC("u64")))),
    ("Ephemeral", S(("to", Address), ("payload", "bytes"))),
    ("Rename", S(("new_username", "username"))),
    ("DeleteAccount", None),
    ("Ping", None),
    ("PasswordChangeStart", S(("credential_request", "bytes"), ("registration_request", "bytes"))),
    ("PasswordChangeFinish", S(("change_id", "u64"), ("credential_finalization", "bytes"), ("registration_upload", "bytes"))),
    ("PublishDeviceList", S(("list", "bytes"))),
    ("FetchDeviceList", S(("account", AccountId))),
    ("ListDevices", None),
    ("RemoveDevice", S(("device", "u32"))),
    ("FetchDeviceBundle", S(("account", AccountId), ("device", "u32"))),
    ("LinkCreate", None),
    ("LinkJoin", S(("ticket", Ticket))),
    ("LinkPost", S(("ticket", Ticket), ("payload", "bytes"))),
    ("LinkFetch", S(("ticket", Ticket), ("after", "u32"))),
    ("LinkEnrol", S(("ticket", Ticket))),
    # appended within v1 (9.4), issue 14
    ("UploadKemPreKeys", S(("last_resort", OPT(KemPreKeyWire)), ("one_time", VEC(KemPreKeyWire)))),
    ("KemPreKeyCount", None),
    ("FetchHybridBundle", S(("account", AccountId), ("device", OPT("u32")))),
    # §15.6: a fresh password login becomes a new device (password-only restore)
    ("LoginEnrol", None),
    # §16.9: key-transparency heads and proofs (the proofs are §16's encodings, as bytes)
    ("KtHead", S(("known", OPT("u64")), ("entry_of", OPT("u64")))),
    ("KtLookup", S(("label", AccountRef))),
    ("KtHistory", S(("label", AccountRef), ("first", "u64"))),
    # §15.6: a fresh password login gives a current device a token again
    ("LoginDevice", S(("device", "u32"))),
)
ClientFrame = S(("request_id", "u64"), ("request", Request))

Response = E(
    ("RegisterResponse", S(("opaque_response", "bytes"))),
    ("RegisterDone", S(("account", AccountId))),
    ("LoginResponse", S(("login_id", "u64"), ("opaque_response", "bytes"))),
    ("LoginDone", S(("token", FIX(32)), ("account", AccountId), ("expires_at", "u64"))),
    ("Authenticated", S(("address", Address))),
    ("SendResult", S(("results", VEC(SendOutcome)))),
    ("Bundle", PreKeyBundleWire),
    ("PreKeyCount", S(("remaining", "u32"), ("low_water", "u32"))),
    ("Resolved", S(("username", "username"), ("account", AccountId), ("identity", OPT("bytes")))),
    ("Ok", None),
    ("Pong", None),
    ("Error", S(("code", "code"), ("message", "str"), ("retry_after_secs", OPT("u32")))),
    ("PasswordChangeResponse", S(("change_id", "u64"), ("credential_response", "bytes"), ("registration_response", "bytes"))),
    ("PasswordChanged", S(("token", FIX(32)), ("expires_at", "u64"))),
    ("DeviceList", S(("list", OPT("bytes")))),
    ("Devices", S(("devices", VEC(DeviceInfo)))),
    ("LinkTicket", S(("ticket", Ticket), ("expires_at", "u64"))),
    ("LinkMessages", S(("messages", VEC("bytes")), ("enrolled", OPT(LinkEnrolled)))),
    ("DeviceEnrolled", S(("device", "u32"))),
    ("HybridBundle", HybridBundleWire),
    ("KemPreKeyCount", S(("remaining", "u32"), ("low_water", "u32"))),
    ("LoginEnrolled", LinkEnrolled),
    ("KtHead", S(("head", "bytes"), ("consistency", OPT("bytes")), ("entry", OPT("bytes")), ("inclusion", OPT("bytes")))),
    ("KtLookup", S(("head", "bytes"), ("proof", "bytes"))),
    ("KtHistory", S(("head", "bytes"), ("proof", "bytes"))),
)
RelayFrame = E(
    ("Response", S(("request_id", "u64"), ("response", Response))),
    ("Deliver", S(("seq", "u64"), ("envelope", "bytes"), ("received_at_ms", "u64"))),
    ("QueueEmpty", None),
    ("EphemeralDeliver", S(("payload", "bytes"))),
    ("PreKeysLow", S(("remaining", "u32"))),
    ("Closing", S(("code", "code"), ("reason", "str"))),
    ("KemPreKeysLow", S(("remaining", "u32"))),
)

def enc(t, v):
    if t == "u8": return bytes([v])
    if t in ("u16", "u32", "u64", "code"): return varint(v)
    if t == "bool": return boolean(v)
    if t == "bytes": return bstr(bytes(v))
    if t in ("str", "username"): return string(v)
    k = t[0]
    if k == "fixed":
        assert len(v) == t[1]; return bstr(bytes(v))
    if k == "opt": return opt(v, lambda x: enc(t[1], x))
    if k == "vec": return seq(v, lambda x: enc(t[1], x))
    if k == "struct": return b"".join(enc(ft, v[fn]) for fn, ft in t[1])
    if k == "enum":
        if isinstance(v, str): name, inner = v, None
        else: (name, inner), = v.items()
        for i, (vn, vt) in enumerate(t[1]):
            if vn == name: return varint(i) + (b"" if vt is None else enc(vt, inner))
        raise ValueError(name)
    raise ValueError(t)

def dec(t, r):
    if t == "u8": return r.u8()
    if t == "u16": return r.u16()
    if t == "u32": return r.u32()
    if t == "u64": return r.u64()
    if t == "code":
        n = r.u16()
        if n not in ERROR_CODES: raise Malformed("unknown error code")
        return n
    if t == "bool": return r.bool()
    if t == "bytes": return list(r.bytes())
    if t == "str": return r.string()
    if t == "username":
        s = r.string()
        if not valid_username(s): raise Malformed("bad username")
        return s
    k = t[0]
    if k == "fixed": return list(r.fixed(t[1]))
    if k == "opt": return r.opt(lambda: dec(t[1], r))
    if k == "vec": return r.seq(lambda: dec(t[1], r))
    if k == "struct": return {fn: dec(ft, r) for fn, ft in t[1]}
    if k == "enum":
        i = r.u32()
        if i >= len(t[1]): raise Malformed("unknown enum tag")
        vn, vt = t[1][i]
        return vn if vt is None else {vn: dec(vt, r)}
    raise ValueError(t)

MAX_FRAME_BYTES = 262144

class WireError(Exception):
    def __init__(self, name, code): super().__init__(name); self.name, self.code = name, code

def encode_frame(schema, v): return b"\x01" + enc(schema, v)

def decode_frame(schema, m):
    if len(m) > MAX_FRAME_BYTES: raise WireError("TooLarge", 3)
    if not m: raise WireError("Empty", 1)
    if len(m) == 3 and m[0] == 0: raise WireError("PeerRejectedVersion", 2)
    if m[0] != 1: raise WireError("UnsupportedVersion", 2)
    r = Reader(m[1:])
    try: v = dec(schema, r)
    except Malformed: raise WireError("Malformed", 1)
    if r.left(): raise WireError("TrailingBytes", 1)
    if enc(schema, v) != m[1:]: raise WireError("NonCanonical", 1)
    return v
