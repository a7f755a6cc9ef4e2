//! Unit tests of the sender-key layer that need its private state (chain
//! keys, signing keys); the public-API tests live in protocol/tests.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::chain::{message_cipher, ChainKey};
use super::message::TAG_LEN;
use super::*;
use crate::identity::sign_labelled;
use crate::labels;
use rand::rngs::OsRng;

fn pair() -> (GroupSender, GroupReceiver) {
    let sender = GroupSender::generate([7; 16], &mut OsRng);
    let dist = SenderKeyDistribution::from_bytes(&sender.distribution().to_bytes()).unwrap();
    (sender, GroupReceiver::from_distribution(&dist))
}

#[test]
fn in_order_and_out_of_order_delivery() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    let m1 = s.encrypt(b"one").unwrap();
    let m2 = s.encrypt(b"two").unwrap();
    assert_eq!(r.decrypt(&m2).unwrap(), b"two");
    assert_eq!(r.skipped_len(), 2);
    assert_eq!(r.decrypt(&m0).unwrap(), b"zero");
    assert_eq!(r.decrypt(&m1).unwrap(), b"one");
    assert_eq!(r.skipped_len(), 0);
}

#[test]
fn replay_is_rejected_and_state_kept() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    r.decrypt(&m0).unwrap();
    assert_eq!(r.decrypt(&m0), Err(GroupError::Replay(0)));
    let m1 = s.encrypt(b"one").unwrap();
    assert_eq!(r.decrypt(&m1).unwrap(), b"one");
}

#[test]
fn tampering_fails_signature_without_state_change() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    for i in GROUP_HEADER_LEN..m0.len() {
        let mut bad = m0.clone();
        bad[i] ^= 1;
        assert_eq!(r.decrypt(&bad), Err(GroupError::BadSignature), "byte {i}");
    }
    assert_eq!(r.iteration(), 0);
    assert_eq!(r.decrypt(&m0).unwrap(), b"zero");
}

#[test]
fn too_far_ahead_is_refused() {
    let (mut s, mut r) = pair();
    for _ in 0..=MAX_SKIP {
        s.encrypt(b"x").unwrap();
    }
    let far = s.encrypt(b"far").unwrap();
    assert_eq!(
        r.decrypt(&far),
        Err(GroupError::TooFarAhead {
            current: 0,
            iteration: MAX_SKIP + 1
        })
    );
    assert_eq!(r.iteration(), 0);
}

#[test]
fn skipped_keys_are_bounded_and_oldest_evicted() {
    let (mut s, mut r) = pair();
    let total = 2 * MAX_SKIP as usize + 2;
    let msgs: Vec<_> = (0..total).map(|_| s.encrypt(b"x").unwrap()).collect();
    // Skips iterations 0..MAX_SKIP, then MAX_SKIP+1..2*MAX_SKIP+1.
    r.decrypt(&msgs[MAX_SKIP as usize]).unwrap();
    assert_eq!(r.skipped_len(), MAX_SKIP as usize);
    r.decrypt(&msgs[total - 1]).unwrap();
    assert_eq!(r.skipped_len(), MAX_SKIPPED_KEYS);
    // The oldest keys were evicted; the newest skipped ones remain.
    assert_eq!(r.decrypt(&msgs[0]), Err(GroupError::Replay(0)));
    assert_eq!(r.decrypt(&msgs[total - 2]).unwrap(), b"x");
}

#[test]
fn last_usable_iteration_is_u32_max_minus_one() {
    let (mut s, mut r) = pair();
    s.chain = ChainKey {
        key: [5; 32],
        iteration: u32::MAX - 1,
    };
    r.chain = s.chain.clone();
    let last = s.encrypt(b"last").unwrap();
    assert_eq!(
        GroupMessageHeader::parse(&last).unwrap().iteration,
        u32::MAX - 1
    );
    assert_eq!(s.encrypt(b"one more"), Err(GroupError::ChainExhausted));
    assert_eq!(s.iteration(), u32::MAX);
    assert_eq!(r.decrypt(&last).unwrap(), b"last");
    assert_eq!(r.iteration(), u32::MAX);
    assert_eq!(r.decrypt(&last), Err(GroupError::Replay(u32::MAX - 1)));
}

