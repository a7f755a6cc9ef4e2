//! Instruction counts of every operation in `benches/protocol.rs`, for
//! umbra, vodozemac and bare ChaCha20-Poly1305, so a ratio can be checked
//! on any machine (however loaded) and a regression shows as a number.
//!
//! This binary only runs one named operation `N` times after its set-up;
//! `benches/callgrind.sh` runs it under `valgrind --tool=callgrind` with
//! collection switched on only inside [`umbra_callgrind_measure`], and
//! prints instructions per operation, the umbra/vodozemac ratio and the
//! primitive operations (X25519, Ed25519, SHA-256 blocks, AEAD calls) each
//! one performed. Why a harness and not iai-callgrind: docs/BENCHMARKS.md.
//!
//! Run: `protocol/benches/callgrind.sh` (or `... callgrind.sh steady_100B`
//! for the operations whose name contains `steady_100B`). Without
//! arguments, as `cargo bench` runs it, it lists the operations and exits.

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;

mod common;

use common::{
    olm_accounts, olm_key_agreement, olm_pair, responder, umbra_key_agreement, umbra_pair,
    ALICE_ADDR, SIZES,
};
use umbra_protocol::attachment::{self, FileKey};
use umbra_protocol::fingerprint::SafetyNumber;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::sealed;

/// Every operation, as `group/implementation` (the criterion names).
fn operations() -> Vec<String> {
    let mut ops = vec![
        "key_agreement_both_sides/umbra".to_string(),
        "key_agreement_both_sides/vodozemac".to_string(),
    ];
    for (_, name) in SIZES {
        ops.push(format!("steady_state_encrypt_decrypt_{name}/umbra"));
        ops.push(format!("steady_state_encrypt_decrypt_{name}/vodozemac"));
    }
    ops.extend(
        [
            "steady_state_encrypt_decrypt_64KiB/chacha20poly1305_ceiling",
            "steady_state_encrypt_decrypt_64KiB/chacha20poly1305_367B_ad",
            "dh_ratchet_ping_pong_turn/umbra",
            "dh_ratchet_ping_pong_turn/vodozemac",
            "sealed_seal_open_160B/umbra",
            "safety_number/umbra",
            "attachment_8MiB/umbra_stream_seal_open",
            "attachment_8MiB/bare_chacha20poly1305_seal_open",
            "attachment_8MiB/sha256_twice",
        ]
        .map(String::from),
    );
    ops
}

/// The only code callgrind counts (`--toggle-collect`): `iters` runs of
/// `op`, nothing of the set-up. Never inlined, so the symbol exists.
#[inline(never)]
#[no_mangle]
pub fn umbra_callgrind_measure(op: &mut dyn FnMut(), iters: usize) {
    for _ in 0..iters {
        op();
    }
}

/// Runs `op` once outside the measurement (first-use costs such as CPU
/// feature detection and the allocator's first pages are not the
/// operation's), then `iters` times inside it.
fn run(mut op: impl FnMut(), iters: usize) {
    op();
    umbra_callgrind_measure(&mut op, iters);
}

/// Runs `op` on inputs made beforehand, one per run: the set-up (fresh
/// identities, accounts) stays outside the count, and so does dropping the
/// inputs afterwards, as in criterion's `iter_batched`. `made` inputs are
/// made whatever `iters` is (at least `iters + 1`), so the N-run and 2N-run
/// profiles do the same set-up and its calls cancel in their difference
/// (callgrind counts calls even while collection is off).
fn run_batched<I>(
    mut setup: impl FnMut() -> I,
    mut op: impl FnMut(&mut I),
    iters: usize,
    made: usize,
) {
    let mut inputs: Vec<I> = (0..made.max(iters + 1)).map(|_| setup()).collect();
    let mut spent = Vec::with_capacity(inputs.len());
    let mut each = || {
        if let Some(mut input) = inputs.pop() {
            op(&mut input);
            spent.push(input);
        }
    };
    each();
    umbra_callgrind_measure(&mut each, iters);
}

fn steady_size(name: &str) -> Option<usize> {
    SIZES.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
}

