"""§4.9 session pickles (SessionRecordPickle, SessionPickle, RatchetPickle formats 1 and 2 with the
4.13 braids), read into ratchet.Session. Reads only; the layout is the spec's, never a guess."""
from postcard import Reader, Malformed
import ratchet, kem

FORMAT2 = 0xFFFFFFFF

def _opt(r, f): return r.opt(f)

def read_braids(r, s):
    s.e_own = r.u32(); s.own_seed = r.opt(lambda: r.fixed(64))
    ct = r.opt(lambda: (r.u16(), r.fixed(1088)))
    s.own_ct = {} if ct is None else {i: ct[1][128 * i:128 * i + ratchet.chunk_len(2, i)] for i in range(ratchet.CT_CHUNKS) if ct[0] >> i & 1}
    s.own_ready = r.opt(lambda: r.fixed(32)); s.own_next = r.u8()
    s.e_peer = r.u32(); tag = r.u32()
    if tag == 0:
        have = r.opt(lambda: (r.u16(), r.fixed(1184)))
        s.peer = ("collecting", {} if have is None else
                  {i: have[1][128 * i:128 * i + ratchet.chunk_len(1, i)] for i in range(ratchet.KEY_CHUNKS) if have[0] >> i & 1})
    elif tag == 1: s.peer = ("complete", r.fixed(1184))
    elif tag == 2:
        ct_, ss = r.fixed(1088), r.fixed(32); s.peer = ("encapsulated", ct_, ss, r.u8())
    else: raise Malformed("unknown peer braid state")
    s.turn = 1 if r.bool() else 0
    if s.e_own == 0 or s.e_peer == 0 or (s.own_ready and not s.own_seed) or s.own_next >= 10 or s.pqs >= s.e_own \
            or (s.peer[0] == "encapsulated" and s.peer[3] >= 9):
        raise ValueError("Invalid braids")

def read_ratchet(r):
    first = r.u32()
    fmt2 = first == FORMAT2
    ad = r.take(r.u64()) if fmt2 else r.take(first)
    s = ratchet.Session(ad)
    s.rk = r.fixed(32); s.dhs = r.fixed(32); s.dhr = r.opt(lambda: r.fixed(32))
    snd = r.opt(lambda: (r.fixed(32), r.u32())); rcv = r.opt(lambda: (r.fixed(32), r.u32()))
    s.cks, s.ns = snd if snd else (None, 0); s.ckr, s.nr = rcv if rcv else (None, 0)
    s.pn = r.u32()
    for rk_, mk, nonce, idx, _dated in r.seq(lambda: (r.fixed(32), r.fixed(32), r.fixed(12), r.u32(), r.opt(r.u64))):
        s.skipped[(rk_, idx)] = (mk, nonce)
    s.retired = r.seq(lambda: r.fixed(32))
    s.our_epoch = r.opt(lambda: (r.fixed(32), r.fixed(32)))
    s.epochs = r.seq(lambda: (r.fixed(32), r.fixed(32)))
    if fmt2:
        s.pqs = r.u32(); read_braids(r, s)
    if len(s.skipped) > 2000 or len(s.retired) > 16 or len(s.epochs) > 4 or (s.ckr and not s.dhr):
        raise ValueError("Invalid")
    return s, fmt2

def read_header(r):
    ident = r.fixed(128); ek = r.fixed(32); spk = r.u32()
    extra = r.opt(lambda: ({0: "OneTime", 1: "LastResort"}[r.u32()], r.u32()))
    return ident, ek, spk, extra

def read_session(r):
    rat, fmt2 = read_ratchet(r)
    remote = r.fixed(128); local = (r.fixed(16), r.u32()); remote_addr = (r.fixed(16), r.u32())
    tag = r.u32()
    pending = None if tag == 0 else (read_header(r) if tag == 1 else
                                     (read_header(r), (r.u8(), r.u32(), r.fixed(1088))) if tag == 2 else None)
    if tag > 2: raise Malformed("unknown pending prekey tag")
    base = r.opt(lambda: r.fixed(32))
    return dict(ratchet=rat, format2=fmt2, remote_identity=remote, local=local, remote_address=remote_addr, pending=pending, base_key=base)

def read_record(b):
    if b[0] != 1: raise ValueError(f"UnknownVersion {{ found: {b[0]}, supported: 1 }}")
    r = Reader(b[1:])
    cur = read_session(r); since = r.u64()
    prev = r.seq(lambda: (read_session(r), r.u64()))
    if len(prev) > 4: raise ValueError("Invalid: more than 4 archived sessions")
    if r.left(): raise Malformed("bytes after the pickle")
    return cur, since, prev