#[test]
fn iteration_u32_max_is_refused_after_the_signature_check() {
    // Built by hand (the sender never produces it) and signed with the
    // sender's key, so only the iteration check can refuse it.
    let (s, mut r) = pair();
    let header = GroupMessageHeader {
        distribution_id: s.distribution_id,
        chain_id: s.chain_id,
        iteration: u32::MAX,
    }
    .to_bytes();
    let msg = signed_message(&s, &header, &[0u8; TAG_LEN]);
    assert_eq!(r.decrypt(&msg), Err(GroupError::ChainExhausted));
    assert_eq!(r.iteration(), 0);
}

/// Signs `header || ciphertext` as the sender would, whatever the key
/// that made the ciphertext.
fn signed_message(s: &GroupSender, header: &[u8; GROUP_HEADER_LEN], ct: &[u8]) -> Vec<u8> {
    let mut msg = header.to_vec();
    msg.extend_from_slice(ct);
    let sig = sign_labelled(&s.signing, labels::GROUP_MESSAGE_SIGNATURE, &msg);
    msg.extend_from_slice(&sig.to_bytes());
    msg
}

#[test]
fn a_key_derived_under_any_other_label_does_not_decrypt() {
    // Right seed, right header, valid signature: only the label used to
    // expand the seed differs, so only domain separation can refuse it.
    let (s, mut r) = pair();
    let header = GroupMessageHeader {
        distribution_id: s.distribution_id,
        chain_id: s.chain_id,
        iteration: 0,
    }
    .to_bytes();
    let seed = s.chain.message_seed();
    let genuine = {
        let (cipher, nonce) = message_cipher(&seed, &header);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: b"hi",
                    aad: &header,
                },
            )
            .unwrap();
        signed_message(&s, &header, &ct)
    };
    for label in labels::ALL
        .iter()
        .filter(|l| **l != labels::GROUP_MESSAGE_KEY)
    {
        // Both shapes a context uses: `label || header` and `label` alone.
        for info in [&[*label, &header[..]][..], &[*label][..]] {
            let mut okm = [0u8; 44];
            Hkdf::<Sha256>::new(None, &seed.0)
                .expand_multi_info(info, &mut okm)
                .unwrap();
            let ct = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]))
                .encrypt(
                    Nonce::from_slice(&okm[32..]),
                    Payload {
                        msg: b"hi",
                        aad: &header,
                    },
                )
                .unwrap();
            let forged = signed_message(&s, &header, &ct);
            assert_eq!(
                r.decrypt(&forged),
                Err(GroupError::Undecryptable),
                "{}",
                String::from_utf8_lossy(label)
            );
        }
    }
    assert_eq!(r.iteration(), 0);
    assert_eq!(r.decrypt(&genuine).unwrap(), b"hi");
}

#[test]
fn debug_is_redacted() {
    let (s, r) = pair();
    let d = s.distribution();
    let seed = s.signing.to_bytes();
    for shown in [format!("{s:?}"), format!("{r:?}"), format!("{d:?}")] {
        for secret in [d.chain.key, seed] {
            assert!(!shown.contains(&hex::encode(secret)), "{shown}");
            assert!(!shown.contains(&hex::encode(&secret[..8])), "{shown}");
            assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
        }
    }
}

#[test]
fn state_serialization_roundtrip() {
    let (mut s, r) = pair();
    let stored_s = postcard::to_stdvec(&s).unwrap();
    let stored_r = postcard::to_stdvec(&r).unwrap();
    let m = s.encrypt(b"after").unwrap();
    let mut s2: GroupSender = postcard::from_bytes(&stored_s).unwrap();
    let mut r2: GroupReceiver = postcard::from_bytes(&stored_r).unwrap();
    assert_eq!(s2.encrypt(b"after").unwrap(), m);
    assert_eq!(r2.decrypt(&m).unwrap(), b"after");
}
