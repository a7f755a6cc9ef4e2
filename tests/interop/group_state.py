"""§8.7-8.10 group state and signed changes, written from docs/PROTOCOL.md alone:
encode and strictly decode a change, check its signature, apply it to its
parent state with the authorization table of 8.9 (admin seniority included),
encode the snapshot, and rank siblings for fork choice (8.10)."""
import hashlib
from prims import *
from postcard import Reader, Malformed, varint, bstr, string, boolean, seq
from content import valid_username

SIG_LABEL = b"umbra/v1/group/change-signature"
HASH_LABEL = b"umbra/v1/group/change-hash"
MAX_GROUP_MEMBERS, MAX_MEMBERS_PER_CHANGE, MAX_CHANGE_BYTES = 1024, 64, 24576
ACTIONS = ["Create", "Add", "Remove", "Leave", "Rename", "Promote"]

class Refused(Exception):
    """The first failure, named as in the spec (e.g. NotAuthorized); framing errors of
    10.1 as Frame/<name>, as group_state.json writes them."""

def labelled(label, msg): return u64be(len(label)) + label + msg

def check_name(name):
    b = name.encode()
    if not 1 <= len(b) <= 128: raise Refused("InvalidName")
    if any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in name): raise Refused("NameControlCharacter")

def ascending(accounts):
    if any(a >= b for a, b in zip(accounts, accounts[1:])): raise Refused("NotAscending")

def enc_new_member(m): return bstr(m["account"]) + string(m["username"])

def encode_body(group, version, parent, author, action):
    out = bstr(group) + varint(version) + bstr(parent) + bstr(author) + varint(ACTIONS.index(action["action"]))
    a = action["action"]
    if a == "Create":
        out += string(action["name"]) + boolean(action["members_may_rename"]) + seq(action["members"], enc_new_member)
    elif a == "Add": out += seq(action["members"], enc_new_member)
    elif a == "Remove": out += seq(action["accounts"], bstr)
    elif a == "Rename": out += string(action["name"])
    elif a == "Promote": out += bstr(action["account"])
    return out

def decode(change):
    """Decode a change (8.8 order of checks); returns a dict with the signed part and signature."""
    if len(change) > MAX_CHANGE_BYTES: raise Refused("Frame/TooLarge")
    if len(change) < 66: raise Refused("Truncated")
    signed, sig = change[:-64], change[-64:]
    if signed[0] != 1: raise Refused("Frame/UnsupportedVersion")
    r = Reader(signed[1:])
    try:
        c = {"group": r.fixed(32), "version": r.u64(), "parent": r.fixed(32), "author": r.fixed(16)}
        tag = r.u32()
        if tag >= len(ACTIONS): raise Refused("Frame/Malformed")
        a = {"action": ACTIONS[tag]}
        member = lambda: {"account": r.fixed(16), "username": r.string()}
        if tag == 0: a.update(name=r.string(), members_may_rename=r.bool(), members=r.seq(member))
        elif tag == 1: a["members"] = r.seq(member)
        elif tag == 2: a["accounts"] = r.seq(lambda: r.fixed(16))
        elif tag == 4: a["name"] = r.string()
        elif tag == 5: a["account"] = r.fixed(16)
    except Malformed: raise Refused("Frame/Malformed")
    if r.left(): raise Refused("Frame/TrailingBytes")
    c["action"] = a
    if encode_body(c["group"], c["version"], c["parent"], c["author"], a) != signed[1:]: raise Refused("Frame/NonCanonical")
    # structure rules
    if (tag == 0 and (c["version"] != 0 or c["parent"] != bytes(32))) or (tag != 0 and c["version"] == 0):
        raise Refused("BadVersionForAction")
    if tag in (0, 1):
        ms = a["members"]
        if not ms: raise Refused("EmptyList")
        if len(ms) > MAX_MEMBERS_PER_CHANGE: raise Refused("TooManyListed")
        ascending([m["account"] for m in ms])
        if any(not valid_username(m["username"]) for m in ms): raise Refused("Malformed")
    if tag == 0:
        check_name(a["name"])
        if c["author"] not in [m["account"] for m in a["members"]]: raise Refused("CreatorNotListed")
    if tag == 2:
        if not a["accounts"]: raise Refused("EmptyList")
        if len(a["accounts"]) > MAX_GROUP_MEMBERS: raise Refused("TooManyListed")
        ascending(a["accounts"])
        if c["author"] in a["accounts"]: raise Refused("CannotRemoveSelf")
    if tag == 4: check_name(a["name"])
    c["signed"], c["signature"] = signed, sig
    c["hash"] = hashlib.sha256(HASH_LABEL + change).digest()
    return c

