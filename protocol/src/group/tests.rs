//! Unit tests of the sender-key layer that need its private state (chain
//! keys, signing keys); the public-API and attack tests live in
//! protocol/tests (vectors_group.rs, attacks_group.rs).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use sha2::Sha256;

use super::chain::{message_cipher, ChainKey};
use super::*;
use crate::consts::{MAX_GROUP_SKIP, MAX_GROUP_SKIPPED_KEYS};
use crate::identity::{sign_labelled, IdentityKeyPair};
use crate::labels;
use crate::padding::pad;

const GROUP: GroupId = GroupId([7; 32]);

fn pair() -> (GroupSender, GroupReceiver) {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let sender = GroupSender::generate(GROUP, 5, &mut OsRng);
    let dist = sender.distribution(&identity);
    let verified = SignedDistribution::verify(dist.as_bytes(), &identity.public(), &GROUP).unwrap();
    (sender, GroupReceiver::new(verified))
}

fn dec(r: &mut GroupReceiver, m: &GroupMessage) -> Result<Vec<u8>, GroupError> {
    r.decrypt_message_for_tests(m)
}

impl GroupReceiver {
    fn decrypt_message_for_tests(&mut self, m: &GroupMessage) -> Result<Vec<u8>, GroupError> {
        // Same path as `decrypt` after its sealed-sender check.
        let bytes = m.as_bytes().to_vec();
        let parsed = GroupMessage::from_bytes(&bytes)?;
        assert_eq!(&parsed, m);
        self.decrypt_unsealed_inner(&parsed)
    }
}

#[test]
fn in_order_and_out_of_order_delivery() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    let m1 = s.encrypt(b"one").unwrap();
    let m2 = s.encrypt(b"two").unwrap();
    assert_eq!(dec(&mut r, &m2).unwrap(), b"two");
    assert_eq!(r.skipped_len(), 2);
    assert_eq!(dec(&mut r, &m0).unwrap(), b"zero");
    assert_eq!(dec(&mut r, &m1).unwrap(), b"one");
    assert_eq!(r.skipped_len(), 0);
}

#[test]
fn replay_is_rejected_and_state_kept() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    dec(&mut r, &m0).unwrap();
    assert_eq!(dec(&mut r, &m0), Err(GroupError::Replay(0)));
    let m1 = s.encrypt(b"one").unwrap();
    assert_eq!(dec(&mut r, &m1).unwrap(), b"one");
}

#[test]
fn tampering_fails_signature_without_state_change() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    for i in GROUP_HEADER_LEN..m0.as_bytes().len() {
        let mut bad = m0.as_bytes().to_vec();
        bad[i] ^= 1;
        let bad = GroupMessage::from_bytes(&bad).unwrap();
        assert_eq!(dec(&mut r, &bad), Err(GroupError::BadSignature), "byte {i}");
    }
    assert_eq!(r.iteration(), 0);
    assert_eq!(dec(&mut r, &m0).unwrap(), b"zero");
}

#[test]
fn header_fields_are_checked_before_the_signature() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    let with = |offset: usize| {
        let mut bad = m0.as_bytes().to_vec();
        bad[offset] ^= 1;
        GroupMessage::from_bytes(&bad).unwrap()
    };
    assert_eq!(dec(&mut r, &with(1)), Err(GroupError::WrongGroup));
    assert_eq!(
        dec(&mut r, &with(40)),
        Err(GroupError::WrongEpoch {
            expected: 5,
            got: 5 ^ 1
        })
    );
    assert!(matches!(
        dec(&mut r, &with(44)),
        Err(GroupError::WrongChain { .. })
    ));
    // The iteration is covered by the signature.
    assert_eq!(dec(&mut r, &with(48)), Err(GroupError::BadSignature));
    let mut v1 = m0.as_bytes().to_vec();
    v1[0] = 1;
    assert_eq!(
        GroupMessage::from_bytes(&v1),
        Err(GroupError::UnsupportedVersion(1))
    );
    assert_eq!(dec(&mut r, &m0).unwrap(), b"zero");
}

#[test]
fn too_far_ahead_is_refused() {
    let (mut s, mut r) = pair();
    for _ in 0..=MAX_GROUP_SKIP {
        s.encrypt(b"x").unwrap();
    }
    let far = s.encrypt(b"far").unwrap();
    assert_eq!(
        dec(&mut r, &far),
        Err(GroupError::TooFarAhead {
            current: 0,
            iteration: MAX_GROUP_SKIP + 1
        })
    );
    assert_eq!(r.iteration(), 0);
}

