//! Test vectors for linking a device (docs/PROTOCOL.md §15.7,
//! `docs/test-vectors/link.json`).
//!
//! Every byte is built here by hand from §15.7: the keys with the hkdf
//! crate, the exchange with x25519-dalek, the messages with
//! chacha20poly1305's XChaCha20-Poly1305, the provisioning from its layout
//! table (and the snapshot pointer from 10.3's field order), never by the
//! library's `link` module; the library must produce exactly these bytes in
//! both directions and refuse every listed mutation with the listed error.
//!
//! Seeds (`ChaCha20Rng::from_seed`): the ticket is the first 16 bytes of
//! `[0x4c; 32]` (the relay's draw), the secret the first 32 of `[0x53; 32]`,
//! the joiner draws `e_J` then `n1` from `[0x4a; 32]`, the creator `e_C`
//! then `n2` from `[0x43; 32]`, the identity is `IdentityKeyPair::generate`
//! on `[0x49; 32]` (Ed25519 seed, then X25519 secret, §3.3). Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate change (see common/mod.rs).

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use common::{check_or_regenerate, hex};
use hkdf::Hkdf;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::Sha256;
use umbra_protocol::content::{FileKey, FilePointer, MessageId};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::link::{
    CreatorHandshake, JoinerHandshake, LinkCode, LinkError, LinkSecret, Provisioning,
};
use umbra_protocol::wire::{AccountId, LinkTicketId, Username};
use x25519_dalek::{PublicKey, StaticSecret};

const JOINER_KEY: &[u8] = b"umbra/v1/link/joiner-key";
const PROVISION_KEY: &[u8] = b"umbra/v1/link/provision-key";
const ACCOUNT: [u8; 16] = [0xa1; 16];
const USERNAME: &str = "alice";

fn draw<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

fn seal(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(nonce), Payload { msg, aad })
        .expect("seals")
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            return out;
        }
    }
}

/// The values both sides hold, drawn from the seeds of the module doc.
struct Draws {
    ticket: [u8; 16],
    secret: [u8; 32],
    e_j: [u8; 32],
    n1: [u8; 24],
    e_c: [u8; 32],
    n2: [u8; 24],
    ed_seed: [u8; 32],
    x_secret: [u8; 32],
}

fn draws() -> Draws {
    let mut joiner = ChaCha20Rng::from_seed([0x4a; 32]);
    let mut creator = ChaCha20Rng::from_seed([0x43; 32]);
    let mut identity = ChaCha20Rng::from_seed([0x49; 32]);
    Draws {
        ticket: draw(&mut ChaCha20Rng::from_seed([0x4c; 32])),
        secret: draw(&mut ChaCha20Rng::from_seed([0x53; 32])),
        e_j: draw(&mut joiner),
        n1: draw(&mut joiner),
        e_c: draw(&mut creator),
        n2: draw(&mut creator),
        ed_seed: draw(&mut identity),
        x_secret: draw(&mut identity),
    }
}

fn k_join(ticket: &[u8; 16], secret: &[u8; 32]) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(ticket), secret)
        .expand(JOINER_KEY, &mut key)
        .expect("32 bytes");
    key
}

/// msg1 sealing `e_j_pub` (any 32 bytes) under the code's key.
fn msg1(ticket: &[u8; 16], secret: &[u8; 32], n1: &[u8; 24], e_j_pub: &[u8; 32]) -> Vec<u8> {
    let aad = [&ticket[..], &[0x01]].concat();
    [
        &[0x01][..],
        n1,
        &seal(&k_join(ticket, secret), n1, &aad, e_j_pub),
    ]
    .concat()
}

/// The snapshot pointer of the full case, as 10.3's postcard fields.
fn pointer_bytes() -> Vec<u8> {
    let mut out = vec![0x10];
    out.extend_from_slice(&[0x11; 16]);
    out.extend(varint(32));
    out.extend_from_slice(&[0xb1; 32]);
    out.push(0x20);
    out.extend_from_slice(&[0x6b; 32]);
    out.push(0x20);
    out.extend_from_slice(&[0xd1; 32]);
    out.extend(varint(20_000));
    for text in ["umbra-link-snapshot", "application/octet-stream"] {
        out.extend(varint(text.len() as u64));
        out.extend_from_slice(text.as_bytes());
    }
    out
}

