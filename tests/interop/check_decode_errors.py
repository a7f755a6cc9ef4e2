"""decode_errors.json: each malformed input gets the named error."""
from prims import *
import pairwise, sealed, group

def inp(x):
    if isinstance(x, dict): return H(x["fill"]) * x["len"]
    return H(x)

def run(c, what, f, want):
    try: f(); got = "accepted"
    except (pairwise.PairwiseError, sealed.SealedError, group.GroupError) as e: got = str(e)
    c.eq(what, got, want)

def main():
    d = load("decode_errors.json"); c = Checker("decode_errors.json")
    for e in d["ratchet_message"]:
        run(c, "ratchet " + e["name"], lambda: pairwise.parse_ratchet(inp(e["input"])), e["error"])
    for e in d["pairwise_message"]:
        run(c, "pairwise " + e["name"], lambda: pairwise.parse_pairwise(inp(e["input"])), e["error"])
    se = d["sealed_envelope"]
    ik_b, xs = H(se["recipient_public_identity"]), H(se["recipient_x25519_secret"])
    s, a, inner = sealed.open_(ik_b, xs, H(se["valid_envelope"]))
    c.eq("valid envelope opens", len(inner) >= 0, True)
    for e in se["cases"]:
        run(c, "sealed " + e["name"], lambda: sealed.open_(ik_b, xs, inp(e["input"])), e["error"])
    for e in d["group"]["group_message_header"]:
        run(c, "group header " + e["name"], lambda: group.parse_header(inp(e["input"])), e["error"])
    ctx = d["group"]["sender_key_distribution_verified_with"]
    ik, gid = H(ctx["sender_public_identity"]), H(ctx["expected_group"])
    for e in d["group"]["sender_key_distribution"]:
        run(c, "skd " + e["name"], lambda: group.verify_distribution(inp(e["input"]), ik, gid), e["error"])
    return c.report()

if __name__ == "__main__": main()
