"""§9.2 postcard encoding as umbra uses it: encoder + strict decoder."""

class Malformed(Exception): pass

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        if n: out.append(b | 0x80)
        else:
            out.append(b); return bytes(out)

def bstr(b): return varint(len(b)) + bytes(b)
def string(s): return bstr(s.encode())
def opt(v, enc): return b"\x00" if v is None else b"\x01" + enc(v)
def boolean(v): return b"\x01" if v else b"\x00"
def seq(items, enc): return varint(len(items)) + b"".join(enc(i) for i in items)

class Reader:
    def __init__(self, b): self.b, self.i = bytes(b), 0
    def left(self): return len(self.b) - self.i
    def take(self, n):
        if n > self.left(): raise Malformed("unexpected end")
        r = self.b[self.i:self.i+n]; self.i += n; return r
    def u8(self): return self.take(1)[0]
    def varint(self, bits):
        maxbytes = (bits + 6) // 7
        n, shift = 0, 0
        for k in range(maxbytes):
            byte = self.u8()
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if n >> bits: raise Malformed("varint overflow")
                return n
            shift += 7
        raise Malformed("varint too long")
    def u16(self): return self.varint(16)
    def u32(self): return self.varint(32)
    def u64(self): return self.varint(64)
    def bool(self):
        b = self.u8()
        if b > 1: raise Malformed("bad bool")
        return b == 1
    def opt(self, f):
        b = self.u8()
        if b == 0: return None
        if b == 1: return f()
        raise Malformed("bad option")
    def bytes(self): return self.take(self.varint(64))
    def fixed(self, n):
        b = self.bytes()
        if len(b) != n: raise Malformed("fixed array of wrong length")
        return b
    def string(self):
        try: return self.bytes().decode("utf-8")
        except UnicodeDecodeError: raise Malformed("invalid utf-8")
    def seq(self, f):
        return [f() for _ in range(self.varint(64))]