fn export_key() -> [u8; 64] {
    std::array::from_fn(|i| 0xe0 ^ i as u8)
}

/// The provisioning layout of §15.7, by hand.
fn provisioning_bytes(d: &Draws, full: bool) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&ACCOUNT);
    out.push(USERNAME.len() as u8);
    out.extend_from_slice(USERNAME.as_bytes());
    out.extend_from_slice(&d.ed_seed);
    out.extend_from_slice(&d.x_secret);
    if full {
        out.push(1);
        out.extend_from_slice(&export_key());
        out.push(1);
        let pointer = pointer_bytes();
        out.extend_from_slice(&(pointer.len() as u16).to_be_bytes());
        out.extend_from_slice(&pointer);
    } else {
        out.extend_from_slice(&[0, 0]);
    }
    out
}

fn library_provisioning(full: bool) -> Provisioning {
    Provisioning {
        account: AccountId::from_bytes(ACCOUNT),
        username: Username::parse(USERNAME).expect("valid"),
        identity: IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x49; 32])),
        export_key: full.then(|| zeroize::Zeroizing::new(export_key())),
        snapshot: full.then(|| FilePointer {
            id: MessageId([0x11; 16]),
            blob_id: vec![0xb1; 32],
            key: FileKey::from_bytes([0x6b; 32]),
            digest: [0xd1; 32],
            size: 20_000,
            file_name: "umbra-link-snapshot".to_owned(),
            content_type: "application/octet-stream".to_owned(),
        }),
    }
}

fn code(d: &Draws) -> LinkCode {
    LinkCode::from_parts(
        LinkTicketId::from_bytes(d.ticket),
        LinkSecret::from_bytes(d.secret),
    )
}

/// The error as the vectors name it: the variant with the fields the spec
/// defines; the variant alone where its detail is the library's wording.
fn named(error: &LinkError) -> String {
    let debug = format!("{error:?}");
    match error {
        LinkError::ProvisioningTruncated { .. }
        | LinkError::ProvisioningMalformed(_)
        | LinkError::ProvisioningUsername(_)
        | LinkError::ProvisioningSnapshot(_) => debug
            .split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_owned(),
        _ => debug,
    }
}

fn flip(bytes: &[u8], index: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= mask;
    out
}

