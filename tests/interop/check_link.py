"""§15.7 linking a device, from docs/PROTOCOL.md alone: the link code's base32
text and how a typed code is read, K_join and msg1, the X25519 exchange, K_prov
and msg2, the provisioning layout, and every refusal with its error name."""
import base64
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as xseal
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as xopen
from nacl.exceptions import CryptoError
from prims import *
from chacharng import ChaCha20Rng
from postcard import Reader, Malformed, varint
from content import valid_username, validate, ContentError

JOINER_KEY = b"umbra/v1/link/joiner-key"
PROVISION_KEY = b"umbra/v1/link/provision-key"
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
MAX_LINK_MESSAGE = 32768
MAX_PROVISIONING = MAX_LINK_MESSAGE - 73

class Refused(Exception):
    """str(e) is the error as link.json names it."""

# ---- the code ----
def code_text(ticket, secret):
    return base64.b32encode(ticket + secret).decode().rstrip("=").lower()

def parse_code(text):
    kept = [c for c in text if c not in " -"]
    if len(kept) != 77: raise Refused(f"CodeLength {{ found: {len(kept)} }}")
    folded = "".join(c.lower() if c.isascii() else c for c in kept)
    for i, c in enumerate(folded):
        if c not in ALPHABET: raise Refused(f"CodeCharacter {{ position: {i + 1} }}")
    # 77 characters carry 385 bits for 384: the last one's low bit is unused.
    if ALPHABET.index(folded[-1]) & 1: raise Refused("CodeEnding")
    raw = base64.b32decode(folded.upper() + "===")
    return raw[:16], raw[16:]

# ---- the two messages ----
def k_join(ticket, secret): return hkdf(ticket, secret, JOINER_KEY, 32)

def make_msg1(ticket, secret, n1, e_j_pub):
    return b"\x01" + n1 + xseal(e_j_pub, ticket + b"\x01", n1, k_join(ticket, secret))

def k_prov(secret, dh, ticket, e_j_pub, e_c_pub):
    return hkdf(secret, dh, PROVISION_KEY + ticket + e_j_pub + e_c_pub, 32)

def make_msg2(ticket, secret, e_c, n2, e_j_pub, plaintext):
    e_c_pub = x25519_pub(e_c)
    key = k_prov(secret, x25519(e_c, e_j_pub), ticket, e_j_pub, e_c_pub)
    return b"\x02" + e_c_pub + n2 + xseal(plaintext, ticket + e_j_pub + e_c_pub, n2, key)

def creator_open(ticket, secret, msg1):
    if len(msg1) != 73: raise Refused(f"MessageLength {{ message: 1, len: {len(msg1)} }}")
    if msg1[0] != 1: raise Refused(f"MessageType {{ message: 1, found: {msg1[0]} }}")
    try: e_j_pub = xopen(msg1[25:], ticket + b"\x01", msg1[1:25], k_join(ticket, secret))
    except CryptoError: raise Refused("JoinerMessageRefused")
    return e_j_pub

def creator_answer(ticket, secret, msg1, e_c, n2, plaintext):
    e_j_pub = creator_open(ticket, secret, msg1)
    try: return make_msg2(ticket, secret, e_c, n2, e_j_pub, plaintext)
    except NonContributory: raise Refused("NonContributory")

def joiner_finish(ticket, secret, e_j, msg2):
    if not 73 <= len(msg2) <= MAX_LINK_MESSAGE: raise Refused(f"MessageLength {{ message: 2, len: {len(msg2)} }}")
    if msg2[0] != 2: raise Refused(f"MessageType {{ message: 2, found: {msg2[0]} }}")
    e_c_pub, n2, sealed = msg2[1:33], msg2[33:57], msg2[57:]
    e_j_pub = x25519_pub(e_j)
    try: dh = x25519(e_j, e_c_pub)
    except NonContributory: raise Refused("NonContributory")
    try: plain = xopen(sealed, ticket + e_j_pub + e_c_pub, n2, k_prov(secret, dh, ticket, e_j_pub, e_c_pub))
    except CryptoError: raise Refused("CreatorMessageRefused")
    return decode_provisioning(plain)

