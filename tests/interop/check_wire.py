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
           "MAX_RECIPIENTS_PER_SEND": 1024, "ONE_TIME_PREKEYS_PER_UPLOAD_MAX": 100, "USERNAME_MAX_LEN": 32, "USERNAME_MIN_LEN": 3,
           # §9.9 rows of the device frames (§15)
           "MAX_DEVICES_PER_ACCOUNT": 8, "MAX_DEVICE_LIST_BYTES": 122, "MAX_LINK_MESSAGE_BYTES": 32768, "MAX_LINK_MESSAGES_PER_SIDE": 4}
    c.eq("limits (spec 9.9)", d["limits"], lim)
    # examples written in the spec text
    c.eq("spec Ping example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": "Ping"}), "010710")
    c.eq("spec Error example", wire.encode_frame(wire.RelayFrame, {"Response": {"request_id": 1, "response": {"Error": {"code": 8, "message": "slow down", "retry_after_secs": 30}}}}),
         "0100010b0809" + b"slow down".hex() + "011e")
    # the KEM frames' examples of 9.7/9.8 (issue 14)
    c.eq("spec KemPreKeyCount example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": "KemPreKeyCount"}), "01071e")
    acct = bytes(range(16))
    c.eq("spec FetchHybridBundle None example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": {"FetchHybridBundle": {"account": list(acct), "device": None}}}),
         "01071f10" + acct.hex() + "00")
    c.eq("spec FetchHybridBundle Some(2) example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": {"FetchHybridBundle": {"account": list(acct), "device": 2}}}),
         "01071f10" + acct.hex() + "0102")
    c.eq("spec KemPreKeyCount response example", wire.encode_frame(wire.RelayFrame, {"Response": {"request_id": 7, "response": {"KemPreKeyCount": {"remaining": 3, "low_water": 20}}}}),
         "010007140314")
    # §15.6's example: LoginEnrol with request id 7 (tag 32, no fields)
    c.eq("spec LoginEnrol example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": "LoginEnrol"}), "010720")
    # §9.7's example: LoginDevice { device: 2 } with request id 7 (tag 36, §15.6)
    c.eq("spec LoginDevice example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": {"LoginDevice": {"device": 2}}}), "01072402")
    kp = {"id": 5, "created_at": 300, "key": [7] * 1184, "signature": [9] * 64}
    c.eq("spec KemPreKeyWire layout (9.5)", wire.enc(wire.KemPreKeyWire, kp), "05ac02a009" + "07" * 1184 + "40" + "09" * 64)
    check_device_frames(c, d)
    return c.report()

# §9.9 limits of the device frames, as a stranger reads them (request
# limits for the relay, response limits for the client).
DEVICE_LIMITS = {"PublishDeviceList": [("list", 122)], "LinkPost": [("payload", 32768)]}

def device_limits_ok(kind, v):
    for field, most in DEVICE_LIMITS.get(kind, []):
        if len(v[field]) > most: return False
    if kind == "DeviceList" and v["list"] is not None and len(v["list"]) > 122: return False
    if kind == "Devices" and len(v["devices"]) > 8: return False
    if kind == "LinkMessages" and (len(v["messages"]) > 4 or any(len(m) > 32768 for m in v["messages"])): return False
    return True

def check_device_frames(c, d):
    """§15.4-15.6 frames: the spec's examples, real §15.2 lists inside, limits."""
    c.eq("spec ListDevices example", wire.encode_frame(wire.ClientFrame, {"request_id": 7, "request": "ListDevices"}), "010715")
    c.eq("spec DeviceList example", wire.encode_frame(wire.RelayFrame, {"Response": {"request_id": 7, "response": {"DeviceList": {"list": None}}}}), "0100070e00")
    lists = [bytes.fromhex(l["hex"]) for l in load("device_list.json")["lists"]]
    reqs = {next(iter(e["value"]["request"])) if isinstance(e["value"]["request"], dict) else e["value"]["request"]: e["value"]["request"]
            for e in d["client_frames"]}
    c.eq("PublishDeviceList carries device_list.json v1", bytes(reqs["PublishDeviceList"]["PublishDeviceList"]["list"]), lists[0])
    resps = [e["value"]["Response"]["response"] for e in d["relay_frames"] if "Response" in e["value"]]
    shown = [r["DeviceList"]["list"] for r in resps if isinstance(r, dict) and "DeviceList" in r and r["DeviceList"]["list"]]
    c.eq("DeviceList carries device_list.json v2", [bytes(x) for x in shown], [lists[1]])
    for v in list(reqs.values()) + resps:
        if isinstance(v, dict):
            (kind, inner), = v.items()
            c.eq("limits of example " + kind, device_limits_ok(kind, inner), True)
    for kind, v, ok in [("PublishDeviceList", {"list": [0] * 122}, True), ("PublishDeviceList", {"list": [0] * 123}, False),
                        ("LinkPost", {"payload": [0] * 32768}, True), ("LinkPost", {"payload": [0] * 32769}, False),
                        ("Devices", {"devices": [0] * 9}, False), ("LinkMessages", {"messages": [[]] * 5}, False),
                        ("LinkMessages", {"messages": [[0] * 32769]}, False), ("DeviceList", {"list": [0] * 123}, False)]:
        c.eq(f"limit edge {kind}", device_limits_ok(kind, v), ok)
    # The largest LinkMessages the limits allow fits MAX_FRAME_BYTES.
    big = {"Response": {"request_id": 2**64 - 1, "response": {"LinkMessages": {"messages": [[0] * 32768] * 4,
           "enrolled": {"account": [0] * 16, "device": 2**32 - 1, "token": [0] * 32, "expires_at": 2**64 - 1}}}}}
    c.eq("largest LinkMessages fits a frame", len(wire.encode_frame(wire.RelayFrame, big)) <= wire.MAX_FRAME_BYTES, True)

if __name__ == "__main__": main()
