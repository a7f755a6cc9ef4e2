"""PROTOCOL.md 12.8-12.9: open a real umbra client store with the spec alone.

Shared by check_store.py (which checks every record) and probe_token_blob.py
(which needs the token record): the header (format 3, or 4 with key slots
after a password change), the Argon2id stretch, the keys, and one record's
opening with the associated data of 12.9."""
import sqlite3
from prims import *
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as xdec
from argon2.low_level import hash_secret_raw, Type


class Store:
    """An opened store: `owner`, `record_key`, `slot_key`, `check` (the sealed
    check record), `format`, `db`, and `open_rec(kind, slot, sealed)`."""

    def __init__(self, data_dir, pw, log=print):
        self.db = sqlite3.connect(f"{data_dir}/umbra-client.db")
        hdr = self.db.execute("select bytes from header where id = 1").fetchone()[0]
        assert hdr[:7] == b"UMBRACS" and hdr[7] in (3, 4), f"magic/version (found format {hdr[7]}, this reader knows 3 and 4)"
        self.format = hdr[7]
        argon = lambda salt, mem, it, par: hash_secret_raw(
            pw, salt, time_cost=it, memory_cost=mem, parallelism=par, hash_len=32, type=Type.ID, version=0x13)
        if hdr[7] == 3:
            mem, it, par = (int.from_bytes(hdr[8 + 4*i:12 + 4*i], "big") for i in range(3))
            salt, self.owner, self.check = hdr[20:36], hdr[36:52], hdr[52:]
            log(f"header: format 3, m={mem} KiB t={it} p={par}, owner {self.owner.hex()}, check {len(self.check)} bytes")
            master = argon(salt, mem, it, par)
            self.record_key = hkdf(None, master, b"umbra/v1/client-store/record-key", 32)
            self.slot_key = hkdf(None, master, b"umbra/v1/client-store/slot-key", 32)
            return
        # 12.8 "Key slots": the keys wrapped under each password (after a password change).
        self.owner, n = hdr[8:24], hdr[24]
        assert n in (1, 2), f"key slot count {n}"
        self.record_key = self.slot_key = None
        for i in range(n):
            ks = hdr[25 + 132*i:25 + 132*(i + 1)]
            mem, it, par = (int.from_bytes(ks[4*j:4*j + 4], "big") for j in range(3))
            salt, nonce, wrapped = ks[12:28], ks[28:52], ks[52:132]
            wrap_key = hkdf(None, argon(salt, mem, it, par), b"umbra/v1/client-store/wrap-key", 32)
            ad = b"UMBRACS\x04" + self.owner + ks[:12] + salt
            try:
                keys = xdec(wrapped, ad, nonce, wrap_key)
            except Exception:
                continue
            self.record_key, self.slot_key = keys[:32], keys[32:]
            log(f"header: format 4, {n} key slot(s), opened by slot {i} (m={mem} KiB t={it} p={par}), owner {self.owner.hex()}")
            break
        assert self.record_key is not None, "no key slot opens with this password"
        self.check = hdr[25 + 132*n:]

    def open_rec(self, kind, slot, sealed):
        """12.9: generation (u64be) || nonce (24) || ciphertext, under
        AD = 03 || kind || owner || generation || slot. Returns (plaintext, generation)."""
        g = sealed[:8]
        ad = b"\x03" + bytes([kind]) + self.owner + g + slot
        return xdec(sealed[32:], ad, sealed[8:32], self.record_key), int.from_bytes(g, "big")
