//! Single-case tests of the Double Ratchet (the random interleavings are in
//! `ratchet_props.rs`): skip bounds checked before any derivation, low-order
//! keys, the version refusal, save/restore, `Debug`, cross-context use, and
//! transactional decryption.

mod ratchet_pair;

use ratchet_pair::{pair, restore, snapshot};
use umbra_protocol::group::{
    GroupId, GroupMessage, GroupReceiver, GroupSender, SignedDistribution,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::keys::PublicKey;
use umbra_protocol::ratchet::{
    Header, RatchetError, RatchetMessage, RatchetMessageError, MAX_SKIP,
};
use umbra_protocol::sealed;

/// A message whose header claims number `n` on Alice's current chain.
fn forged_with_number(genuine: &RatchetMessage, n: u32, pn: u32) -> RatchetMessage {
    RatchetMessage {
        header: Header {
            previous_chain_length: pn,
            message_number: n,
            ..genuine.header
        },
        ciphertext: genuine.ciphertext.clone(),
    }
}

#[test]
fn too_far_ahead_is_rejected_before_any_key_is_derived() {
    let (mut alice, mut bob, mut rng) = pair(7);
    let first = alice.encrypt(b"first", &mut rng).unwrap();
    let before = snapshot(&bob);

    // New chain (Bob has not received yet): n = MAX_SKIP + 1 is one too far.
    let far = forged_with_number(&first, MAX_SKIP + 1, 0);
    assert_eq!(
        bob.decrypt(&far),
        Err(RatchetError::TooFarAhead {
            skipped: u64::from(MAX_SKIP) + 1
        })
    );
    // n = u32::MAX has no chain key after it.
    let max = forged_with_number(&first, u32::MAX, 0);
    assert_eq!(
        bob.decrypt(&max),
        Err(RatchetError::MessageNumberOutOfRange)
    );
    assert_eq!(
        snapshot(&bob),
        before,
        "a rejected message changed the session"
    );

    // Current chain: after message 0, message 0 + 1 + MAX_SKIP + 1 is too far.
    assert_eq!(bob.decrypt(&first).unwrap(), b"first");
    let before = snapshot(&bob);
    let far = forged_with_number(&first, MAX_SKIP + 2, 0);
    assert_eq!(
        bob.decrypt(&far),
        Err(RatchetError::TooFarAhead {
            skipped: u64::from(MAX_SKIP) + 1
        })
    );
    assert_eq!(
        bob.decrypt(&forged_with_number(&first, u32::MAX, 0)),
        Err(RatchetError::MessageNumberOutOfRange)
    );
    assert_eq!(snapshot(&bob), before);
    assert_eq!(bob.skipped_key_count(), 0);
}

#[test]
fn previous_chain_length_is_bounded_too() {
    let (mut alice, mut bob, mut rng) = pair(8);
    let a0 = alice.encrypt(b"a0", &mut rng).unwrap();
    bob.decrypt(&a0).unwrap();
    let b0 = bob.encrypt(b"b0", &mut rng).unwrap();
    alice.decrypt(&b0).unwrap();
    let a1 = alice.encrypt(b"a1", &mut rng).unwrap();
    assert_eq!(a1.header.previous_chain_length, 1);
    let before = snapshot(&bob);
    // Claims Alice's previous chain had MAX_SKIP + 2 messages (Bob saw 1).
    let forged = forged_with_number(&a1, 0, MAX_SKIP + 2);
    assert_eq!(
        bob.decrypt(&forged),
        Err(RatchetError::TooFarAhead {
            skipped: u64::from(MAX_SKIP) + 1
        })
    );
    assert_eq!(snapshot(&bob), before);
    assert_eq!(bob.decrypt(&a1).unwrap(), b"a1");
}

#[test]
fn exactly_max_skip_ahead_decrypts_and_the_gap_arrives_later() {
    let (mut alice, mut bob, mut rng) = pair(9);
    let messages: Vec<_> = (0..=MAX_SKIP)
        .map(|i| alice.encrypt(&i.to_be_bytes(), &mut rng).unwrap())
        .collect();
    let last = messages.last().unwrap();
    assert_eq!(bob.decrypt(last).unwrap(), MAX_SKIP.to_be_bytes());
    assert_eq!(bob.skipped_key_count(), MAX_SKIP as usize);
    for (i, m) in messages.iter().enumerate().take(MAX_SKIP as usize).rev() {
        assert_eq!(bob.decrypt(m).unwrap(), (i as u32).to_be_bytes());
    }
    assert_eq!(bob.skipped_key_count(), 0);
    assert_eq!(bob.decrypt(last), Err(RatchetError::DuplicateMessage));
}

#[test]
fn low_order_ratchet_key_is_rejected_without_state_change() {
    let (mut alice, mut bob, mut rng) = pair(10);
    let genuine = alice.encrypt(b"hello", &mut rng).unwrap();
    let before = snapshot(&bob);
    for point in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        let mut forged = genuine.clone();
        forged.header.ratchet_key = PublicKey::from_bytes(point);
        assert!(matches!(
            bob.decrypt(&forged),
            Err(RatchetError::BadRatchetKey(_))
        ));
    }
    assert_eq!(snapshot(&bob), before);
    assert_eq!(bob.decrypt(&genuine).unwrap(), b"hello");
}

