"""A TCP proxy in front of the relay that loses one PasswordChanged answer
(docs/PROTOCOL.md 12.15, "A lost answer"), so that run_interop.sh can make a
real `umbra password change` leave a store holding a PendingExportKey
(kind 26) for check_store.py to read.

usage: python lose_answer.py RELAY_URL PORT_FILE
Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE) and forwards
every connection to the relay byte for byte. In a WebSocket connection it
parses the client's frames (9.5: RFC 6455 framing, then 0x01 || postcard
ClientFrame); once it has forwarded a PasswordChangeFinish, it forwards
nothing more of the relay's side: the relay carries the change out and
answers, the answer is dropped and both connections are closed, so the
client sees a lost connection. One answer only; later connections pass.

Must never: drop anything before that finish, or change a forwarded byte."""
import asyncio, sys
from urllib.parse import urlparse
from postcard import Reader
import wire

FINISH = [name for name, _ in wire.Request[1]].index("PasswordChangeFinish")
relay = urlparse(sys.argv[1])
lost = False

def frames(buf):
    """The whole RFC 6455 frames at the start of buf: (bytes consumed,
    [(opcode, unmasked payload)])."""
    at, out = 0, []
    while len(buf) - at >= 2:
        b0, b1 = buf[at], buf[at + 1]
        assert not b0 & 0x70, "a compressed or extended frame: this proxy reads plain RFC 6455 frames"
        n, head = b1 & 0x7F, 2
        if n == 126: n, head = int.from_bytes(buf[at + 2:at + 4], "big"), 4
        elif n == 127: n, head = int.from_bytes(buf[at + 2:at + 10], "big"), 10
        mask_len = 4 if b1 & 0x80 else 0
        end = at + head + mask_len + n
        if len(buf) < end: break
        mask = buf[at + head:at + head + mask_len]
        body = buf[at + head + mask_len:end]
        out.append((b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(body)) if mask else bytes(body)))
        at = end
    return at, out

def is_finish(opcode, payload):
    """A binary frame 0x01 || ClientFrame { request_id, PasswordChangeFinish }."""
    if opcode != 2 or payload[:1] != b"\x01": return False
    r = Reader(payload[1:]); r.u64(); return r.u32() == FINISH

def is_response(opcode, payload):
    """A binary frame 0x01 || RelayFrame::Response (tag 0): the finish's answer."""
    return opcode == 2 and payload[:1] == b"\x01" and Reader(payload[1:]).u32() == 0

def lose(state):
    global lost
    if not lost:
        lost = state["lose"] = True
        print("lose_answer: a PasswordChangeFinish went to the relay; its answer is dropped", flush=True)

async def pipe_up(cr, rw, state):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await cr.read(65536)
        if not chunk: rw.close(); return
        head += chunk
    request, chunk = head.split(b"\r\n\r\n", 1)
    websocket = b"upgrade: websocket" in request.lower()
    rw.write(request + b"\r\n\r\n")
    buf = b""
    while True:
        if websocket:
            # Parsed before it is written: the flag is set before the
            # relay can have the whole finish, so before any answer.
            buf += chunk
            used, whole = frames(buf)
            buf = buf[used:]
            if any(is_finish(*f) for f in whole): lose(state)
        rw.write(chunk); await rw.drain()
        chunk = await cr.read(65536)
        if not chunk: break
    rw.close()

async def pipe_down(rr, cw, state):
    buf = b""
    while True:
        chunk = await rr.read(65536)
        if not chunk: break
        if state["lose"]:
            # Nothing more reaches the client; once the relay's answer to
            # the finish is here (so it carried the finish out), close.
            buf += chunk
            used, whole = frames(buf)
            buf = buf[used:]
            if any(is_response(*f) for f in whole): break
            continue
        cw.write(chunk); await cw.drain()
    cw.close()

async def serve(cr, cw):
    rr, rw = await asyncio.open_connection(relay.hostname, relay.port)
    state = {"lose": False}
    up = asyncio.create_task(pipe_up(cr, rw, state))
    await pipe_down(rr, cw, state)
    rw.close(); up.cancel()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    with open(sys.argv[2], "w") as f: f.write(str(server.sockets[0].getsockname()[1]))
    async with server: await server.serve_forever()

asyncio.run(main())