fn dispatch(op: &str, iters: usize, made: usize) -> Result<(), String> {
    let (group, implementation) = op.split_once('/').ok_or("operation is group/impl")?;
    if let Some(size) = group
        .strip_prefix("steady_state_encrypt_decrypt_")
        .and_then(steady_size)
    {
        let plaintext = vec![0x42u8; size];
        match implementation {
            "umbra" => {
                let (mut alice, mut bob) = umbra_pair();
                run(
                    || {
                        let m = alice.encrypt(black_box(&plaintext), &mut OsRng).unwrap();
                        black_box(bob.decrypt(&m).unwrap());
                    },
                    iters,
                );
            }
            "vodozemac" => {
                let (mut a, mut b) = olm_pair();
                run(
                    || {
                        let m = a.encrypt(black_box(&plaintext)).unwrap();
                        black_box(b.decrypt(&m).unwrap());
                    },
                    iters,
                );
            }
            // The second runs the same AEAD with associated data as long as
            // a ratchet message's (367 bytes: X3DH AD 325, type, version,
            // header 40; 23 Poly1305 blocks). poly1305 0.8 leaves its 4-block
            // AVX2 path once a block is left over, so this is the ceiling
            // umbra's message format allows (docs/BENCHMARKS.md).
            "chacha20poly1305_ceiling" | "chacha20poly1305_367B_ad" => {
                let ad = if implementation == "chacha20poly1305_ceiling" {
                    Vec::new()
                } else {
                    vec![0x5au8; 367]
                };
                let cipher = ChaCha20Poly1305::new(Key::from_slice(&[7u8; 32]));
                let nonce = Nonce::from_slice(&[0u8; 12]);
                let mut buffer = plaintext.clone();
                run(
                    || {
                        let tag = cipher
                            .encrypt_in_place_detached(nonce, &ad, &mut buffer)
                            .unwrap();
                        cipher
                            .decrypt_in_place_detached(nonce, &ad, &mut buffer, &tag)
                            .unwrap();
                        black_box(&buffer);
                    },
                    iters,
                );
            }
            _ => return Err(format!("unknown operation {op}")),
        }
        return Ok(());
    }
    match op {
        "key_agreement_both_sides/umbra" => run_batched(
            || (IdentityKeyPair::generate(&mut OsRng), responder()),
            |(alice_id, (bob, bundle))| {
                black_box(umbra_key_agreement(alice_id, bob, bundle));
            },
            iters,
            made,
        ),
        "key_agreement_both_sides/vodozemac" => run_batched(
            olm_accounts,
            |(alice, bob, otk)| {
                black_box(olm_key_agreement(alice, bob, *otk));
            },
            iters,
            made,
        ),
        "dh_ratchet_ping_pong_turn/umbra" => {
            let (mut alice, mut bob) = umbra_pair();
            run(
                || {
                    let m = alice.encrypt(b"ping", &mut OsRng).unwrap();
                    bob.decrypt(&m).unwrap();
                    let r = bob.encrypt(b"pong", &mut OsRng).unwrap();
                    black_box(alice.decrypt(&r).unwrap());
                },
                iters,
            );
        }
        "dh_ratchet_ping_pong_turn/vodozemac" => {
            let (mut a, mut b) = olm_pair();
            run(
                || {
                    let m = a.encrypt(b"ping").unwrap();
                    b.decrypt(&m).unwrap();
                    let r = b.encrypt(b"pong").unwrap();
                    black_box(a.decrypt(&r).unwrap());
                },
                iters,
            );
        }
        "sealed_seal_open_160B/umbra" => {
            let alice = IdentityKeyPair::generate(&mut OsRng);
            let bob = IdentityKeyPair::generate(&mut OsRng);
            let bob_public = bob.public();
            let inner = vec![0x11u8; 160];
            run(
                || {
                    let envelope =
                        sealed::seal(&alice, &ALICE_ADDR, &bob_public, &inner, &mut OsRng).unwrap();
                    black_box(sealed::open(&bob, &envelope).unwrap());
                },
                iters,
            );
        }
        "safety_number/umbra" => {
            let alice = IdentityKeyPair::generate(&mut OsRng).public();
            let bob = IdentityKeyPair::generate(&mut OsRng).public();
            run(
                || {
                    black_box(SafetyNumber::compute(b"alice", &alice, b"bob", &bob));
                },
                iters,
            );
        }
        "attachment_8MiB/umbra_stream_seal_open" => {
            const LEN: usize = 8 * 1024 * 1024;
            let plaintext: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            let key = FileKey::random(&mut OsRng);
            let mut blob = Vec::with_capacity(LEN + 4096);
            let mut out = Vec::with_capacity(LEN);
            run(
                || {
                    blob.clear();
                    out.clear();
                    let mut encryptor = attachment::AttachmentEncryptor::new(&key);
                    for piece in plaintext.chunks(64 * 1024) {
                        encryptor.push(piece, &mut blob).unwrap();
                    }
                    let sealed = encryptor.finish(&mut blob).unwrap();
                    let mut decryptor =
                        attachment::AttachmentDecryptor::new(&key, sealed.size, sealed.digest)
                            .unwrap();
                    for piece in blob.chunks(64 * 1024) {
                        decryptor.push(piece, &mut out).unwrap();
                    }
                    decryptor.finish(&mut out).unwrap();
                    black_box(out.len());
                },
                iters,
            );
        }
        "attachment_8MiB/bare_chacha20poly1305_seal_open" => {
            let mut buffer: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
            let cipher = ChaCha20Poly1305::new(&Key::from([7u8; 32]));
            let nonce = Nonce::from([0u8; 12]);
            run(
                || {
                    cipher.encrypt_in_place(&nonce, b"", &mut buffer).unwrap();
                    cipher.decrypt_in_place(&nonce, b"", &mut buffer).unwrap();
                    black_box(&buffer);
                },
                iters,
            );
        }
        "attachment_8MiB/sha256_twice" => {
            use sha2::Digest;
            let plaintext: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
            run(
                || {
                    let sent: [u8; 32] = sha2::Sha256::digest(black_box(&plaintext)).into();
                    let received: [u8; 32] = sha2::Sha256::digest(black_box(&plaintext)).into();
                    black_box((sent, received));
                },
                iters,
            );
        }
        _ => return Err(format!("unknown operation {op}")),
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [op, iters, rest @ ..] if !op.starts_with('-') && rest.len() <= 1 => {
            let parse = |what: &str, text: &str| {
                text.parse::<usize>().unwrap_or_else(|_| {
                    eprintln!("{what} must be a number, got {text}");
                    std::process::exit(2);
                })
            };
            let iters = parse("iterations", iters);
            // Batched set-ups to make (callgrind.sh passes the same number
            // to the N-run and the 2N-run profile); default: one per run.
            let made = rest.first().map_or(iters + 1, |m| parse("inputs", m));
            if let Err(e) = dispatch(op, iters, made) {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
        _ => {
            // `cargo bench` passes `--bench`: list, do not measure.
            println!(
                "usage: callgrind <operation> <iterations> [<inputs>]; run through benches/callgrind.sh"
            );
            for op in operations() {
                println!("{op}");
            }
        }
    }
}
