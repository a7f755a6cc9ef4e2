"""§4.13's claim, checked on the stranger's own ratchet: loss, reordering and duplication within
the skip bounds only delay the KEM epochs. Random histories (fixed seeds) between two Sessions, then
clean round trips: both sides must have mixed two epochs each way within 100 round trips, and every
message delivered must have opened (a late or duplicated one may be refused only as a duplicate)."""
import random, os
from prims import *
import ratchet

def history(seed):
    rnd = random.Random(seed)
    ad = os.urandom(325); sk = os.urandom(32); spk = os.urandom(32)
    a = ratchet.Session.initiator(sk, ad, x25519_pub(spk), os.urandom(32)); b = ratchet.Session.responder(sk, ad, spk)
    side = {"a": a, "b": b}; queue = {"a": [], "b": []}   # messages in flight *to* that side
    bad = []
    def deliver(to, m):
        try: side[to].decrypt(m)
        except ratchet.RatchetError as e:
            if str(e) != "DuplicateMessage": bad.append(str(e))
    a_sent = False
    for _ in range(rnd.randrange(100, 400)):
        ev = rnd.random()
        if ev < 0.45:
            who = "a" if (rnd.random() < 0.5 or not a_sent) else "b"
            if who == "b" and b.dhr is None: who = "a"
            queue["b" if who == "a" else "a"].append(side[who].encrypt(os.urandom(rnd.randrange(0, 40))))
            a_sent |= who == "a"
        elif ev < 0.85:
            to = rnd.choice("ab")
            if queue[to]:
                i = rnd.randrange(len(queue[to])) if rnd.random() < 0.3 else 0   # mostly in order, sometimes not
                m = queue[to].pop(i); deliver(to, m)
                if rnd.random() < 0.05: deliver(to, m)                         # duplicate
        elif ev < 0.95:
            to = rnd.choice("ab")
            if queue[to]: queue[to].pop(0)                                     # lost
    for to in "ab":                                                            # what is left arrives late
        for m in queue[to]: deliver(to, m)
    start = (a.e_own, b.e_own)
    for rt in range(100):
        deliver("b", a.encrypt(b"x"))
        deliver("a", b.encrypt(b"y"))
        if a.e_own >= start[0] + 2 and b.e_own >= start[1] + 2: return rt, bad
    return None, bad

def main():
    c = Checker("braids (4.13 property, own ratchet)")
    worst = 0
    for seed in range(12):
        rt, bad = history(seed)
        c.eq(f"seed {seed}: every delivered message opened or was a duplicate", bad, [])
        c.eq(f"seed {seed}: two more KEM epochs each way within 100 round trips", rt is not None, True)
        worst = max(worst, rt or 0)
    print(f"  (at most {worst} clean round trips needed)")
    return c.report()

if __name__ == "__main__": main()