#[test]
fn a_version_1_message_is_refused_by_name() {
    let (mut alice, _bob, mut rng) = pair(10);
    let mut bytes = alice.encrypt(b"x", &mut rng).unwrap().to_bytes();
    assert_eq!(bytes[0], 0x02);
    bytes[0] = 0x01;
    assert_eq!(
        RatchetMessage::from_bytes(&bytes),
        Err(RatchetMessageError::UnsupportedVersion(0x01))
    );
}

#[test]
fn responder_cannot_send_before_receiving() {
    let (_alice, mut bob, mut rng) = pair(11);
    let before = snapshot(&bob);
    assert_eq!(
        bob.encrypt(b"x", &mut rng).unwrap_err(),
        RatchetError::NotReadyToSend
    );
    assert_eq!(snapshot(&bob), before);
}

#[test]
fn session_restored_mid_conversation_continues() {
    let (mut alice, mut bob, mut rng) = pair(12);
    let a0 = alice.encrypt(b"a0", &mut rng).unwrap();
    let a1 = alice.encrypt(b"a1", &mut rng).unwrap();
    bob.decrypt(&a1).unwrap(); // a0 is now a skipped key
    let b0 = bob.encrypt(b"b0", &mut rng).unwrap();
    let mut bob = restore(&snapshot(&bob));
    let mut alice = restore(&snapshot(&alice));
    assert_eq!(alice.decrypt(&b0).unwrap(), b"b0");
    assert_eq!(bob.decrypt(&a0).unwrap(), b"a0");
    let a2 = alice.encrypt(b"a2", &mut rng).unwrap();
    assert_eq!(bob.decrypt(&a2).unwrap(), b"a2");
}

#[test]
fn debug_output_shows_no_key_material() {
    let (mut alice, _bob, mut rng) = pair(13);
    alice.encrypt(b"x", &mut rng).unwrap();
    let shown = format!("{alice:?}");
    let root = hex::encode(alice.root_key().as_bytes());
    let chain = hex::encode(alice.sending_chain().unwrap().as_bytes());
    assert!(!shown.contains(&root) && !shown.contains(&chain), "{shown}");
    assert!(!format!("{:?}", alice.root_key()).contains(&root));
}

#[test]
fn ratchet_ciphertext_is_useless_in_other_contexts() {
    let (mut alice, mut bob, mut rng) = pair(14);
    let message = alice.encrypt(b"only for the ratchet", &mut rng).unwrap();
    let bytes = message.to_bytes();

    // As a sealed-sender envelope to either identity.
    let someone = IdentityKeyPair::generate(&mut rng);
    assert!(sealed::open(&someone, &bytes).is_err());

    // As a group message for a receiver of some sender key.
    let sender = GroupSender::generate(GroupId([0; 32]), 0, &mut rng);
    let dist = sender.distribution(&someone);
    let mut receiver = GroupReceiver::new(
        SignedDistribution::verify(dist.as_bytes(), &someone.public(), sender.group_id()).unwrap(),
    );
    if let Ok(m) = GroupMessage::from_bytes(&bytes) {
        assert!(receiver.decrypt_unsealed(&m).is_err());
    }
    assert_eq!(receiver.iteration(), 0);

    // As a ratchet message in a different session (other X3DH run).
    let (_other_alice, mut other_bob, _) = pair(15);
    assert_eq!(
        other_bob.decrypt(&message),
        Err(RatchetError::DecryptionFailed)
    );

    // And it still decrypts where it belongs.
    assert_eq!(bob.decrypt(&message).unwrap(), b"only for the ratchet");
}

