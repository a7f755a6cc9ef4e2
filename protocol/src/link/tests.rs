//! The link handshake's properties (docs/PROTOCOL.md §15.7): both sides
//! agree, every kind of wrong input is refused with the error naming it,
//! and nothing secret shows in `Debug`.

use rand::rngs::OsRng;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::content::{FileKey, FilePointer, MessageId};
use crate::identity::IdentityKeyPair;
use crate::wire::{AccountId, LinkTicketId, Username};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn code() -> LinkCode {
    LinkCode::from_parts(
        LinkTicketId::from_bytes([0x71; 16]),
        LinkSecret::from_bytes([0x5e; 32]),
    )
}

fn pointer() -> FilePointer {
    FilePointer {
        id: MessageId([0x11; 16]),
        blob_id: vec![0xb1; 32],
        key: FileKey::from_bytes([0x6b; 32]),
        digest: [0xd1; 32],
        size: 20_000,
        file_name: "snapshot".to_owned(),
        content_type: "application/octet-stream".to_owned(),
    }
}

fn provisioning(full: bool) -> Provisioning {
    Provisioning {
        account: AccountId::from_bytes([0xac; 16]),
        username: Username::parse("alice").unwrap(),
        identity: IdentityKeyPair::generate(&mut rng(9)),
        export_key: full.then(|| zeroize::Zeroizing::new([0xe4; 64])),
        snapshot: full.then(pointer),
    }
}

fn same(a: &Provisioning, b: &Provisioning) {
    assert_eq!(a.account, b.account);
    assert_eq!(a.username, b.username);
    assert_eq!(a.identity.public(), b.identity.public());
    assert_eq!(
        a.identity.dh_secret().to_bytes(),
        b.identity.dh_secret().to_bytes()
    );
    assert_eq!(
        a.export_key.as_deref().map(|k| k.to_vec()),
        b.export_key.as_deref().map(|k| k.to_vec())
    );
    assert_eq!(a.snapshot, b.snapshot);
}

#[test]
fn both_sides_agree_with_and_without_the_optional_parts() {
    for full in [false, true] {
        let shown = LinkCode::generate(LinkTicketId::random(&mut OsRng), &mut OsRng);
        let typed = LinkCode::parse(&shown.to_text()).unwrap();
        let (joiner, msg1) = JoinerHandshake::start(&typed, &mut OsRng);
        assert_eq!(msg1.len(), LINK_MSG1_LEN);
        let sent = provisioning(full);
        let msg2 = CreatorHandshake::new(&shown)
            .answer(&msg1, &sent, &mut OsRng)
            .unwrap();
        assert_eq!(msg2.len(), LINK_MSG2_MIN_LEN + sent.encode().len());
        same(&joiner.finish(&msg2).unwrap(), &sent);
    }
}

#[test]
fn a_mistyped_code_is_refused_by_the_creator() {
    let shown = code();
    let text = shown.to_text();
    for index in [0, 20, 40, 76] {
        let mut typed = text.as_bytes().to_vec();
        // Replace one character with another base32 character (for the
        // last one, one that keeps the unused trailing bit zero).
        typed[index] = match (index, typed[index]) {
            (76, b'a') => b'q',
            (76, _) => b'a',
            (_, b'a') => b'b',
            _ => b'a',
        };
        let typed = LinkCode::parse(std::str::from_utf8(&typed).unwrap()).unwrap();
        let (_, msg1) = JoinerHandshake::start(&typed, &mut OsRng);
        let refused = CreatorHandshake::new(&shown).answer(&msg1, &provisioning(false), &mut OsRng);
        assert_eq!(
            refused.unwrap_err(),
            LinkError::JoinerMessageRefused,
            "character {index}"
        );
    }
}

#[test]
fn a_msg1_under_another_secret_or_ticket_is_refused() {
    let shown = code();
    let other_secret = LinkCode::from_parts(shown.ticket(), LinkSecret::random(&mut OsRng));
    let other_ticket =
        LinkCode::from_parts(LinkTicketId::from_bytes([0x72; 16]), shown.secret().clone());
    for other in [other_secret, other_ticket] {
        let (_, msg1) = JoinerHandshake::start(&other, &mut OsRng);
        let refused = CreatorHandshake::new(&shown).answer(&msg1, &provisioning(false), &mut OsRng);
        assert_eq!(refused.unwrap_err(), LinkError::JoinerMessageRefused);
    }
}

