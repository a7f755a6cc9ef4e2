"""Section 13 account backups, from docs/PROTOCOL.md alone: key derivation from the
OPAQUE export key, the sectioned contents encoding, bucket padding, XChaCha20-Poly1305
sealing, and every refusal with its error name. Contents are plain dicts in the form
backup.json's "contents" uses."""
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as xseal
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as xopen
from nacl.exceptions import CryptoError
from prims import *
from postcard import Reader, Malformed, varint, bstr, string, seq
from content import valid_username
from identity import public_identity

AEAD_KEY_LABEL = b"umbra/v1/backup/aead-key"
KEY_CHECK_LABEL = b"umbra/v1/backup/key-check"
VERSION, CONTENTS_VERSION = 1, 1
HEADER, OVERHEAD = 49, 65
MIN, MAX = 1 << 14, 1 << 24
MAX_CONTACTS, MAX_GROUPS, MAX_SETTINGS, MAX_EXTENSIONS = 10_000, 1_000, 64, 16
MAX_NAME, MAX_TEXT_SETTING, MAX_TEXT = 64, 1024, 32 * 1024
NAME_CHARS = set(b"abcdefghijklmnopqrstuvwxyz0123456789._-")

class Refused(Exception):
    """str(e) is the error name of section 13.7."""

def derive(export_key, account):
    prk = hkdf_extract(b"", export_key)
    info = lambda label: label + bytes([VERSION]) + account
    return hkdf_expand(prk, info(AEAD_KEY_LABEL), 32), hkdf_expand(prk, info(KEY_CHECK_LABEL), 16)

def bucket(contents_len):
    need, b = contents_len + 1 + OVERHEAD, MIN
    while b < need: b *= 2
    return b if b <= MAX else None

def ad(account, seq_no): return bytes([VERSION]) + account + u64be(seq_no)

# ---- contents (13.4) ----
def e_trust(t):
    if t == "Unverified": return varint(0)
    if t == "Verified": return varint(1)
    return varint(2) + bstr(H(t["Changed"]))

def e_contact(k):
    return bstr(H(k["account"])) + string(k["username"]) + bstr(H(k["identity"])) + e_trust(k["trust"])

def e_setting(pair):
    name, value = pair
    (kind, v), = value.items()
    body = {"Bool": lambda: varint(0) + (b"\x01" if v else b"\x00"),
            "U64": lambda: varint(1) + varint(v), "Text": lambda: varint(2) + string(v)}[kind]()
    return string(name) + body

def e_entry(e):
    (kind, v), = e["conversation"].items()
    conv = varint(0 if kind == "Direct" else 1) + bstr(H(v))
    return conv + bstr(H(e["from"])) + bstr(H(e["id"])) + varint(e["sent_at_ms"]) + string(e["body"])

def encode_contents(c):
    ident = c["identity"]
    sections = [(1, bstr(H(c["account"]))),
                (2, bstr(H(ident["ed25519_seed"])) + bstr(H(ident["x25519_secret"]))),
                (3, varint(c["written_at"]))]
    if c["contacts"]: sections.append((4, seq(c["contacts"], e_contact)))
    if c["groups"]: sections.append((5, seq(c["groups"], lambda g: bstr(H(g["id"])) + bstr(H(g["log"])))))
    if c["settings"]: sections.append((6, seq(c["settings"], e_setting)))
    if c["history"] is not None: sections.append((7, seq(c["history"], e_entry)))
    sections += [(e["tag"], H(e["body"])) for e in c["extensions"]]
    return bytes([CONTENTS_VERSION]) + seq(sections, lambda s: varint(s[0]) + bstr(s[1]))

def exact(body, f):
    r = Reader(body)
    try:
        v = f(r)
        if r.left(): raise Malformed("trailing bytes")
    except Malformed: raise Refused("Malformed")
    return v

def r_trust(r):
    t = r.u32()
    if t == 0: return "Unverified"
    if t == 1: return "Verified"
    if t == 2: return {"Changed": r.fixed(128).hex()}
    raise Malformed("trust variant")

def r_username(r):
    s = r.string()
    if not valid_username(s): raise Malformed("username")
    return s

def r_contact(r):
    return {"account": r.fixed(16).hex(), "username": r_username(r), "identity": r.fixed(128).hex(),
            "trust": r_trust(r)}

def r_value(r):
    t = r.u32()
    if t == 0: return {"Bool": r.bool()}
    if t == 1: return {"U64": r.u64()}
    if t == 2: return {"Text": r.string()}
    raise Malformed("setting variant")

def r_entry(r):
    t = r.u32()
    if t not in (0, 1): raise Malformed("conversation variant")
    conv = {"Direct": r.fixed(16).hex()} if t == 0 else {"Group": r.fixed(32).hex()}
    return {"conversation": conv, "from": r.fixed(16).hex(), "id": r.fixed(16).hex(),
            "sent_at_ms": r.u64(), "body": r.string()}

def ascending(keys): return all(a < b for a, b in zip(keys, keys[1:]))

