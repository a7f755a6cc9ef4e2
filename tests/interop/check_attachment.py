"""§14 file attachments: chunk keys, nonces, every sealed chunk, the digest,
the pointer bytes, and the refusals, rebuilt from docs/PROTOCOL.md §14 alone."""
import hashlib
from prims import *
from chacharng import ChaCha20Rng

CHUNK = 65536
TAG = 16

def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)

def blob_len(size): return size + TAG * (size // CHUNK + 1)

def keys(file_key):
    return (hkdf(None, file_key, b"umbra/v1/attachment/chunk-key", 32),
            hkdf(None, file_key, b"umbra/v1/attachment/nonce-prefix", 7))

def seal(file_key, plaintext):
    key, prefix = keys(file_key)
    n = len(plaintext) // CHUNK + 1
    out = []
    for i in range(n):
        nonce = prefix + u32be(i) + bytes([1 if i == n - 1 else 0])
        out.append((nonce, aead_seal(key, nonce, b"", plaintext[i * CHUNK:(i + 1) * CHUNK])))
    return out

def open_blob(file_key, size, digest, blob):
    """§14.6 in order, streaming: returns the plaintext or the error."""
    expected = blob_len(size)
    if len(blob) > expected: return "Oversized"
    key, prefix = keys(file_key)
    S = CHUNK + TAG
    out, i = b"", 0
    # Step 3: every full sealed chunk that has arrived is a non-last chunk.
    while (i + 1) * S <= len(blob):
        nonce = prefix + u32be(i) + b"\x00"
        try: out += aead_open(key, nonce, b"", blob[i * S:(i + 1) * S])
        except Exception: return f"TamperedChunk {{ index: {i} }}"
        i += 1
    # Step 4: length, digest, then the last chunk with the flag.
    if len(blob) < expected: return f"Truncated {{ received: {len(blob)}, expected: {expected} }}"
    if hashlib.sha256(blob).digest() != digest: return "DigestMismatch"
    try: out += aead_open(key, prefix + u32be(i) + b"\x01", b"", blob[i * S:])
    except Exception: return f"TamperedChunk {{ index: {i} }}"
    return out

def main():
    d = load("attachment.json"); c = Checker("attachment.json")
    c.eq("chunk size", d["chunk_bytes"], CHUNK)
    file_key = ChaCha20Rng(bytes([0x41] * 32)).fill_bytes(32)
    c.eq("file key", file_key, d["file_key"])
    plaintext = bytes(i % 251 for i in range(d["size"]))
    c.eq("plaintext sha256", hashlib.sha256(plaintext).digest(), d["plaintext_sha256"])
    key, prefix = keys(file_key)
    c.eq("chunk key", key, d["chunk_key"]); c.eq("nonce prefix", prefix, d["nonce_prefix"])
    chunks = seal(file_key, plaintext)
    c.eq("chunk count", len(chunks), len(d["chunks"]))
    for (nonce, sealed), v in zip(chunks, d["chunks"]):
        c.eq(f"chunk {v['index']} nonce", nonce, v["nonce"])
        c.eq(f"chunk {v['index']} ciphertext", sealed, v["ciphertext"])
        c.eq(f"chunk {v['index']} last", v["last"], v["index"] == len(chunks) - 1)
    blob = b"".join(s for _, s in chunks)
    c.eq("blob len", len(blob), d["blob_len"]); c.eq("blob_len()", blob_len(d["size"]), d["blob_len"])
    digest = hashlib.sha256(blob).digest()
    c.eq("digest", digest, d["digest"])
    p = d["pointer"]
    # §10.3: version 1, tag 5, FilePointer fields in order (§9.2 encoding).
    ptr = (b"\x01\x05" + b"\x10" + H(p["id"]) + varint(len(H(p["blob_id"]))) + H(p["blob_id"])
           + b"\x20" + file_key + b"\x20" + digest + varint(d["size"])
           + varint(len(p["file_name"])) + p["file_name"].encode()
           + varint(len(p["content_type"])) + p["content_type"].encode())
    c.eq("pointer bytes", ptr, p["bytes"])
    c.eq("opens", open_blob(file_key, d["size"], digest, blob), plaintext)
    S = CHUNK + TAG
    flipped = bytearray(blob); flipped[S] ^= 1
    swapped = blob[S:2 * S] + blob[:S] + blob[2 * S:]
    damaged = {"bit 0 of byte 0 of chunk 1 flipped": bytes(flipped),
               "chunks 0 and 1 swapped": swapped, "blob cut after chunk 1": blob[:2 * S]}
    for r in d["refused"]:
        c.eq(f"refused: {r['case']}", open_blob(file_key, d["size"], digest, damaged[r["case"]]), r["error"])
    return c.report()

if __name__ == "__main__":
    import sys; sys.exit(0 if main() else 1)