#[test]
fn every_byte_of_msg1_is_authenticated_or_checked() {
    let shown = code();
    let (_, msg1) = JoinerHandshake::start(&shown, &mut rng(1));
    for index in 0..msg1.len() {
        let mut tampered = msg1.clone();
        tampered[index] ^= 0x01;
        let refused =
            CreatorHandshake::new(&shown).answer(&tampered, &provisioning(false), &mut OsRng);
        let expected = if index == 0 {
            LinkError::MessageType {
                message: 1,
                found: 0x00,
            }
        } else {
            LinkError::JoinerMessageRefused
        };
        assert_eq!(refused.unwrap_err(), expected, "byte {index}");
    }
    for len in [0, 1, LINK_MSG1_LEN - 1, LINK_MSG1_LEN + 1] {
        let mut resized = msg1.clone();
        resized.resize(len, 0);
        let refused =
            CreatorHandshake::new(&shown).answer(&resized, &provisioning(false), &mut OsRng);
        assert_eq!(
            refused.unwrap_err(),
            LinkError::MessageLength { message: 1, len }
        );
    }
}

#[test]
fn msg2_tampered_in_any_byte_is_refused() {
    let shown = code();
    let sent = provisioning(true);
    let (joiner, msg1) = JoinerHandshake::start(&shown, &mut rng(2));
    let msg2 = CreatorHandshake::new(&shown)
        .answer(&msg1, &sent, &mut rng(3))
        .unwrap();
    // The same joiner state, once per tampered byte.
    let joiner_again = || JoinerHandshake::start(&shown, &mut rng(2)).0;
    for index in 0..msg2.len() {
        let mut tampered = msg2.clone();
        tampered[index] ^= 0x80;
        let error = joiner_again().finish(&tampered).unwrap_err();
        let expected = if index == 0 {
            LinkError::MessageType {
                message: 2,
                found: 0x82,
            }
        } else {
            LinkError::CreatorMessageRefused
        };
        assert_eq!(error, expected, "byte {index}");
    }
    assert_eq!(
        joiner_again().finish(&msg2[..msg2.len() - 1]).unwrap_err(),
        LinkError::CreatorMessageRefused
    );
    assert_eq!(
        joiner_again()
            .finish(&msg2[..LINK_MSG2_MIN_LEN - 1])
            .unwrap_err(),
        LinkError::MessageLength {
            message: 2,
            len: LINK_MSG2_MIN_LEN - 1
        }
    );
    same(&joiner.finish(&msg2).unwrap(), &sent);
}

#[test]
fn a_msg2_for_another_joiner_is_refused() {
    let shown = code();
    let (_, msg1) = JoinerHandshake::start(&shown, &mut OsRng);
    let (other_joiner, _) = JoinerHandshake::start(&shown, &mut OsRng);
    let msg2 = CreatorHandshake::new(&shown)
        .answer(&msg1, &provisioning(false), &mut OsRng)
        .unwrap();
    assert_eq!(
        other_joiner.finish(&msg2).unwrap_err(),
        LinkError::CreatorMessageRefused
    );
}

/// msg1 sealing `public` under the code's key, as a hostile joiner that
/// knows the code would build it.
fn msg1_carrying(code: &LinkCode, public: [u8; 32]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, Payload};
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(
        Some(code.ticket().as_bytes()),
        code.secret().expose_secret(),
    )
    .expand(crate::labels::LINK_JOINER_KEY, &mut key)
    .unwrap();
    let nonce = [0x4e; 24];
    let mut aad = code.ticket().as_bytes().to_vec();
    aad.push(0x01);
    let sealed = XChaCha20Poly1305::new((&key).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &public,
                aad: &aad,
            },
        )
        .unwrap();
    [&[0x01][..], &nonce, &sealed].concat()
}

#[test]
fn an_all_zero_or_small_order_ephemeral_key_is_refused() {
    let shown = code();
    let mut one = [0u8; 32];
    one[0] = 1;
    for public in [[0u8; 32], one] {
        let msg1 = msg1_carrying(&shown, public);
        let refused = CreatorHandshake::new(&shown).answer(&msg1, &provisioning(false), &mut OsRng);
        assert_eq!(refused.unwrap_err(), LinkError::NonContributory);
    }
    // The joiner refuses an all-zero e_C_pub before it opens anything.
    let (joiner, _) = JoinerHandshake::start(&shown, &mut OsRng);
    let mut msg2 = vec![0x02];
    msg2.resize(LINK_MSG2_MIN_LEN + 40, 0);
    assert_eq!(
        joiner.finish(&msg2).unwrap_err(),
        LinkError::NonContributory
    );
    // And the genuine key of the helper above is accepted, so the refusals
    // are about the key, not the helper.
    let genuine = crate::keys::SecretKey::generate(&mut OsRng).public_key();
    let msg1 = msg1_carrying(&shown, *genuine.as_bytes());
    CreatorHandshake::new(&shown)
        .answer(&msg1, &provisioning(false), &mut OsRng)
        .unwrap();
}