#[test]
fn link_vectors() {
    let d = draws();
    let code = code(&d);
    // The code text: RFC 4648 base32 by hand (5-bit groups, MSB first).
    let code_bytes = [&d.ticket[..], &d.secret].concat();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let text: String = (0..77)
        .map(|i| {
            let bit = i * 5;
            let mut v = 0u32;
            for b in bit..bit + 5 {
                let byte = code_bytes.get(b / 8).copied().unwrap_or(0);
                v = (v << 1) | u32::from((byte >> (7 - b % 8)) & 1);
            }
            alphabet[v as usize] as char
        })
        .collect();
    assert_eq!(code.to_text().as_str(), text, "library text");
    let typed = format!(
        " {} ",
        text.to_ascii_uppercase()
            .as_bytes()
            .chunks(7)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join("-")
    );
    let parsed = LinkCode::parse(&typed).expect("a grouped upper-case code parses");
    assert_eq!(parsed.ticket().as_bytes(), &d.ticket);
    assert_eq!(parsed.secret().expose_secret(), &d.secret);

    let e_j_pub = PublicKey::from(&StaticSecret::from(d.e_j)).to_bytes();
    let e_c_pub = PublicKey::from(&StaticSecret::from(d.e_c)).to_bytes();
    let m1 = msg1(&d.ticket, &d.secret, &d.n1, &e_j_pub);
    let (_, library_m1) = JoinerHandshake::start(&code, &mut ChaCha20Rng::from_seed([0x4a; 32]));
    assert_eq!(library_m1, m1, "library msg1");

    let dh = StaticSecret::from(d.e_c).diffie_hellman(&PublicKey::from(e_j_pub));
    assert_eq!(
        dh.as_bytes(),
        StaticSecret::from(d.e_j)
            .diffie_hellman(&PublicKey::from(e_c_pub))
            .as_bytes()
    );
    let aad2 = [&d.ticket[..], &e_j_pub, &e_c_pub].concat();
    let mut k_prov = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&d.secret), dh.as_bytes())
        .expand(&[PROVISION_KEY, &aad2].concat(), &mut k_prov)
        .expect("32 bytes");

    let mut cases = Vec::new();
    for (name, full) in [("minimal", false), ("full", true)] {
        let plain = provisioning_bytes(&d, full);
        let m2 = [
            &[0x02][..],
            &e_c_pub,
            &d.n2,
            &seal(&k_prov, &d.n2, &aad2, &plain),
        ]
        .concat();
        let sent = library_provisioning(full);
        assert_eq!(
            sent.encode().as_slice(),
            plain,
            "{name}: library provisioning"
        );
        let library_m2 = CreatorHandshake::new(&code)
            .answer(&m1, &sent, &mut ChaCha20Rng::from_seed([0x43; 32]))
            .expect("answers");
        assert_eq!(library_m2, m2, "{name}: library msg2");
        let (joiner, _) = JoinerHandshake::start(&code, &mut ChaCha20Rng::from_seed([0x4a; 32]));
        let got = joiner.finish(&m2).expect("opens");
        assert_eq!(
            got.encode().as_slice(),
            plain,
            "{name}: opened provisioning"
        );
        assert_eq!(got.identity.public(), sent.identity.public());
        cases.push(json!({
            "name": name,
            "export_key": full.then(|| hex(export_key())),
            "snapshot": full.then(|| hex(pointer_bytes())),
            "provisioning": hex(&plain),
            "msg2": hex(&m2),
        }));
    }
    let good_m2 = [
        &[0x02][..],
        &e_c_pub,
        &d.n2,
        &seal(&k_prov, &d.n2, &aad2, &provisioning_bytes(&d, false)),
    ]
    .concat();

    // Refusals of the code text.
    let mut bad_end = text.clone().into_bytes();
    // The last character carries 4 bits and one unused bit, which must be 0.
    bad_end[76] = alphabet[alphabet
        .iter()
        .position(|&c| c == bad_end[76])
        .expect("base32")
        | 1];
    let mut bad_char = text.clone().into_bytes();
    bad_char[4] = b'1';
    let code_refusals: Vec<(String, &str)> = vec![
        (text[..76].to_owned(), "too short"),
        (format!("{text}a"), "too long"),
        (
            String::from_utf8(bad_char).expect("ascii"),
            "a 1 at position 5",
        ),
        (
            String::from_utf8(bad_end).expect("ascii"),
            "low bit of the last character",
        ),
    ];
    let mut code_refused = Vec::new();
    for (input, what) in code_refusals {
        let error = LinkCode::parse(&input).expect_err(what);
        code_refused.push(json!({"what": what, "text": input, "error": named(&error)}));
    }

    // Refusals of msg1 by the creator.
    let mut mistyped = d.secret;
    mistyped[31] ^= 0x01;
    let msg1_refusals = [
        (
            "under another secret",
            msg1(&d.ticket, &mistyped, &d.n1, &e_j_pub),
        ),
        (
            "all-zero e_J_pub",
            msg1(&d.ticket, &d.secret, &d.n1, &[0; 32]),
        ),
        ("tag flipped", flip(&m1, 72, 0x01)),
        ("type 0x02", flip(&m1, 0, 0x03)),
        ("72 bytes", m1[..72].to_vec()),
    ];
    let mut msg1_refused = Vec::new();
    for (what, bytes) in msg1_refusals {
        let error = CreatorHandshake::new(&code)
            .answer(
                &bytes,
                &library_provisioning(false),
                &mut ChaCha20Rng::from_seed([0x43; 32]),
            )
            .expect_err(what);
        msg1_refused.push(json!({"what": what, "msg1": hex(&bytes), "error": named(&error)}));
    }

    // Refusals of msg2 by the joiner (after msg1 of these seeds).
    let msg2_refusals = [
        ("top bit of e_C_pub flipped", flip(&good_m2, 32, 0x80)),
        ("ciphertext flipped", flip(&good_m2, 57, 0x01)),
        ("tag flipped", flip(&good_m2, good_m2.len() - 1, 0x01)),
        ("type 0x01", flip(&good_m2, 0, 0x03)),
        ("all-zero e_C_pub", {
            let mut b = good_m2.clone();
            b[1..33].fill(0);
            b
        }),
        ("72 bytes", good_m2[..72].to_vec()),
    ];
    let mut msg2_refused = Vec::new();
    for (what, bytes) in msg2_refusals {
        let (joiner, _) = JoinerHandshake::start(&code, &mut ChaCha20Rng::from_seed([0x4a; 32]));
        let error = joiner.finish(&bytes).expect_err(what);
        msg2_refused.push(json!({"what": what, "msg2": hex(&bytes), "error": named(&error)}));
    }

    // Refusals of the provisioning plaintext (authentic: sealed by 15.7 with
    // these seeds, so each reaches the decoder).
    let full = provisioning_bytes(&d, true);
    let export_flag = 1 + 16 + 1 + USERNAME.len() + 64;
    let pointer_at = export_flag + 1 + 64 + 1 + 2;
    let padded = {
        // 20 000 = varint a0 9c 01; with an empty group a0 9c 81 00.
        let pointer = pointer_bytes();
        let at = pointer
            .windows(3)
            .position(|w| w == [0xa0, 0x9c, 0x01])
            .expect("size varint");
        let mut p = pointer[..at].to_vec();
        p.extend_from_slice(&[0xa0, 0x9c, 0x81, 0x00]);
        p.extend_from_slice(&pointer[at + 3..]);
        let mut b = full[..pointer_at - 2].to_vec();
        b.extend_from_slice(&(p.len() as u16).to_be_bytes());
        b.extend_from_slice(&p);
        b
    };
    let provisioning_refusals: Vec<(&str, Vec<u8>)> = vec![
        ("a byte after the last field", [&full[..], &[0]].concat()),
        ("format 0x02", flip(&full, 0, 0x03)),
        ("export_key flag 0x02", flip(&full, export_flag, 0x03)),
        ("username length 2", flip(&full, 17, 0x07)),
        ("upper-case username", flip(&full, 18, 0x20)),
        ("cut in the snapshot", full[..full.len() - 1].to_vec()),
        ("padded varint in the pointer", padded),
        ("empty", Vec::new()),
    ];
    let mut provisioning_refused = Vec::new();
    for (what, plain) in provisioning_refusals {
        let error = Provisioning::decode(&plain).expect_err(what);
        // And through msg2, to the same error.
        let sealed = [
            &[0x02][..],
            &e_c_pub,
            &d.n2,
            &seal(&k_prov, &d.n2, &aad2, &plain),
        ]
        .concat();
        let (joiner, _) = JoinerHandshake::start(&code, &mut ChaCha20Rng::from_seed([0x4a; 32]));
        assert_eq!(joiner.finish(&sealed).expect_err(what), error, "{what}");
        provisioning_refused
            .push(json!({"what": what, "provisioning": hex(&plain), "error": named(&error)}));
    }

    let vectors: Value = json!({
        "seeds": {
            "ticket": "first 16 bytes of ChaCha20Rng::from_seed([0x4c; 32])",
            "secret": "first 32 bytes of ChaCha20Rng::from_seed([0x53; 32])",
            "joiner": "ChaCha20Rng::from_seed([0x4a; 32]): e_J (32), then n1 (24)",
            "creator": "ChaCha20Rng::from_seed([0x43; 32]): e_C (32), then n2 (24)",
            "identity": "IdentityKeyPair::generate(ChaCha20Rng::from_seed([0x49; 32])): ed25519_seed, then x25519_secret",
        },
        "labels": {
            "joiner_key": String::from_utf8_lossy(JOINER_KEY),
            "provision_key": String::from_utf8_lossy(PROVISION_KEY),
        },
        "ticket": hex(d.ticket),
        "secret": hex(d.secret),
        "code_text": text,
        "code_typed": typed,
        "e_j": hex(d.e_j),
        "e_j_pub": hex(e_j_pub),
        "n1": hex(d.n1),
        "k_join": hex(k_join(&d.ticket, &d.secret)),
        "msg1": hex(&m1),
        "e_c": hex(d.e_c),
        "e_c_pub": hex(e_c_pub),
        "n2": hex(d.n2),
        "dh": hex(dh.as_bytes()),
        "k_prov": hex(k_prov),
        "account": hex(ACCOUNT),
        "username": USERNAME,
        "ed25519_seed": hex(d.ed_seed),
        "x25519_secret": hex(d.x_secret),
        "cases": cases,
        "code_refusals": code_refused,
        "msg1_refusals": msg1_refused,
        "msg2_refusals": msg2_refused,
        "provisioning_refusals": provisioning_refused,
    });
    check_or_regenerate("link.json", &vectors);
}
