"""§9 wire.json."""
import re
from prims import *
import wire

SPEC = os.path.join(os.path.dirname(VEC), "PROTOCOL.md")

def spec_error_table():
    txt = open(SPEC).read()
    sec = txt[txt.index("### 9.6 Error codes"):txt.index("### 9.7")]
    rows = {}
    for line in sec.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|(.*)", line)
        if m:
            cols = [x.strip() for x in m.group(3).split("|")]
            rows[int(m.group(1))] = (m.group(2), cols[1], cols[2])
    return rows

def main():
    d = load("wire.json"); c = Checker("wire.json")
    table = spec_error_table()
    wire.ERROR_CODES.update({n: v[0] for n, v in table.items()})
    c.eq("error code count", len(d["error_codes"]), len(table))
    for e in d["error_codes"]:
        name, retry, fatal = table.get(e["value"], ("?", "?", "?"))
        c.eq(f"code {e['value']} name", name, e["name"])
        c.eq(f"code {e['value']} retryable", retry.startswith("yes"), e["retryable"])
        c.eq(f"code {e['value']} fatal", fatal.startswith("yes"), e["fatal"])
    for e in d["client_frames"]:
        c.eq("encode " + e["name"], wire.encode_frame(wire.ClientFrame, e["value"]), e["hex"])
        c.eq("decode " + e["name"], wire.decode_frame(wire.ClientFrame, H(e["hex"])), e["value"])
    for e in d["relay_frames"]:
        c.eq("encode " + e["name"], wire.encode_frame(wire.RelayFrame, e["value"]), e["hex"])
        c.eq("decode " + e["name"], wire.decode_frame(wire.RelayFrame, H(e["hex"])), e["value"])
    for e in d["invalid_client_frames"]:
        try: wire.decode_frame(wire.ClientFrame, H(e["hex"])); got = ("accepted", None)
        except wire.WireError as x: got = (x.name, x.code)
        c.eq("invalid: " + e["what"], list(got), [e["error"], e["error_code"]])
    c.eq("notice", d["version_rejection_notice"], "000101")
    c.eq("wire_version", d["wire_version"], 1); c.eq("min", d["min_supported_version"], 1)
    lim = {"MAX_ACKS_PER_FRAME": 1024, "MAX_ENVELOPE_BYTES": 98304, "MAX_EPHEMERAL_BYTES": 4096, "MAX_FRAME_BYTES": 262144,
           "MAX_IDENTITY_BYTES": 1024, "MAX_OPAQUE_MESSAGE_BYTES": 4096, "MAX_REASON_BYTES": 1024,
           "MAX_RECIPIENTS_PER_SEND": 1024, "ONE_TIME_PREKEYS_PER_UPLOAD_MAX": 100, "USERNAME_MAX_LEN": 32, "USERNAME_MIN_LEN": 3}
    c.eq("limits (spec 9.9)", d["limits"], lim)
    # examples written in the spec text
    c.eq("spec Ping example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": "Ping"}), "010710")
    c.eq("spec Error example", wire.encode_frame(wire.RelayFrame, {"Response": {"request_id": 1, "response": {"Error": {"code": 8, "message": "slow down", "retry_after_secs": 30}}}}),
         "0100010b0809" + b"slow down".hex() + "011e")
    return c.report()

if __name__ == "__main__": main()