#[test]
fn skipped_keys_are_bounded_and_oldest_evicted() {
    let (mut s, mut r) = pair();
    let total = 2 * MAX_GROUP_SKIP as usize + 2;
    let msgs: Vec<_> = (0..total).map(|_| s.encrypt(b"x").unwrap()).collect();
    // Skips iterations 0..MAX_SKIP, then MAX_SKIP+1..2*MAX_SKIP+1.
    dec(&mut r, &msgs[MAX_GROUP_SKIP as usize]).unwrap();
    assert_eq!(r.skipped_len(), MAX_GROUP_SKIP as usize);
    dec(&mut r, &msgs[total - 1]).unwrap();
    assert_eq!(r.skipped_len(), MAX_GROUP_SKIPPED_KEYS);
    // The oldest keys were evicted; the newest skipped ones remain.
    assert_eq!(dec(&mut r, &msgs[0]), Err(GroupError::Replay(0)));
    assert_eq!(dec(&mut r, &msgs[total - 2]).unwrap(), b"x");
}

#[test]
fn last_usable_iteration_is_u32_max_minus_one() {
    let (mut s, mut r) = pair();
    s.chain = ChainKey {
        key: [5; 32],
        iteration: u32::MAX - 1,
    };
    r.chain = s.chain.clone();
    assert!(!s.needs_rotation(5));
    let last = s.encrypt(b"last").unwrap();
    assert_eq!(last.header().iteration, u32::MAX - 1);
    assert_eq!(s.encrypt(b"one more"), Err(GroupError::ChainExhausted));
    assert_eq!(s.iteration(), u32::MAX);
    assert!(s.needs_rotation(5));
    assert_eq!(dec(&mut r, &last).unwrap(), b"last");
    assert_eq!(r.iteration(), u32::MAX);
    assert_eq!(dec(&mut r, &last), Err(GroupError::Replay(u32::MAX - 1)));
}

/// Signs `header || ciphertext` as the sender would, whatever the key
/// that made the ciphertext.
fn signed_message(s: &GroupSender, header: &[u8; GROUP_HEADER_LEN], ct: &[u8]) -> GroupMessage {
    let mut msg = header.to_vec();
    msg.extend_from_slice(ct);
    let sig = sign_labelled(&s.signing, labels::GROUP_MESSAGE_SIGNATURE, &msg);
    msg.extend_from_slice(&sig.to_bytes());
    GroupMessage::from_bytes(&msg).unwrap()
}

fn header(s: &GroupSender, iteration: u32) -> [u8; GROUP_HEADER_LEN] {
    GroupMessageHeader {
        group_id: s.group_id,
        epoch: s.epoch,
        chain_id: s.chain_id,
        iteration,
    }
    .to_bytes()
}

#[test]
fn iteration_u32_max_is_refused_after_the_signature_check() {
    // Built by hand (the sender never produces it) and signed with the
    // sender's key, so only the iteration check can refuse it.
    let (s, mut r) = pair();
    let msg = signed_message(&s, &header(&s, u32::MAX), &[0u8; 16]);
    assert_eq!(dec(&mut r, &msg), Err(GroupError::ChainExhausted));
    assert_eq!(r.iteration(), 0);
}

#[test]
fn authenticated_but_badly_padded_plaintext_is_refused_without_state_change() {
    let (s, mut r) = pair();
    let h = header(&s, 0);
    let (cipher, nonce) = message_cipher(&s.chain.message_seed(), &h);
    let seal = |plaintext: &[u8]| {
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &h,
                },
            )
            .unwrap();
        signed_message(&s, &h, &ct)
    };
    // 100 bytes is not a bucket size.
    assert!(matches!(
        dec(&mut r, &seal(&[0x80; 100])),
        Err(GroupError::Padding(_))
    ));
    assert_eq!(r.iteration(), 0);
    assert_eq!(dec(&mut r, &seal(&pad(b"hi").unwrap())).unwrap(), b"hi");
}

#[test]
fn a_key_derived_under_any_other_label_does_not_decrypt() {
    // Right seed, right header, valid signature: only the label used to
    // expand the seed differs, so only domain separation can refuse it.
    let (s, mut r) = pair();
    let h = header(&s, 0);
    let seed = s.chain.message_seed();
    let padded = pad(b"hi").unwrap();
    let genuine = {
        let (cipher, nonce) = message_cipher(&seed, &h);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &padded,
                    aad: &h,
                },
            )
            .unwrap();
        signed_message(&s, &h, &ct)
    };
    for label in labels::ALL
        .iter()
        .filter(|l| **l != labels::GROUP_MESSAGE_KEY)
    {
        // Both shapes a context uses: `label || header` and `label` alone.
        for info in [&[*label, &h[..]][..], &[*label][..]] {
            let mut okm = [0u8; 44];
            Hkdf::<Sha256>::new(None, &seed.0)
                .expand_multi_info(info, &mut okm)
                .unwrap();
            let ct = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]))
                .encrypt(
                    Nonce::from_slice(&okm[32..]),
                    Payload {
                        msg: &padded,
                        aad: &h,
                    },
                )
                .unwrap();
            let forged = signed_message(&s, &h, &ct);
            assert_eq!(
                dec(&mut r, &forged),
                Err(GroupError::Undecryptable),
                "{}",
                String::from_utf8_lossy(label)
            );
        }
    }
    assert_eq!(r.iteration(), 0);
    assert_eq!(dec(&mut r, &genuine).unwrap(), b"hi");
}

