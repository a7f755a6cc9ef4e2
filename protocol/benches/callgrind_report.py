#!/usr/bin/env python3
"""Reads the callgrind.out files benches/callgrind.sh wrote and prints, per
operation, instructions per run, the umbra/vodozemac ratio, and how often
each primitive was called per run (call counts from callgrind's call graph,
so nothing in the library is instrumented). Each operation was profiled
with N and 2N runs; figures are the difference divided by N, which removes
the set-up and warm-up (callgrind counts calls outside the measured
function too). Usage: callgrind_report.py RESULTS_TSV
"""
import re
import sys
from collections import defaultdict

# Primitive -> symbol substring of the (non-inlined) function that performs it.
PRIMITIVES = [
    ("X25519 DH", "x25519_dalek::x25519::StaticSecret::diffie_hellman"),
    ("X25519 base mult", "x25519_dalek::x25519::PublicKey as core::convert::From<&x25519_dalek::x25519::StaticSecret"),
    ("Ed25519 sign", "ed25519_dalek::signing::SigningKey as ed25519::signature::Signer"),
    ("Ed25519 verify_strict", "ed25519_dalek::verifying::VerifyingKey::verify_strict"),
    ("Edwards decompress", "CompressedEdwardsY::decompress"),
    ("SHA-256 compress", "sha2::sha256::compress256"),
    ("SHA-512 compress", "sha2::sha512::compress512"),
    ("HKDF extract", "hkdf::Hkdf<H,I>::extract"),
    ("ChaCha20-Poly1305 seal", "as aead::AeadInPlace>::encrypt_in_place_detached"),
    ("ChaCha20-Poly1305 open", "as aead::AeadInPlace>::decrypt_in_place_detached"),
    ("malloc", "malloc"),
]


def parse(path):
    """Total Ir and calls per callee name."""
    names = {}
    calls = defaultdict(int)
    total = 0
    callee = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:"):
                total = int(line.split()[1])
            elif line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    callee = names.get(m.group(1), m.group(1))
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and callee is not None:
                calls[callee] += int(line.split("=")[1].split()[0])
    return total, calls


def main():
    rows = []
    for line in open(sys.argv[1]):
        op, n, once, twice = line.rstrip("\n").split("\t")
        total1, calls1 = parse(once)
        total2, calls2 = parse(twice)
        n = int(n)
        total = total2 - total1
        counts = {}
        for label, needle in PRIMITIVES:
            hit = sum(calls2[name] - calls1.get(name, 0) for name in calls2
                      if needle in name and (label != "malloc" or name == "malloc"))
            counts[label] = hit / n
        rows.append((op, total / n, counts))

    per_op = {op: ir for op, ir, _ in rows}
    print("| operation | Ir per run | vodozemac Ir | umbra speed / vodozemac | AEAD ceiling |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for op, ir, _ in rows:
        group, impl = op.split("/", 1)
        other = per_op.get(group + "/vodozemac") if impl == "umbra" else None
        ceiling = per_op.get(group + "/chacha20poly1305_ceiling") if impl == "umbra" else None
        ratio = f"{other / ir:.2f}x" if other else ""
        share = f"umbra at {100 * ceiling / ir:.0f} %" if ceiling else ""
        other = f"{other:,.0f}" if other else ""
        print(f"| {op} | {ir:,.0f} | {other} | {ratio} | {share} |")
    print()
    labels = [label for label, _ in PRIMITIVES]
    print("| operation | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for op, _, counts in rows:
        cells = [f"{counts[l]:g}" for l in labels]
        print(f"| {op} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
