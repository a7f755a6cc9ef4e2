//! §13 written out independently of the library, for the backup vectors
//! (`vectors_backup.rs`): raw HKDF for the key (13.2), the contents encoding
//! assembled byte by byte (13.4), sealing by hand (13.6), and the contents
//! encodings §13.4 says must be refused, each with its error.
//!
//! Must never: call the library's encoder or sealer (that is what it checks).

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::labels;
use umbra_protocol::wire::AccountId;

/// The nonce of the plaintexts sealed by hand (inner refusals only).
pub const FIXED_NONCE: [u8; 24] = [0x4e; 24];

pub fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

/// §13.4 by hand: version, section count, then (tag, length, body) each.
pub fn contents_by_hand(sections: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend(varint(sections.len() as u64));
    for (tag, body) in sections {
        out.extend(varint((*tag).into()));
        out.extend(varint(body.len() as u64));
        out.extend_from_slice(body);
    }
    out
}

/// §13.2 with raw HKDF.
pub fn raw_keys(export_key: &[u8], account: &AccountId) -> ([u8; 32], [u8; 16]) {
    let hk = Hkdf::<Sha256>::new(None, export_key);
    let (mut aead, mut check) = ([0u8; 32], [0u8; 16]);
    let info = |label: &[u8]| [label, &[1u8], account.as_bytes()].concat();
    hk.expand(&info(labels::BACKUP_AEAD_KEY), &mut aead)
        .unwrap();
    hk.expand(&info(labels::BACKUP_KEY_CHECK), &mut check)
        .unwrap();
    (aead, check)
}

/// §13.6 by hand, for plaintexts the library would never seal.
pub fn seal_by_hand(
    key: &[u8; 32],
    check: &[u8; 16],
    account: &AccountId,
    seq: u64,
    padded: &[u8],
) -> Vec<u8> {
    let mut buffer = padded.to_vec();
    let ad = [&[1u8][..], account.as_bytes(), &seq.to_be_bytes()].concat();
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(XNonce::from_slice(&FIXED_NONCE), &ad, &mut buffer)
        .unwrap();
    [
        &[1u8][..],
        &seq.to_be_bytes(),
        check,
        &FIXED_NONCE,
        &buffer,
        &tag,
    ]
    .concat()
}

/// `contents || 0x80 || zeros` to `len`, or no terminator.
pub fn padded(contents: &[u8], len: usize, terminator: bool) -> Vec<u8> {
    let mut out = contents.to_vec();
    if terminator {
        out.push(0x80);
    }
    out.resize(len, 0);
    out
}

/// The minimal contents (account, identity, written_at) by hand.
pub fn minimal_by_hand(
    account: &AccountId,
    identity: &IdentityKeyPair,
    written_at: u64,
) -> Vec<u8> {
    contents_by_hand(&[
        (1, [&[16u8][..], account.as_bytes()].concat()),
        (2, postcard::to_stdvec(identity).unwrap()),
        (3, varint(written_at)),
    ])
}

/// Contents encodings that must be refused: (what, bytes, error name).
pub fn contents_cases(
    account: &AccountId,
    identity: &IdentityKeyPair,
    written_at: u64,
) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let by_hand = minimal_by_hand(account, identity, written_at);
    let account = *account;
    let when_s = varint(written_at);
    let account_s = [&[16u8][..], account.as_bytes()].concat();
    let identity_s = postcard::to_stdvec(&identity).unwrap();
    let base = vec![
        (1, account_s.clone()),
        (2, identity_s.clone()),
        (3, when_s.clone()),
    ];
    let with = |extra: &[(u32, Vec<u8>)]| {
        let mut s = base.clone();
        s.extend_from_slice(extra);
        s
    };
    let contact = |username: &str| {
        [
            &[16u8][..],
            &[0x33; 16],
            &varint(username.len() as u64),
            username.as_bytes(),
            &[0x80, 0x01],
            &identity.public().to_bytes(),
            &[0],
        ]
        .concat()
    };
    let two_contacts = [&[2u8][..], &contact("bob")[..], &contact("bob")[..]].concat();
    vec![
        ("empty", vec![], "Malformed"),
        (
            "version 0",
            [&[0u8][..], &by_hand[1..]].concat(),
            "UnknownContentsVersion",
        ),
        ("trailing byte", [&by_hand[..], &[0]].concat(), "Malformed"),
        (
            "section 1 twice",
            contents_by_hand(&[
                base[0].clone(),
                base[0].clone(),
                base[1].clone(),
                base[2].clone(),
            ]),
            "Malformed",
        ),
        (
            "tag 0",
            contents_by_hand(&[
                (0, vec![]),
                base[0].clone(),
                base[1].clone(),
                base[2].clone(),
            ]),
            "Malformed",
        ),
        (
            "no identity section",
            contents_by_hand(&[base[0].clone(), base[2].clone()]),
            "Invalid",
        ),
        (
            "no written_at section",
            contents_by_hand(&[base[0].clone(), base[1].clone()]),
            "Invalid",
        ),
        (
            "account of 15 bytes",
            contents_by_hand(&[
                (1, [&[15u8][..], &account.as_bytes()[..15]].concat()),
                base[1].clone(),
                base[2].clone(),
            ]),
            "Malformed",
        ),
        (
            "empty contacts section",
            contents_by_hand(&with(&[(4, vec![0])])),
            "Malformed",
        ),
        (
            "one contact, trailing byte in its section",
            contents_by_hand(&with(&[(4, [&[1u8][..], &contact("bob"), &[0]].concat())])),
            "Malformed",
        ),
        (
            "upper-case username",
            contents_by_hand(&with(&[(4, [&[1u8][..], &contact("Bob")[..]].concat())])),
            "Malformed",
        ),
        (
            "the same contact twice",
            contents_by_hand(&with(&[(4, two_contacts)])),
            "Invalid",
        ),
        (
            "settings out of order",
            contents_by_hand(&with(&[(
                6,
                [&[2u8, 1, b'b', 0, 1, 1, b'a', 0, 0][..]].concat(),
            )])),
            "Invalid",
        ),
        (
            "setting name with '/'",
            contents_by_hand(&with(&[(6, vec![1, 1, b'/', 0, 1])])),
            "Invalid",
        ),
        (
            "unknown setting type 3",
            contents_by_hand(&with(&[(6, vec![1, 1, b'a', 3, 1])])),
            "Malformed",
        ),
        (
            "history then a tag below it",
            contents_by_hand(&with(&[(7, vec![0]), (6, vec![1, 1, b'a', 0, 1])])),
            "Malformed",
        ),
    ]
}