def check_settings(pairs):
    if len(pairs) > MAX_SETTINGS or not ascending([n.encode() for n, _ in pairs]): raise Refused("Invalid")
    for n, v in pairs:
        b = n.encode()
        if not b or len(b) > MAX_NAME or not set(b) <= NAME_CHARS: raise Refused("Invalid")
        if "Text" in v and len(v["Text"].encode()) > MAX_TEXT_SETTING: raise Refused("Invalid")

def non_empty(items):
    if not items: raise Refused("Malformed")
    return items

def decode_contents(b):
    if not b: raise Refused("Malformed")
    if b[0] != CONTENTS_VERSION: raise Refused("UnknownContentsVersion")
    sections = exact(b[1:], lambda r: r.seq(lambda: (r.u32(), r.bytes())))
    if len(sections) > 7 + MAX_EXTENSIONS: raise Refused("Invalid")
    c = {"contacts": [], "groups": [], "settings": [], "history": None, "extensions": []}
    prev = 0
    for tag, body in sections:
        if tag <= prev: raise Refused("Malformed")
        prev = tag
        if tag == 1: c["account"] = exact(body, lambda r: r.fixed(16).hex())
        elif tag == 2:
            seed, x = exact(body, lambda r: (r.fixed(32), r.fixed(32)))
            c["identity"] = {"ed25519_seed": seed.hex(), "x25519_secret": x.hex(),
                             "public_identity": public_identity(seed, x).hex()}
        elif tag == 3: c["written_at"] = exact(body, lambda r: r.u64())
        elif tag == 4: c["contacts"] = non_empty(exact(body, lambda r: r.seq(lambda: r_contact(r))))
        elif tag == 5:
            c["groups"] = non_empty(exact(body, lambda r: r.seq(lambda: {"id": r.fixed(32).hex(), "log": r.bytes().hex()})))
        elif tag == 6:
            c["settings"] = non_empty(exact(body, lambda r: r.seq(lambda: [r.string(), r_value(r)])))
            check_settings(c["settings"])
        elif tag == 7: c["history"] = exact(body, lambda r: r.seq(lambda: r_entry(r)))
        else: c["extensions"].append({"tag": tag, "body": body.hex()})
    for required in ("account", "identity", "written_at"):
        if required not in c: raise Refused("Invalid")
    if len(c["contacts"]) > MAX_CONTACTS or not ascending([k["account"] for k in c["contacts"]]):
        raise Refused("Invalid")
    groups = c["groups"]
    if len(groups) > MAX_GROUPS or not ascending([g["id"] for g in groups]) or any(not g["log"] for g in groups):
        raise Refused("Invalid")
    if any(len(e["body"].encode()) > MAX_TEXT for e in c["history"] or []): raise Refused("Invalid")
    if len(c["extensions"]) > MAX_EXTENSIONS: raise Refused("Invalid")
    return {k: c[k] for k in ("account", "identity", "written_at", "contacts", "groups", "settings",
                              "history", "extensions")}

# ---- padding and sealing (13.5, 13.6) ----
def pad(contents):
    b = bucket(len(contents))
    if b is None: raise Refused("TooLarge")
    return contents + b"\x80" + bytes(b - OVERHEAD - len(contents) - 1)

def unpad(p):
    i = len(p) - 1
    while i >= 0 and p[i] == 0: i -= 1
    if i < 0 or p[i] != 0x80: raise Refused("BadPadding")
    if bucket(i) is None or bucket(i) - OVERHEAD != len(p): raise Refused("BadPadding")
    return p[:i]

def seal_padded(aead_key, key_check, account, seq_no, nonce, padded):
    return bytes([VERSION]) + u64be(seq_no) + key_check + nonce + xseal(padded, ad(account, seq_no), nonce, aead_key)

def seal(aead_key, key_check, account, seq_no, nonce, contents_dict):
    return seal_padded(aead_key, key_check, account, seq_no, nonce, pad(encode_contents(contents_dict)))

def open_backup(export_key, account, sealed, last_seen=None):
    """(seq, contents dict), or Refused with the error name, in 13.7's order."""
    if not sealed: raise Refused("Truncated")
    if len(sealed) > MAX: raise Refused("TooLarge")
    if sealed[0] != VERSION: raise Refused("UnknownVersion")
    n = len(sealed)
    if n < MIN or n & (n - 1): raise Refused("NotABucket")
    aead_key, key_check = derive(export_key, account)
    seq_no = int.from_bytes(sealed[1:9], "big")
    if not hmac.compare_digest(sealed[9:25], key_check): raise Refused("WrongKey")
    try: padded = xopen(sealed[HEADER:], ad(account, seq_no), sealed[25:HEADER], aead_key)
    except CryptoError: raise Refused("Tampered")
    if last_seen is not None and seq_no < last_seen: raise Refused("RolledBack")
    contents = decode_contents(unpad(padded))
    if contents["account"] != account.hex(): raise Refused("AccountMismatch")
    return seq_no, contents
