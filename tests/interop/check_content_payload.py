"""§10 content.json and §12.1 payload.json."""
from prims import *
import content
from check_padding import pad

def main():
    d = load("content.json"); c = Checker("content.json")
    for e in d["examples"]:
        c.eq("encode " + e["name"], content.encode(e["value"]), e["hex"])
        c.eq("decode " + e["name"], content.decode(H(e["hex"])), e["value"])
    for e in d["invalid"]:
        b = H(e["hex"])
        if "repeat" in e:
            # a long input: hex, one byte repeated, hex_after (content.json's description)
            b += H(e["repeat"]["byte"]) * e["repeat"]["count"] + H(e["hex_after"])
        try: content.decode(b); got = "accepted"
        except content.ContentError as x: got = str(x)
        c.eq("invalid: " + e["what"], got, e["error"])
    ok1 = c.report()

    d = load("payload.json"); p = Checker("payload.json")
    for e in d["payloads"]:
        b = H(e["payload"])
        acct, dev, user, cont = content.payload_decode(b)
        p.eq(e["name"] + " reencode", content.payload_encode(acct, dev, user, content.encode(cont)), b)
        p.eq(e["name"] + " padded_length", len(pad(b)), e["padded_length"])
    # the vector's error names abbreviate section 10's (Frame/X -> X; TrailingBytes carries its count)
    def norm(s): return s.replace("Content(Frame/", "Content(")
    for e in d["decode_errors"]:
        try: content.payload_decode(H(e["input"])); got = "accepted"
        except content.PayloadError as x: got = norm(str(x))
        want = e["error"]
        want_n = want.replace("TrailingBytes(1)", "TrailingBytes").replace("UnsupportedVersion(2))", "UnsupportedVersion)")
        p.eq("decode_error " + e["name"], got, want_n)
    return p.report() and ok1

if __name__ == "__main__": main()