#[test]
fn parse_folds_case_and_ignores_spaces_and_hyphens() {
    let shown = code();
    let text = shown.to_text();
    assert_eq!(text.len(), LINK_CODE_CHARS);
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
    let grouped: String = text
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(4)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect::<Vec<_>>()
        .join(" - ");
    let parsed = LinkCode::parse(&format!("  {grouped} ")).unwrap();
    assert_eq!(parsed.ticket(), shown.ticket());
    assert_eq!(
        parsed.secret().expose_secret(),
        shown.secret().expose_secret()
    );
    assert_eq!(parsed.to_text().as_str(), text.as_str());
}

#[test]
fn parse_refuses_wrong_lengths_and_characters_clearly() {
    let text = code().to_text();
    assert_eq!(
        LinkCode::parse(&text[..76]).unwrap_err(),
        LinkError::CodeLength { found: 76 }
    );
    assert_eq!(
        LinkCode::parse(&format!("{}a", text.as_str())).unwrap_err(),
        LinkError::CodeLength { found: 78 }
    );
    assert_eq!(
        LinkCode::parse("").unwrap_err(),
        LinkError::CodeLength { found: 0 }
    );
    for (index, bad) in [(0, "1"), (10, "8"), (30, "="), (50, "é"), (60, "\t")] {
        let mut typed: Vec<char> = text.chars().collect();
        typed[index] = bad.chars().next().unwrap();
        let typed: String = typed.into_iter().collect();
        assert_eq!(
            LinkCode::parse(&typed).unwrap_err(),
            LinkError::CodeCharacter {
                position: index + 1
            },
            "{bad:?} at {index}"
        );
    }
    // 77 characters carry 385 bits: the last one's low bit is never set.
    let mut typed = text.as_bytes().to_vec();
    typed[76] = if typed[76] == b'b' { b'd' } else { b'b' };
    assert_eq!(
        LinkCode::parse(std::str::from_utf8(&typed).unwrap()).unwrap_err(),
        LinkError::CodeEnding
    );
    // The messages say what to check and carry none of the code.
    let message = LinkError::CodeCharacter { position: 11 }.to_string();
    assert!(
        message.contains("character 11") && message.contains("2–7"),
        "{message}"
    );
}

#[test]
fn provisioning_round_trips_and_its_decoding_is_exact() {
    for full in [false, true] {
        let sent = provisioning(full);
        let encoded = sent.encode();
        assert_eq!(encoded[0], PROVISIONING_FORMAT);
        let decoded = Provisioning::decode(&encoded).unwrap();
        same(&decoded, &sent);
        assert_eq!(decoded.encode().as_slice(), encoded.as_slice());

        let mut trailing = encoded.to_vec();
        trailing.push(0);
        assert_eq!(
            Provisioning::decode(&trailing).unwrap_err(),
            LinkError::ProvisioningTrailing { extra: 1 }
        );
        let mut format = encoded.to_vec();
        format[0] = 0x02;
        assert_eq!(
            Provisioning::decode(&format).unwrap_err(),
            LinkError::ProvisioningFormat { found: 0x02 }
        );
        for len in 0..encoded.len() {
            assert!(
                matches!(
                    Provisioning::decode(&encoded[..len]).unwrap_err(),
                    LinkError::ProvisioningTruncated { .. } | LinkError::ProvisioningMalformed(_)
                ),
                "cut at {len}"
            );
        }
    }
}