# ---- the provisioning ----
def encode_pointer(p):
    return (bstr_fixed(p["id"]) + varint(len(p["blob_id"])) + p["blob_id"] + bstr_fixed(p["key"])
            + bstr_fixed(p["digest"]) + varint(p["size"]) + varint(len(p["file_name"].encode()))
            + p["file_name"].encode() + varint(len(p["content_type"].encode())) + p["content_type"].encode())

def bstr_fixed(b): return varint(len(b)) + b

def encode_provisioning(account, username, ed_seed, x_secret, export_key, pointer):
    out = b"\x01" + account + bytes([len(username)]) + username.encode() + ed_seed + x_secret
    out += b"\x00" if export_key is None else b"\x01" + export_key
    if pointer is None: return out + b"\x00"
    return out + b"\x01" + u16be(len(pointer)) + pointer

class Cut:
    def __init__(self, b): self.b = b
    def take(self, n):
        if len(self.b) < n: raise Refused("ProvisioningTruncated")
        head, self.b = self.b[:n], self.b[n:]
        return head
    def flag(self):
        f = self.take(1)[0]
        if f > 1: raise Refused("ProvisioningMalformed")
        return f == 1

def decode_pointer(b):
    r = Reader(b)
    try:
        p = {"id": bytes(r.fixed(16)), "blob_id": bytes(r.bytes()), "key": bytes(r.fixed(32)),
             "digest": bytes(r.fixed(32)), "size": r.u64(), "file_name": r.string(), "content_type": r.string()}
    except Malformed: raise Refused("ProvisioningMalformed")
    if r.left() or encode_pointer(p) != b: raise Refused("ProvisioningMalformed")
    try: validate({"FilePointer": {**p, "blob_id": list(p["blob_id"])}})
    except ContentError: raise Refused("ProvisioningSnapshot")
    return p

def decode_provisioning(b):
    if len(b) > MAX_PROVISIONING: raise Refused(f"ProvisioningTooLarge {{ len: {len(b)}, max: {MAX_PROVISIONING} }}")
    c = Cut(b)
    fmt = c.take(1)[0]
    if fmt != 1: raise Refused(f"ProvisioningFormat {{ found: {fmt} }}")
    account = c.take(16)
    u = c.take(1)[0]
    if not 3 <= u <= 32: raise Refused("ProvisioningMalformed")
    name = c.take(u)
    try: name = name.decode()
    except UnicodeDecodeError: raise Refused("ProvisioningMalformed")
    if not valid_username(name): raise Refused("ProvisioningUsername")
    ed_seed, x_secret = c.take(32), c.take(32)
    export_key = c.take(64) if c.flag() else None
    pointer = None
    if c.flag():
        pointer = c.take(int.from_bytes(c.take(2), "big"))
        decode_pointer(pointer)
    if c.b: raise Refused(f"ProvisioningTrailing {{ extra: {len(c.b)} }}")
    return {"account": account, "username": name, "ed25519_seed": ed_seed, "x25519_secret": x_secret,
            "export_key": export_key, "snapshot": pointer}

def refusal(f, *args):
    try: f(*args)
    except Refused as e: return str(e)
    return "accepted"