def verify(c, author_identity):
    if not ed_verify(author_identity[:32], labelled(SIG_LABEL, c["signed"]), c["signature"]):
        raise Refused("BadSignature")

def apply(state, c):
    """8.9: apply change c to its parent state (None for a Create); returns the new state dict."""
    a = c["action"]; kind = a["action"]
    if kind == "Create":
        ms = [{"account": m["account"], "username": m["username"],
               "admin_since": 0 if m["account"] == c["author"] else None} for m in a["members"]]
        return {"group": c["group"], "version": 0, "head": c["hash"], "name": a["name"],
                "members_may_rename": a["members_may_rename"], "members": ms, "rotation_point": 0}
    if c["group"] != state["group"]: raise Refused("WrongGroup")
    if c["parent"] != state["head"]: raise Refused("WrongParent")
    if c["version"] != state["version"] + 1: raise Refused("WrongVersion")
    by = {m["account"]: dict(m) for m in state["members"]}
    if c["author"] not in by: raise Refused("AuthorNotMember")
    since = by[c["author"]]["admin_since"]; admin = since is not None
    new = dict(state, version=c["version"], head=c["hash"])
    if kind == "Add":
        if not admin: raise Refused("NotAuthorized")
        if any(m["account"] in by for m in a["members"]): raise Refused("AlreadyMember")
        if len(by) + len(a["members"]) > MAX_GROUP_MEMBERS: raise Refused("TooManyMembers")
        for m in a["members"]: by[m["account"]] = {"account": m["account"], "username": m["username"], "admin_since": None}
    elif kind == "Remove":
        if not admin: raise Refused("NotAuthorized")
        for x in a["accounts"]:
            if x not in by: raise Refused("NotMember")
            t = by[x]["admin_since"]
            if t is not None and t <= since: raise Refused("NotAuthorized")  # a senior admin
        for x in a["accounts"]: del by[x]
        new["rotation_point"] = c["version"]
    elif kind == "Leave":
        del by[c["author"]]; new["rotation_point"] = c["version"]
        if by and all(m["admin_since"] is None for m in by.values()): by[min(by)]["admin_since"] = c["version"]
    elif kind == "Rename":
        if not (admin or state["members_may_rename"]): raise Refused("NotAuthorized")
        new["name"] = a["name"]
    elif kind == "Promote":
        if not admin: raise Refused("NotAuthorized")
        if a["account"] not in by: raise Refused("NotMember")
        if by[a["account"]]["admin_since"] is not None: raise Refused("AlreadyAdmin")
        by[a["account"]]["admin_since"] = c["version"]
    new["members"] = [by[k] for k in sorted(by)]
    return new

def rank(parent, c):
    """8.10: a sibling's rank on its parent state, lowest wins: admins by admin_since
    ascending, then members by account ascending, then (one author's siblings) the hash."""
    since = {m["account"]: m["admin_since"] for m in parent["members"]}[c["author"]]
    return (0, since, b"", c["hash"]) if since is not None else (1, 0, c["author"], c["hash"])

def enc_option_u64(v): return b"\x00" if v is None else b"\x01" + varint(v)

def encode_state(s):
    member = lambda m: bstr(m["account"]) + string(m["username"]) + enc_option_u64(m["admin_since"])
    return (b"\x01" + bstr(s["group"]) + varint(s["version"]) + bstr(s["head"]) + string(s["name"])
            + boolean(s["members_may_rename"]) + seq(s["members"], member) + varint(s["rotation_point"]))
