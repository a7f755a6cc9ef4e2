"""Probe a running relay against PROTOCOL.md 9.3/9.4/11.2/11.3: python probe_relay.py URL"""
import asyncio, sys, os
import websockets
from prims import *
import wire, ristretto as R, opaque as O
from check_wire import spec_error_table
wire.ERROR_CODES.update({n: v[0] for n, v in spec_error_table().items()})
URL = sys.argv[1].replace("http", "ws") + "/v1/ws"
results = []
def note(what, ok, detail=""): results.append(ok); print(("ok   " if ok else "FAIL ") + what + ("" if ok else "  -> " + str(detail)))

async def frames(ws, n=3, t=3):
    out = []
    try:
        for _ in range(n):
            m = await asyncio.wait_for(ws.recv(), t)
            out.append(m)
    except Exception as e:
        out.append(("closed", getattr(ws, "close_code", None)))
    return out

def dec(m):
    if isinstance(m, tuple): return m
    if isinstance(m, bytes) and len(m) == 3 and m[0] == 0: return ("notice", m.hex())
    return wire.decode_frame(wire.RelayFrame, m)

def cf(rid, req): return wire.encode_frame(wire.ClientFrame, {"request_id": rid, "request": req})

async def main():
    async with websockets.connect(URL) as ws:
        await ws.send(cf(1, "Ping")); f = [dec(m) for m in await frames(ws, 1)]
        note("Ping before auth -> Pong", f[0] == {"Response": {"request_id": 1, "response": "Pong"}}, f)
        await ws.send(cf(2, {"ResolveUsername": {"username": "bob"}})); f = [dec(m) for m in await frames(ws, 1)]
        note("ResolveUsername before auth -> NotAuthenticated (4)", f[0]["Response"]["response"]["Error"]["code"] == 4, f)
        await ws.send(cf(3, {"RegisterStart": {"username": "bob", "opaque_request": list(R.mul_base(R.scalar_from_int(5)))}}))
        f = [dec(m) for m in await frames(ws, 1)]
        note("RegisterStart for a held name -> UsernameTaken (6)", f[0]["Response"]["response"].get("Error", {}).get("code") == 6, f)
        await ws.send(cf(4, {"RegisterStart": {"username": "zed", "opaque_request": [1] * 32}}))
        f = [dec(m) for m in await frames(ws, 1)]
        note("OPAQUE request that is not a point -> BadFrame (1), connection stays open",
             f[0]["Response"]["response"].get("Error", {}).get("code") == 1, f)
        await ws.send(cf(41, "Ping")); f = [dec(m) for m in await frames(ws, 1)]
        note("... and the next Ping is answered", f[0] == {"Response": {"request_id": 41, "response": "Pong"}}, f)
        # unknown user: fake LoginResponse, then AuthFailed
        P = O.hash_to_group(b"x"); esk, epk = O.derive_key_pair(os.urandom(32), b"OPAQUE-DeriveDiffieHellmanKeyPair")
        await ws.send(cf(5, {"LoginStart": {"username": "nosuchuser", "opaque_request": list(R.mul(R.reduce64(os.urandom(64)), P) + os.urandom(32) + epk)}}))
        f = [dec(m) for m in await frames(ws, 1)]
        lr = f[0]["Response"]["response"].get("LoginResponse")
        note("LoginStart for an unknown name -> LoginResponse with a 320-byte KE2", lr is not None and len(lr["opaque_response"]) == 320, f)
        await ws.send(cf(6, {"LoginFinish": {"login_id": lr["login_id"], "opaque_finalization": [0] * 64}}))
        f = [dec(m) for m in await frames(ws, 1)]
        note("LoginFinish for it -> AuthFailed (5)", f[0]["Response"]["response"].get("Error", {}).get("code") == 5, f)
        await ws.send(cf(7, {"LoginFinish": {"login_id": lr["login_id"], "opaque_finalization": [0] * 64}}))
        f = [dec(m) for m in await frames(ws, 1)]
        note("same login_id again -> UnknownExchange (22)", f[0]["Response"]["response"].get("Error", {}).get("code") == 22, f)
        await ws.send(cf(8, {"Authenticate": {"token": [7] * 32, "device": 1}}))
        f = [dec(m) for m in await frames(ws, 1)]
        note("Authenticate with an unknown token -> AuthFailed (5)", f[0]["Response"]["response"].get("Error", {}).get("code") == 5, f)
    async with websockets.connect(URL) as ws:
        await ws.send("text"); f = [dec(m) for m in await frames(ws, 3)]
        ok = (f[0] == {"Response": {"request_id": 0, "response": {"Error": {"code": 1, "message": f[0]["Response"]["response"]["Error"]["message"], "retry_after_secs": None}}}}
              and "Closing" in f[1] and f[1]["Closing"]["code"] == 1)
        note("text message -> Error{BadFrame} id 0, Closing{BadFrame}, close", ok, f)
    async with websockets.connect(URL) as ws:
        await ws.send(bytes([2, 1, 16])); f = [dec(m) for m in await frames(ws, 2)]
        note("version 2 -> notice 000101 then close 1002", f[0] == ("notice", "000101") and f[1] == ("closed", 1002), f)
    async with websockets.connect(URL) as ws:
        await ws.send(bytes([1, 0, 16])); f = [dec(m) for m in await frames(ws, 3)]
        note("request_id 0 -> Error{BadFrame} id 0, Closing{BadFrame}", f[0]["Response"]["request_id"] == 0 and f[0]["Response"]["response"]["Error"]["code"] == 1 and f[1]["Closing"]["code"] == 1, f)
    async with websockets.connect(URL) as ws:
        await ws.send(bytes([1, 9, 16, 0])); f = [dec(m) for m in await frames(ws, 3)]
        note("trailing byte -> Error{BadFrame} with peek_request_id 9, Closing", f[0]["Response"]["request_id"] == 9 and f[0]["Response"]["response"]["Error"]["code"] == 1 and f[1]["Closing"]["code"] == 1, f)
    async with websockets.connect(URL, max_size=2**22) as ws:
        await ws.send(cf(11, {"Ack": {"seqs": [1] * 262144}})); f = [dec(m) for m in await frames(ws, 3)]
        note("frame over 262144 bytes -> Error{FrameTooLarge} with its id, Closing{FrameTooLarge}", f[0]["Response"]["request_id"] == 11 and f[0]["Response"]["response"]["Error"]["code"] == 3 and f[1]["Closing"]["code"] == 3, f)
    print(f"{sum(results)}/{len(results)} relay behaviours as specified")

asyncio.run(main())
