"""§10 content, §9.5 username rules, §12.1 client payload."""
import re
from postcard import *
from prims import u32be

class ContentError(Exception): pass

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.]{2,31}$")
def valid_username(s): return bool(USERNAME_RE.match(s))

def r_username(r):
    s = r.string()
    if not valid_username(s): raise Malformed("bad username")
    return s

# ---- encoders from the serde-JSON form used in content.json ----
def e_id(a): return bstr(bytes(a))
def encode_body(c):
    if c == "DeleteConversation": return varint(9)
    if c == "SessionReset": return varint(14)
    (k, v), = c.items()
    if k == "Text": return varint(0) + e_id(v["id"]) + string(v["body"]) + varint(v["sent_at_ms"])
    if k in ("DeliveryReceipt", "ReadReceipt"): return varint(1 if k[0] == "D" else 2) + seq(v["ids"], e_id)
    if k == "Typing": return varint(3) + boolean(v["started"])
    if k == "Presence": return varint(4) + boolean(v["online"])
    if k == "FilePointer":
        return (varint(5) + e_id(v["id"]) + bstr(bytes(v["blob_id"])) + e_id(v["key"]) + e_id(v["digest"])
                + varint(v["size"]) + string(v["file_name"]) + string(v["content_type"]))
    if k == "GroupControl": return varint(6) + bstr(bytes(v["change"]))
    if k == "GroupWelcome": return varint(7) + bstr(bytes(v["state"])) + bstr(bytes(v["change"]))
    if k == "SenderKeyDistribution": return varint(8) + e_id(v["group"]) + bstr(bytes(v["payload"]))
    if k == "ProfileChange": return varint(10) + string(v["new_username"])
    if k == "GroupTyping": return varint(11) + e_id(v["group"]) + boolean(v["started"])
    if k == "GroupText":
        return (varint(12) + e_id(v["id"]) + string(v["body"]) + varint(v["sent_at_ms"])
                + e_id(v["head"]) + varint(v["version"]))
    if k == "GroupSync": return varint(13) + e_id(v["group"]) + e_id(v["have"]) + varint(v["version"])
    if k == "GroupSyncDone": return varint(15) + e_id(v["group"]) + e_id(v["head"]) + varint(v["version"])
    if k == "GroupKeyRequest": return varint(16) + e_id(v["group"]) + varint(v["epoch"]) + varint(v["chain_id"]) + varint(v["iteration"])
    if k == "TextReply": return varint(17) + e_id(v["id"]) + e_id(v["target"]) + string(v["body"]) + varint(v["sent_at_ms"])
    if k == "GroupTextReply":
        return (varint(18) + e_id(v["id"]) + e_id(v["target"]) + string(v["body"]) + varint(v["sent_at_ms"])
                + e_id(v["head"]) + varint(v["version"]))
    if k == "Reaction":
        return (varint(19) + e_id(v["id"]) + e_id(v["target"]) + string(v["emoji"]) + boolean(v["remove"])
                + varint(v["sent_at_ms"]))
    if k == "Edit": return varint(20) + e_id(v["id"]) + e_id(v["target"]) + string(v["body"]) + varint(v["sent_at_ms"])
    if k == "DeleteForEveryone": return varint(21) + e_id(v["id"]) + e_id(v["target"]) + varint(v["sent_at_ms"])
    if k == "SentTranscript": return varint(22) + e_id(v["destination"]) + bstr(bytes(v["content"]))
    if k == "ExpirationTimer": return varint(23) + e_id(v["id"]) + varint(v["seconds"]) + varint(v["sent_at_ms"])
    raise ValueError(k)

def encode(c):
    validate(c)
    out = b"\x01" + encode_body(c)
    if len(out) > 65535: raise ContentError("Frame/TooLarge")
    return out

# ---- decoder to the same JSON form ----
def d_id(r, n=16): return list(r.fixed(n))