def main():
    d = load("link.json"); c = Checker("link.json")
    c.eq("labels", [d["labels"]["joiner_key"], d["labels"]["provision_key"]],
         [JOINER_KEY.decode(), PROVISION_KEY.decode()])
    ticket = ChaCha20Rng(bytes([0x4c] * 32)).fill_bytes(16)
    secret = ChaCha20Rng(bytes([0x53] * 32)).fill_bytes(32)
    j, k = ChaCha20Rng(bytes([0x4a] * 32)), ChaCha20Rng(bytes([0x43] * 32))
    e_j, n1, e_c, n2 = j.fill_bytes(32), j.fill_bytes(24), k.fill_bytes(32), k.fill_bytes(24)
    ident = ChaCha20Rng(bytes([0x49] * 32))
    ed_seed, x_secret = ident.fill_bytes(32), ident.fill_bytes(32)
    for name, v in [("ticket", ticket), ("secret", secret), ("e_j", e_j), ("n1", n1), ("e_c", e_c),
                    ("n2", n2), ("ed25519_seed", ed_seed), ("x25519_secret", x_secret)]:
        c.eq(name, v, d[name])
    text = code_text(ticket, secret)
    c.eq("code text", text, d["code_text"]); c.eq("code text length", len(text), 77)
    c.eq("typed code parses", [hx(x) for x in parse_code(d["code_typed"])], [hx(ticket), hx(secret)])
    e_j_pub, e_c_pub = x25519_pub(e_j), x25519_pub(e_c)
    c.eq("e_J_pub", e_j_pub, d["e_j_pub"]); c.eq("e_C_pub", e_c_pub, d["e_c_pub"])
    c.eq("K_join", k_join(ticket, secret), d["k_join"])
    msg1 = make_msg1(ticket, secret, n1, e_j_pub)
    c.eq("msg1", msg1, d["msg1"]); c.eq("msg1 length", len(msg1), 73)
    c.eq("creator opens msg1", creator_open(ticket, secret, msg1), e_j_pub)
    dh = x25519(e_c, e_j_pub)
    c.eq("dh", dh, d["dh"]); c.eq("dh both ways", x25519(e_j, e_c_pub), dh)
    c.eq("K_prov", k_prov(secret, dh, ticket, e_j_pub, e_c_pub), d["k_prov"])
    account, username = H(d["account"]), d["username"]
    for case in d["cases"]:
        export_key = H(case["export_key"]) if case["export_key"] else None
        pointer = H(case["snapshot"]) if case["snapshot"] else None
        if pointer is not None:
            # §10.3 field order, rebuilt from what the pointer decodes to.
            c.eq(f"{case['name']}: pointer re-encodes", encode_pointer(decode_pointer(pointer)), pointer)
        plain = encode_provisioning(account, username, ed_seed, x_secret, export_key, pointer)
        c.eq(f"{case['name']}: provisioning", plain, case["provisioning"])
        msg2 = creator_answer(ticket, secret, msg1, e_c, n2, plain)
        c.eq(f"{case['name']}: msg2", msg2, case["msg2"])
        try:
            got = joiner_finish(ticket, secret, e_j, H(case["msg2"]))
            got = [got["account"], got["username"], got["ed25519_seed"], got["x25519_secret"],
                   got["export_key"], got["snapshot"]]
        except Refused as e:
            got = str(e)
        c.eq(f"{case['name']}: joiner reads it back", got,
             [account, username, ed_seed, x_secret, export_key, pointer])
    for r in d["code_refusals"]:
        c.eq(f"code: {r['what']}", refusal(parse_code, r["text"]), r["error"])
    plain = encode_provisioning(account, username, ed_seed, x_secret, None, None)
    for r in d["msg1_refusals"]:
        c.eq(f"msg1: {r['what']}", refusal(creator_answer, ticket, secret, H(r["msg1"]), e_c, n2, plain), r["error"])
    for r in d["msg2_refusals"]:
        c.eq(f"msg2: {r['what']}", refusal(joiner_finish, ticket, secret, e_j, H(r["msg2"])), r["error"])
    for r in d["provisioning_refusals"]:
        p = H(r["provisioning"])
        c.eq(f"provisioning: {r['what']}", refusal(decode_provisioning, p), r["error"])
        # The same plaintext sealed in an authentic msg2 gives the same error.
        sealed = make_msg2(ticket, secret, e_c, n2, e_j_pub, p)
        c.eq(f"provisioning in msg2: {r['what']}", refusal(joiner_finish, ticket, secret, e_j, sealed), r["error"])
    return c.report()

if __name__ == "__main__":
    import sys
    sys.exit(0 if main() else 1)