#[test]
fn a_plaintext_refused_by_the_outer_layer_leaves_the_session_unchanged() {
    let (mut alice, mut bob, mut rng) = pair(16);
    let m0 = alice.encrypt(b"m0", &mut rng).unwrap();
    let m1 = alice.encrypt(b"m1", &mut rng).unwrap();
    for message in [&m1, &m0] {
        let before = snapshot(&bob);
        let refused: Result<(), RatchetError> =
            bob.decrypt_then(message, |_| Err(RatchetError::DecryptionFailed));
        assert!(refused.is_err());
        assert_eq!(snapshot(&bob), before);
        let accepted: Result<Vec<u8>, RatchetError> = bob.decrypt_then(message, Ok);
        assert_eq!(accepted.unwrap(), bob_expected(message, &m0));
    }
    assert_eq!(bob.skipped_key_count(), 0);
}

fn bob_expected(message: &RatchetMessage, m0: &RatchetMessage) -> Vec<u8> {
    if message == m0 {
        b"m0".to_vec()
    } else {
        b"m1".to_vec()
    }
}

/// §4.12 with §4.13: a typing notice that takes a *hybrid* sending step is
/// read by the peer's second, hybrid trial; the stored message after it on
/// the same chain names the mixed epoch and decrypts, and both braids have
/// moved on. Also: a new chain naming an epoch no secret is held for is
/// `UnknownPqEpoch` and changes nothing.
#[test]
fn a_notice_that_takes_the_hybrid_step_opens_and_the_chain_continues() {
    const TYPE: u8 = 0x03;
    let (mut alice, mut bob, mut rng) = pair(17);
    // Ping-pong until Alice holds her decapsulated secret for epoch 1.
    let mut turns = 0;
    while alice.pq_ready_secret().is_none() {
        let m = alice.encrypt(b"a", &mut rng).unwrap();
        bob.decrypt(&m).unwrap();
        if alice.pq_ready_secret().is_some() {
            break;
        }
        let r = bob.encrypt(b"b", &mut rng).unwrap();
        alice.decrypt(&r).unwrap();
        turns += 1;
        assert!(turns < 60, "epoch 1 never completed");
    }
    let (epoch, secret) = alice.pq_ready_secret().unwrap();
    assert_eq!(bob.pq_pending_secret(), Some((epoch, secret)));
    // Alice's sending step is due only if she received last; make it so.
    if alice.sending_index().is_some() {
        let r = bob.encrypt(b"b", &mut rng).unwrap();
        alice.decrypt(&r).unwrap();
    }
    assert_eq!(alice.sending_index(), None, "a sending step is due");

    let notice = alice
        .encrypt_ephemeral(TYPE, b"typing", 1, &mut rng)
        .unwrap();
    assert_eq!(
        alice.sending_pq_epoch(),
        epoch,
        "the notice's step mixed it"
    );
    assert_eq!(alice.pq_epochs().0, epoch + 1);
    let before = snapshot(&bob);
    assert_eq!(bob.decrypt_ephemeral(TYPE, &notice).unwrap(), b"typing");
    assert_eq!(snapshot(&bob), before, "a notice changes nothing");

    // A forged new chain naming a later epoch is refused, state unchanged.
    let m = alice.encrypt(b"after the notice", &mut rng).unwrap();
    assert_eq!(m.header.pq_epoch, epoch);
    let mut forged = m.clone();
    forged.header.pq_epoch = epoch + 1;
    assert_eq!(
        bob.decrypt(&forged),
        Err(RatchetError::UnknownPqEpoch { epoch: epoch + 1 })
    );
    let mut classical = m.clone();
    classical.header.pq_epoch = 0;
    assert_eq!(bob.decrypt(&classical), Err(RatchetError::DecryptionFailed));
    assert_eq!(snapshot(&bob), before);

    assert_eq!(bob.decrypt(&m).unwrap(), b"after the notice");
    assert_eq!(bob.pq_epochs().1, epoch + 1);
    assert_eq!(bob.pq_pending_secret(), None);
    assert_eq!(alice.root_key().as_bytes(), bob.root_key().as_bytes());
}