#[test]
fn provisioning_refuses_bad_fields() {
    let encoded = provisioning(true).encode().to_vec();
    // 1 format, 16 account, 1 length, 5 "alice", 64 identity secrets.
    let export_flag = 1 + 16 + 1 + 5 + 64;
    let snapshot_flag = export_flag + 1 + 64;
    let mut bad = encoded.clone();
    bad[export_flag] = 2;
    assert_eq!(
        Provisioning::decode(&bad).unwrap_err(),
        LinkError::ProvisioningMalformed("a presence flag is neither 0x00 nor 0x01")
    );
    let mut upper = encoded.clone();
    upper[18] = b'A';
    assert!(matches!(
        Provisioning::decode(&upper).unwrap_err(),
        LinkError::ProvisioningUsername(_)
    ));
    let mut short = encoded.clone();
    short[17] = 2;
    assert_eq!(
        Provisioning::decode(&short).unwrap_err(),
        LinkError::ProvisioningMalformed("the username length is not 3 to 32")
    );
    // A pointer length one short leaves a byte over for the pointer's
    // decoder to refuse.
    let mut cut = encoded.clone();
    let len_at = snapshot_flag + 1;
    let len = u16::from_be_bytes([cut[len_at], cut[len_at + 1]]);
    cut[len_at..len_at + 2].copy_from_slice(&(len - 1).to_be_bytes());
    assert!(Provisioning::decode(&cut).is_err());
    // A pointer that breaks 10.4 is refused on both sides.
    let mut invalid = provisioning(true);
    if let Some(pointer) = invalid.snapshot.as_mut() {
        pointer.file_name = "../x".to_owned();
    }
    assert!(matches!(
        invalid.validate().unwrap_err(),
        LinkError::ProvisioningSnapshot(_)
    ));
    assert!(matches!(
        Provisioning::decode(&invalid.encode()).unwrap_err(),
        LinkError::ProvisioningSnapshot(_)
    ));
    let (_, msg1) = JoinerHandshake::start(&code(), &mut OsRng);
    assert!(matches!(
        CreatorHandshake::new(&code())
            .answer(&msg1, &invalid, &mut OsRng)
            .unwrap_err(),
        LinkError::ProvisioningSnapshot(_)
    ));
}

#[test]
fn a_padded_varint_in_the_snapshot_pointer_is_refused() {
    let encoded = provisioning(true).encode().to_vec();
    let pointer_at = 1 + 16 + 1 + 5 + 64 + 1 + 64 + 1 + 2;
    // The pointer's `size` (20 000, varint a0 9c 01) written with an empty
    // continuation group: a0 9c 81 00 reads as the same number.
    let pointer = &encoded[pointer_at..];
    let at = pointer
        .windows(3)
        .position(|w| w == [0xa0, 0x9c, 0x01])
        .unwrap();
    let mut padded = pointer[..at].to_vec();
    padded.extend_from_slice(&[0xa0, 0x9c, 0x81, 0x00]);
    padded.extend_from_slice(&pointer[at + 3..]);
    let mut bytes = encoded[..pointer_at - 2].to_vec();
    bytes.extend_from_slice(&(padded.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&padded);
    assert_eq!(
        Provisioning::decode(&bytes).unwrap_err(),
        LinkError::ProvisioningMalformed("the snapshot pointer is not in its canonical encoding")
    );
}

#[test]
fn debug_shows_no_secret() {
    let shown = code();
    let sent = provisioning(true);
    let (seed, dh) = sent.identity.secret_parts();
    let secrets: Vec<Vec<u8>> = vec![
        shown.secret().expose_secret().to_vec(),
        shown.ticket().as_bytes().to_vec(),
        seed.to_vec(),
        dh.to_vec(),
        vec![0xe4; 64],
        vec![0x6b; 32],
    ];
    let (joiner, _) = JoinerHandshake::start(&shown, &mut OsRng);
    let shown_text = shown.to_text();
    for debug in [
        format!("{shown:?}"),
        format!("{:?}", shown.secret()),
        format!("{sent:?}"),
        format!("{joiner:?}"),
        format!("{:?}", CreatorHandshake::new(&shown)),
    ] {
        assert!(!debug.contains(shown_text.as_str()), "{debug}");
        for secret in &secrets {
            assert!(!debug.contains(&hex::encode(secret)), "{debug}");
            assert!(!debug.contains(&format!("{secret:?}")), "{debug}");
            assert!(
                !debug.contains(&format!("{:?}", &secret[..4])[1..10]),
                "{debug}"
            );
        }
    }
    assert_eq!(format!("{shown:?}"), "LinkCode(<redacted>)");
    assert_eq!(format!("{:?}", shown.secret()), "LinkSecret(<redacted>)");
    assert!(format!("{sent:?}").contains("alice"));
}

/// The encoding is written into one buffer sized for the largest
/// provisioning, so it never reallocated (a reallocation frees a copy of
/// the identity secrets unwiped): its capacity is still the one reserved.
#[test]
fn provisioning_encoding_never_reallocates() {
    let encoded = provisioning(true).encode();
    assert!(
        encoded.len() > 256,
        "a full provisioning outgrew the old 256"
    );
    assert_eq!(encoded.capacity(), super::MAX_PROVISIONING_BYTES);
}