def decode_body(r):
    t = r.u32()
    if t == 0: return {"Text": {"id": d_id(r), "body": r.string(), "sent_at_ms": r.u64()}}
    if t in (1, 2): return {("DeliveryReceipt" if t == 1 else "ReadReceipt"): {"ids": r.seq(lambda: d_id(r))}}
    if t == 3: return {"Typing": {"started": r.bool()}}
    if t == 4: return {"Presence": {"online": r.bool()}}
    if t == 5:
        return {"FilePointer": {"id": d_id(r), "blob_id": list(r.bytes()), "key": d_id(r, 32), "digest": d_id(r, 32),
                                "size": r.u64(), "file_name": r.string(), "content_type": r.string()}}
    if t == 6: return {"GroupControl": {"change": list(r.bytes())}}
    if t == 7: return {"GroupWelcome": {"state": list(r.bytes()), "change": list(r.bytes())}}
    if t == 8: return {"SenderKeyDistribution": {"group": d_id(r, 32), "payload": list(r.bytes())}}
    if t == 9: return "DeleteConversation"
    if t == 10: return {"ProfileChange": {"new_username": r_username(r)}}
    if t == 11: return {"GroupTyping": {"group": d_id(r, 32), "started": r.bool()}}
    if t == 12:
        return {"GroupText": {"id": d_id(r), "body": r.string(), "sent_at_ms": r.u64(),
                              "head": d_id(r, 32), "version": r.u64()}}
    if t == 13: return {"GroupSync": {"group": d_id(r, 32), "have": d_id(r, 32), "version": r.u64()}}
    if t == 14: return "SessionReset"
    if t == 15: return {"GroupSyncDone": {"group": d_id(r, 32), "head": d_id(r, 32), "version": r.u64()}}
    if t == 16: return {"GroupKeyRequest": {"group": d_id(r, 32), "epoch": r.u64(), "chain_id": r.u32(), "iteration": r.u32()}}
    if t == 17: return {"TextReply": {"id": d_id(r), "target": d_id(r), "body": r.string(), "sent_at_ms": r.u64()}}
    if t == 18:
        return {"GroupTextReply": {"id": d_id(r), "target": d_id(r), "body": r.string(), "sent_at_ms": r.u64(),
                                   "head": d_id(r, 32), "version": r.u64()}}
    if t == 19:
        return {"Reaction": {"id": d_id(r), "target": d_id(r), "emoji": r.string(), "remove": r.bool(),
                             "sent_at_ms": r.u64()}}
    if t == 20: return {"Edit": {"id": d_id(r), "target": d_id(r), "body": r.string(), "sent_at_ms": r.u64()}}
    if t == 21: return {"DeleteForEveryone": {"id": d_id(r), "target": d_id(r), "sent_at_ms": r.u64()}}
    if t == 22: return {"SentTranscript": {"destination": d_id(r), "content": list(r.bytes())}}
    if t == 23: return {"ExpirationTimer": {"id": d_id(r), "seconds": r.u32(), "sent_at_ms": r.u64()}}
    raise Malformed("unknown content tag")

def decode(b):
    c = decode_unchecked(b)
    validate(c)
    return c

def decode_unchecked(b):
    """§10.1 steps 1-4: framing only, none of the §10.4 limits."""
    if len(b) > 65535: raise ContentError("Frame/TooLarge")
    if not b: raise ContentError("Frame/Empty")
    if b[0] != 1: raise ContentError("Frame/UnsupportedVersion")
    r = Reader(b[1:])
    try: c = decode_body(r)
    except Malformed: raise ContentError("Frame/Malformed")
    if r.left(): raise ContentError("Frame/TrailingBytes")
    if encode_body(c) != b[1:]: raise ContentError("Frame/NonCanonical")
    return c

# §10.7: what a sent transcript may carry (never a transcript).
TRANSCRIPT_KINDS = ("Text", "TextReply", "FilePointer", "Reaction", "Edit", "DeleteForEveryone",
                    "DeleteConversation", "ExpirationTimer")