#[test]
fn debug_is_redacted() {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let (s, r) = pair();
    let d = s.distribution(&identity);
    let v = SignedDistribution::verify(d.as_bytes(), &identity.public(), &GROUP).unwrap();
    let seed = s.signing.to_bytes();
    let chain = s.chain.key;
    let shown = [
        format!("{s:?}"),
        format!("{r:?}"),
        format!("{d:?}"),
        format!("{v:?}"),
        format!("{:?}", s.pickle()),
        format!("{:?}", r.pickle()),
    ];
    for shown in shown {
        for secret in [chain, seed] {
            assert!(!shown.contains(&hex::encode(secret)), "{shown}");
            assert!(!shown.contains(&hex::encode(&secret[..8])), "{shown}");
            assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
            assert!(!shown.contains(&format!("{:?}", &secret[..8])), "{shown}");
        }
    }
}

#[test]
fn pickles_round_trip_and_keep_working() {
    let (mut s, mut r) = pair();
    let m0 = s.encrypt(b"zero").unwrap();
    let m1 = s.encrypt(b"one").unwrap();
    dec(&mut r, &m1).unwrap();
    let stored_s = s.pickle().encode();
    let stored_r = r.pickle().encode();
    let m2 = s.encrypt(b"after").unwrap();
    let mut s2 = GroupSender::from_pickle(&GroupSenderPickle::decode(&stored_s).unwrap()).unwrap();
    let mut r2 =
        GroupReceiver::from_pickle(&GroupReceiverPickle::decode(&stored_r).unwrap()).unwrap();
    assert_eq!(s2.encrypt(b"after").unwrap(), m2);
    assert_eq!(dec(&mut r2, &m2).unwrap(), b"after");
    assert_eq!(dec(&mut r2, &m0).unwrap(), b"zero");
    assert_eq!(dec(&mut r2, &m1), Err(GroupError::Replay(1)));
    assert_eq!(r2.sender_identity(), r.sender_identity());
}

#[test]
fn receiver_pickles_that_break_a_bound_are_invalid() {
    let (mut s, mut r) = pair();
    let m = (0..3).map(|_| s.encrypt(b"x").unwrap()).last().unwrap();
    dec(&mut r, &m).unwrap();
    let mut p = r.pickle();
    p.skipped.swap(0, 1);
    assert!(matches!(
        GroupReceiver::from_pickle(&p),
        Err(crate::pickle::PickleError::Invalid(_))
    ));
    let mut p = r.pickle();
    p.skipped[1].iteration = 3;
    assert!(matches!(
        GroupReceiver::from_pickle(&p),
        Err(crate::pickle::PickleError::Invalid(_))
    ));
    // A y coordinate with no curve point: not a signing key.
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .unwrap();
    let mut p = r.pickle();
    p.signing_public = crate::pickle::Bytes(not_a_point);
    assert_eq!(
        GroupReceiver::from_pickle(&p).err(),
        Some(crate::pickle::PickleError::Invalid("group signing key"))
    );
}

#[test]
fn a_distribution_after_advance_to_opens_from_that_iteration_only() {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let mut sender = GroupSender::generate(GROUP, 5, &mut OsRng);
    let mut kept = GroupSender::from_pickle(&sender.pickle()).unwrap();
    let sent: Vec<GroupMessage> = (0..4u8).map(|i| sender.encrypt(&[i]).unwrap()).collect();
    kept.advance_to(2).unwrap();
    kept.advance_to(1).unwrap();
    assert_eq!(kept.iteration(), 2, "never moves back");
    let dist = kept.distribution(&identity);
    let verified = SignedDistribution::verify(dist.as_bytes(), &identity.public(), &GROUP).unwrap();
    let mut r = GroupReceiver::new(verified);
    assert!(dec(&mut r, &sent[1]).is_err(), "before the iteration");
    assert_eq!(dec(&mut r, &sent[2]).unwrap(), [2]);
    assert_eq!(dec(&mut r, &sent[3]).unwrap(), [3]);
}
