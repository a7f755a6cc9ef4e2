"""rand_chacha's ChaCha20Rng::from_seed: the ChaCha20 keystream (key = seed, 64-bit block
counter from 0, stream 0), consumed in 32-bit words (a partial word is discarded)."""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

class ChaCha20Rng:
    def __init__(self, seed):
        self.ks = Cipher(algorithms.ChaCha20(bytes(seed), bytes(16)), None).encryptor()
        self.buf = b""
    def _words(self, nwords):
        need = nwords * 4
        while len(self.buf) < need: self.buf += self.ks.update(bytes(256))
        out, self.buf = self.buf[:need], self.buf[need:]
        return out
    def fill_bytes(self, n): return self._words(-(-n // 4))[:n]
    def next_u32(self): return int.from_bytes(self._words(1), "little")
    def next_u64(self): return int.from_bytes(self._words(2), "little")
