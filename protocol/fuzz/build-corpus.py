#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from docs/test-vectors/.

Each target's seeds are the vector bytes of the layer it decodes (valid
examples and the listed malformed ones), so the fuzzer starts from inputs
that pass the decoder and reach what lies behind it. The corpus is not
committed: it is generated, deterministically (file name = SHA-1 of the
bytes, as libFuzzer names its own finds), into protocol/fuzz/corpus/<target>/
and client-core/fuzz/corpus/<target>/, which .gitignore keeps out of git.
Files libFuzzer adds there during a run stay until the directory is removed.

Usage: protocol/fuzz/build-corpus.py   (from anywhere; paths are resolved
from this file). --check fails if a listed vector field is missing, so a
renamed field cannot silently empty a target's seeds.
"""

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "test-vectors"

# target -> list of (vector file, path, prefix bytes). A path is dot-separated
# keys; "[]" after a key walks every element of that list.
PROTOCOL_SEEDS = {
    "wire_client_frame": [
        ("wire.json", "client_frames[].hex", b""),
        ("wire.json", "invalid_client_frames[].hex", b""),
        ("opaque.json", "frames.register_start", b""),
    ],
    "wire_relay_frame": [
        ("wire.json", "relay_frames[].hex", b""),
        ("wire.json", "version_rejection_notice", b""),
        ("opaque.json", "frames.login_response_login_id_5", b""),
    ],
    "sealed_open": [
        ("sealed_sender.json", "cases[].envelope", b""),
        ("decode_errors.json", "sealed_envelope.valid_envelope", b""),
        ("decode_errors.json", "sealed_envelope.cases[].input", b""),
    ],
    "pairwise_message": [
        ("pairwise.json", "sessions[].messages[].message", b""),
        ("ephemeral.json", "epochs[].pairwise_inner", b""),
        ("decode_errors.json", "pairwise_message[].input", b""),
        ("decode_errors.json", "ratchet_message[].input", b"\x02"),
    ],
    "pairwise_decrypt": [
        ("pairwise.json", "sessions[].messages[].message", b""),
        ("ephemeral.json", "epochs[].pairwise_inner", b""),
        ("decode_errors.json", "pairwise_message[].input", b""),
    ],
    "group_distribution": [
        ("group.json", "distribution", b""),
        ("decode_errors.json", "group.sender_key_distribution[].input", b""),
    ],
    "group_message": [
        ("group.json", "messages[].message", b""),
        ("decode_errors.json", "group.group_message_header[].input", b""),
    ],
    "group_change": [
        ("group_state.json", "chain[].change.hex", b""),
        ("group_state.json", "forks[].changes[].hex", b""),
        ("group_state.json", "refused[].hex", b""),
    ],
    "group_state": [
        ("group_state.json", "chain[].state.hex", b""),
    ],
    # group_welcome's seeds pair each state with the change that made it
    # (in main, below); the Adds among them are real welcomes.
    "group_welcome": [],
    "group_pickle": [
        ("group.json", "sender_pickle", b"\x00"),
        ("group.json", "receiver_pickle", b"\x01"),
    ],
    "content": [
        ("content.json", "examples[].hex", b""),
        ("content.json", "invalid[].hex", b""),
    ],
    "payload": [
        ("payload.json", "payloads[].payload", b""),
        ("payload.json", "decode_errors[].input", b""),
        ("padding.json", "invalid[].padded", b""),
    ],
    "session_record": [
        ("session_pickle.json", "record_pickle", b""),
    ],
    # The first two bytes pick the layer and the piece size (see the
    # target's doc comment): each chunk alone, as a blob and as a plaintext.
    "attachment_open": [
        ("attachment.json", "chunks[].ciphertext", b"\x00\x07"),
        ("attachment.json", "chunks[].ciphertext", b"\x01\x07"),
        ("attachment.json", "pointer.bytes", b"\x00\x00"),
    ],
    # The first byte picks the layer (see the target's doc comment).
    "backup_open": [
        ("backup.json", "cases[].sealed", b"\x00"),
        ("backup.json", "cases[].contents_encoded", b"\x01"),
        ("backup.json", "contents_refusals[].contents", b"\x01"),
    ],
    # The first byte picks the layer (see the target's doc comment); the
    # typed codes (0x03) are text, written by link_codes below.
    "link_open": [
        ("link.json", "msg1", b"\x00"),
        ("link.json", "msg1_refusals[].msg1", b"\x00"),
        ("link.json", "cases[].msg2", b"\x01"),
        ("link.json", "msg2_refusals[].msg2", b"\x01"),
        ("link.json", "cases[].provisioning", b"\x02"),
        ("link.json", "provisioning_refusals[].provisioning", b"\x02"),
    ],
    # The first byte picks the structure (see the target's doc comment).
    "kt_proofs": [
        ("kt.json", "lookups[].proof", b"\x00"),
        ("kt.json", "rejects[].bytes", b"\x00"),
        ("kt.json", "histories[].proof", b"\x01"),
        ("kt.json", "epochs[].head", b"\x02"),
        ("kt.json", "inclusion.proof", b"\x03"),
        ("kt.json", "consistency[].proof", b"\x04"),
    ],
    # The first byte picks the message (see each target's doc comment).
    "opaque_relay": [
        ("opaque.json", "registration.registration_request", b"\x00"),
        ("opaque.json", "registration.registration_upload", b"\x01"),
        ("opaque.json", "login.credential_request", b"\x02"),
        ("opaque.json", "unknown_user_login.credential_request", b"\x02"),
        ("opaque.json", "login.credential_finalization", b"\x03"),
    ],
    "opaque_client": [
        ("opaque.json", "registration.registration_response", b"\x00"),
        ("opaque.json", "login.credential_response", b"\x01"),
        ("opaque.json", "unknown_user_login.credential_response", b"\x01"),
    ],
}

# store_record: the first byte is the record kind (client-core's RecordKind
# numbers); the vectors hold one stored record, the session pickle (kind 10).
# The other kinds start from their number alone: postcard records are short
# and the fuzzer builds them quickly.
STORE_SEEDS = {
    "store_record": [
        ("session_pickle.json", "record_pickle", b"\x0a"),
    ],
    # No vectors hold a store header or a Generation record: both are
    # built below from their layouts (docs/PROTOCOL.md 12.9).
    "store_header": [],
    "store_generation": [],
}
STORE_KINDS = range(1, 24)


def store_headers():
    """Headers as the client writes them (recommended and test parameters,
    the bounds), an older and a newer version, and a bad magic. The check
    is a sealed record's length of arbitrary bytes (g 0, nonce, ciphertext
    and tag of the 27-byte check plaintext): the decoder does not open it."""
    check = bytes(8) + bytes(range(24)) + bytes([0xC5]) * (27 + 16)
    salt, owner = bytes([7]) * 16, bytes([9]) * 16
    out = []
    for version, (m, t, p) in [
        (3, (64 * 1024, 3, 1)),
        (3, (64, 1, 1)),
        (3, (1_048_576, 64, 16)),
        (3, (1_048_577, 64, 16)),
        (2, (64 * 1024, 3, 1)),
        (4, (64 * 1024, 3, 1)),
    ]:
        fixed = b"UMBRACS" + bytes([version])
        fixed += m.to_bytes(4, "big") + t.to_bytes(4, "big") + p.to_bytes(4, "big")
        out.append(fixed + salt + owner + check)
    out.append(b"UMBRACX" + out[0][7:])
    return out


def varint(n):
    """LEB128, as postcard writes unsigned integers wider than a byte."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def generation_records():
    """Generation record plaintexts (postcard: generation, then entries of
    kind byte, slot byte string, g): empty, one entry per guarded kind with
    32-byte HMAC slots and an 8-byte outbox slot, a large generation, and
    an entry of an unguarded kind (refused)."""
    def record(generation, entries):
        body = varint(generation) + varint(len(entries))
        for kind, slot, g in entries:
            body += bytes([kind]) + varint(len(slot)) + slot + varint(g)
        return body

    hmac = bytes(range(32))
    guarded = [(10, hmac, 4), (13, (7).to_bytes(8, "big"), 5), (5, hmac, 2),
               (21, hmac, 6), (22, hmac, 6), (23, hmac + bytes(8), 7)]
    return [
        record(0, []),
        record(7, guarded),
        record(2**64 - 1, [(10, hmac, 2**64 - 1)]),
        record(3, [(8, hmac, 3)]),
    ]

