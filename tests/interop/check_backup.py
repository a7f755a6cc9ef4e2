"""Section 13 backup.json: the key from the export key with raw HKDF, each case's contents
re-encoded from its fields, padded and sealed with its nonce to the same bytes, and opened
back to the same fields; every mutated backup, authentic bad plaintext and bad contents
encoding refused with the named error; the bucket rule at its edges."""
from prims import *
import backup as bk

def refused(f):
    try:
        f(); return "accepted"
    except bk.Refused as e: return str(e)

def mutate(sealed, m):
    out = bytearray(sealed)
    if "xor" in m: out[m["xor"][0]] ^= m["xor"][1]
    if "truncate" in m: del out[m["truncate"]:]
    if "append_zeros" in m: out += bytes(m["append_zeros"])
    return bytes(out)

def main():
    d = load("backup.json"); c = Checker("backup.json")
    c.eq("labels", (d["labels"]["aead_key"], d["labels"]["key_check"]),
         (bk.AEAD_KEY_LABEL.decode(), bk.KEY_CHECK_LABEL.decode()))
    export_key, account = H(d["export_key"]), H(d["account"])
    aead_key, key_check = bk.derive(export_key, account)
    c.eq("aead_key", aead_key, d["aead_key"]); c.eq("key_check", key_check, d["key_check"])
    for b in d["buckets"]:
        c.eq(f"bucket({b['contents_len']})", bk.bucket(b["contents_len"]), b["sealed_len"])
    for case in d["cases"]:
        w = case["what"]; want = case["contents"]
        encoded = bk.encode_contents(want)
        c.eq(w + " contents encoded", encoded, case["contents_encoded"])
        c.eq(w + " identity public", bk.decode_contents(encoded)["identity"]["public_identity"],
             want["identity"]["public_identity"])
        sealed = bk.seal(aead_key, key_check, account, case["seq"], H(case["nonce"]), want)
        c.eq(w + " sealed length", len(sealed), case["sealed_len"])
        c.eq(w + " sealed", sealed, case["sealed"])
        seq_no, got = bk.open_backup(export_key, account, H(case["sealed"]), case["seq"])
        c.eq(w + " opened seq", seq_no, case["seq"])
        c.eq(w + " opened contents", got, want)
    minimal = H(d["cases"][0]["sealed"])
    for r in d["refusals"]:
        key = H(r["export_key"]) if r["export_key"] else export_key
        got = refused(lambda: bk.open_backup(key, account, mutate(minimal, r["mutation"]), r["last_seen_seq"]))
        c.eq("refusal: " + r["what"], got, r["error"])
    for r in d["inner_refusals"]:
        head = H(r["plaintext_head"]); padded = head + bytes(r["plaintext_len"] - len(head))
        sealed = bk.seal_padded(aead_key, key_check, account, r["seq"], H(r["nonce"]), padded)
        c.eq("inner: " + r["what"], refused(lambda: bk.open_backup(export_key, account, sealed)), r["error"])
    for r in d["contents_refusals"]:
        c.eq("contents: " + r["what"], refused(lambda: bk.decode_contents(H(r["contents"]))), r["error"])
    return c.report()

if __name__ == "__main__": main()