def kind(c): return c if isinstance(c, str) else next(iter(c))

def _cc(s, field):
    for i, ch in enumerate(s.encode()):
        pass
    pos = 0
    for ch in s:
        o = ord(ch)
        if (o < 0x20 or 0x7F <= o <= 0x9F) and ch not in "\t\n\r":
            raise ContentError("ControlCharacter")
        pos += len(ch.encode())

def _cc_strict(s):
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F: raise ContentError("ControlCharacter")

def validate(c):
    if c in ("DeleteConversation", "SessionReset"): return
    (k, v), = c.items()
    if k == "SentTranscript":
        # §10.7: the original's kind is checked before its limits.
        inner = decode_unchecked(bytes(v["content"]))
        if kind(inner) not in TRANSCRIPT_KINDS: raise ContentError("NotTranscribable")
        validate(inner)
        return
    # §10.4: a reply, reaction, edit or delete never names its own id.
    if "target" in v and v["target"] == v["id"]: raise ContentError("TargetsItself")
    if k == "Reaction":
        e = v["emoji"]
        if len(e.encode()) > 64: raise ContentError("ReactionTooLong")
        if not e or any(ch.isspace() for ch in e): raise ContentError("InvalidReaction")
        _cc_strict(e)
    if k in ("Text", "GroupText", "TextReply", "GroupTextReply", "Edit"):
        if len(v["body"].encode()) > 32768: raise ContentError("TextTooLong")
        _cc(v["body"], "text")
    elif k in ("DeliveryReceipt", "ReadReceipt"):
        if not v["ids"]: raise ContentError("EmptyReceipt")
        if len(v["ids"]) > 256: raise ContentError("TooManyReceiptIds")
    elif k == "FilePointer":
        if not 1 <= len(v["blob_id"]) <= 64: raise ContentError("InvalidBlobId")
        fn = v["file_name"]
        if len(fn.encode()) > 255: raise ContentError("FileNameTooLong")
        if fn in ("", ".", "..") or "/" in fn or "\\" in fn: raise ContentError("InvalidFileName")
        _cc_strict(fn)
        ct = v["content_type"]
        if len(ct.encode()) > 127: raise ContentError("ContentTypeTooLong")
        if not ct or any(not 0x21 <= ord(ch) <= 0x7E for ch in ct): raise ContentError("InvalidContentType")
    elif k == "ExpirationTimer":
        # §10.8: 0 is off; otherwise 1 s to four weeks.
        if v["seconds"] != 0 and not 1 <= v["seconds"] <= 28 * 24 * 3600: raise ContentError("TimerOutOfRange")
    elif k == "GroupSync":
        # §10.4: no head (all zero) means no state, so version 0.
        if not any(v["have"]) and v["version"] != 0: raise ContentError("InvalidGroupSync")
    elif k in ("GroupControl", "GroupWelcome"):
        # §8.8: a change is at least a version byte, one body byte and a
        # 64-byte signature; the full structure check is group_state.json's.
        if len(v["change"]) < 66: raise ContentError("Group/Truncated")

# ---- §12.1 payload ----
class PayloadError(Exception): pass

def payload_encode(account, device, username, content_bytes):
    u = username.encode()
    return b"\x01" + account + u32be(device) + bytes([len(u)]) + u + content_bytes

def payload_decode(b):
    if not b: raise PayloadError("Truncated")
    if b[0] != 1: raise PayloadError(f"UnsupportedVersion({b[0]})")
    if len(b) < 22: raise PayloadError("Truncated")
    n = b[21]
    if len(b) < 22 + n: raise PayloadError("Truncated")
    try: u = b[22:22+n].decode("utf-8")
    except UnicodeDecodeError: raise PayloadError("BadUsername")
    if not valid_username(u): raise PayloadError("BadUsername")
    try: c = decode(b[22+n:])
    except ContentError as e: raise PayloadError(f"Content({e})")
    return b[1:17], int.from_bytes(b[17:21], "big"), u, c