CRATES = {
    ROOT / "protocol" / "fuzz": PROTOCOL_SEEDS,
    ROOT / "client-core" / "fuzz": STORE_SEEDS,
}


def link_codes():
    """link_open's typed codes: the code of link.json as shown, as typed
    (grouped, upper case), and every refused text, behind layer byte 0x03."""
    link = json.loads((VECTORS / "link.json").read_text())
    texts = [link["code_text"], link["code_typed"]] + [r["text"] for r in link["code_refusals"]]
    return [b"\x03" + text.encode() for text in texts]


def walk(value, parts):
    """Every value at the dotted path (lists expanded at "[]")."""
    if not parts:
        yield value
        return
    part, rest = parts[0], parts[1:]
    key = part[:-2] if part.endswith("[]") else part
    if not isinstance(value, dict) or key not in value:
        return
    value = value[key]
    if part.endswith("[]"):
        for item in value:
            yield from walk(item, rest)
    else:
        yield from walk(value, rest)


def to_bytes(value):
    """Hex text, or a {"fill": hex, "len": n} run (decode_errors.json)."""
    if isinstance(value, dict) and "fill" in value:
        return bytes.fromhex(value["fill"]) * value["len"]
    if isinstance(value, str):
        return bytes.fromhex(value)
    raise ValueError(f"not a byte field: {value!r}")


def main():
    check = "--check" in sys.argv[1:]
    cache = {}
    missing = []
    total = 0
    for crate, seeds in CRATES.items():
        for target, sources in seeds.items():
            out = crate / "corpus" / target
            out.mkdir(parents=True, exist_ok=True)
            count = 0
            for file, path, prefix in sources:
                if file not in cache:
                    cache[file] = json.loads((VECTORS / file).read_text())
                found = list(walk(cache[file], path.split(".")))
                if not found:
                    missing.append(f"{target}: {file} {path}")
                for value in found:
                    data = prefix + to_bytes(value)
                    name = hashlib.sha1(data).hexdigest()
                    (out / name).write_bytes(data)
                    count += 1
            if target == "group_welcome":
                chain = json.loads((VECTORS / "group_state.json").read_text())["chain"]
                for link in chain:
                    state = bytes.fromhex(link["state"]["hex"])
                    data = len(state).to_bytes(2, "big") + state + bytes.fromhex(link["change"]["hex"])
                    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
                    count += 1
            generated = {
                "store_header": store_headers,
                "store_generation": generation_records,
                "link_open": link_codes,
            }
            for data in generated.get(target, list)():
                (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
                count += 1
            if target == "store_record":
                for kind in STORE_KINDS:
                    data = bytes([kind])
                    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
                    count += 1
            total += count
            print(f"{out.relative_to(ROOT)}: {count} seeds")
    if missing:
        print("vector fields not found:\n  " + "\n  ".join(missing), file=sys.stderr)
        if check:
            sys.exit(1)
    print(f"{total} seeds")


if __name__ == "__main__":
    main()
