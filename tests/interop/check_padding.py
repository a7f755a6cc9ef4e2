"""§6 padding."""
from prims import *

def bucket(n):
    need = n + 1
    if need <= 1600: return -(-need // 160) * 160
    if need <= 65536:
        b = 1
        while b < need: b *= 2
        return b
    raise ValueError("ContentTooLong")

BUCKETS = {160 * k for k in range(1, 11)} | {2 ** j for j in range(11, 17)}

def pad(c):
    b = bucket(len(c))
    return c + b"\x80" + bytes(b - len(c) - 1)

def unpad(p):
    if len(p) not in BUCKETS: raise ValueError("NotABucket")
    i = len(p) - 1
    while i >= 0 and p[i] == 0: i -= 1
    if i < 0 or p[i] != 0x80: raise ValueError("MissingTerminator")
    if bucket(i) != len(p): raise ValueError("NonCanonical")
    return p[:i]

def main():
    d = load("padding.json"); c = Checker("padding.json")
    for v in d["valid"]:
        assert v["content"] == "bytes i % 251 for i in 0..content_len"
        content = bytes(i % 251 for i in range(v["content_len"]))
        p = pad(content)
        c.eq(f"len {v['content_len']}", len(p), v["padded_len"])
        if "padded" in v: c.eq(f"padded {v['content_len']}", p, v["padded"])
        c.eq(f"unpad {v['content_len']}", unpad(p), content)
    for v in d["invalid"]:
        try:
            unpad(H(v["padded"])); got = "accepted"
        except ValueError as e: got = str(e)
        c.eq(f"invalid {v['padded'][:8]}..({len(v['padded'])//2})", got, v["error"])
    try: pad(bytes(d["max_content_len"] + 1)); c.eq("too long", "accepted", "ContentTooLong")
    except ValueError as e: c.eq("too long", str(e), "ContentTooLong")
    return c.report()

if __name__ == "__main__": main()
