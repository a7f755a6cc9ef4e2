//! Sender-key groups through the public API (docs/PROTOCOL.md §8.1–§8.6):
//! members, sealing per recipient, and the attacks the v2 format closes —
//! a distribution signed by someone else or for another group, a message
//! moved to another group or epoch, a member re-sending another member's
//! message as its own, hostile bytes — plus delivery-order properties.

use proptest::prelude::*;
use rand::rngs::OsRng;
use umbra_protocol::group::{
    GroupError, GroupId, GroupMessage, GroupReceiver, GroupReceiverPickle, GroupSender,
    GroupSenderPickle, SignedDistribution, GROUP_HEADER_LEN, GROUP_MESSAGE_VERSION,
    MAX_GROUP_INNER_LEN, MAX_GROUP_PAYLOAD, MIN_GROUP_MESSAGE_LEN,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, GROUP_MESSAGE_TYPE};
use umbra_protocol::sealed;
use umbra_protocol::sealed::SealedError;
use umbra_protocol::wire::{AccountId, Address, DeviceId};

struct Member {
    identity: IdentityKeyPair,
    address: Address,
}

fn member(n: u8) -> Member {
    Member {
        identity: IdentityKeyPair::generate(&mut OsRng),
        address: Address {
            account: AccountId::from_bytes([n; 16]),
            device: DeviceId(1),
        },
    }
}

/// `of`'s sender key as `at` verifies it (the distribution arrives over
/// their pairwise session, whose peer identity is `of`'s).
fn receiver_of(of: &Member, sender: &GroupSender) -> GroupReceiver {
    let d = sender.distribution(&of.identity);
    GroupReceiver::new(
        SignedDistribution::verify(d.as_bytes(), &of.identity.public(), sender.group_id()).unwrap(),
    )
}

fn seal(from: &Member, to: &Member, m: &GroupMessage) -> InboundEnvelope {
    let envelope = m
        .seal_to(
            &from.identity,
            &from.address,
            &to.identity.public(),
            &mut OsRng,
        )
        .unwrap();
    InboundEnvelope::open(&to.identity, &envelope).unwrap()
}

#[test]
fn three_members_each_read_the_others() {
    let group = GroupId::random(&mut OsRng);
    let members: Vec<Member> = (1..=3).map(member).collect();
    let mut senders: Vec<GroupSender> = (0..3)
        .map(|_| GroupSender::generate(group, 0, &mut OsRng))
        .collect();
    // receivers[i][j]: member i's receiver of member j, found by j's address.
    let mut receivers: Vec<Vec<Option<GroupReceiver>>> = (0..3)
        .map(|i| {
            (0..3)
                .map(|j| (i != j).then(|| receiver_of(&members[j], &senders[j])))
                .collect()
        })
        .collect();
    for round in 0..3u8 {
        for j in 0..3 {
            let text = [round, j as u8];
            let message = senders[j].encrypt(&text).unwrap();
            assert_eq!(message.header().iteration, u32::from(round));
            for i in (0..3).filter(|i| *i != j) {
                let inbound = seal(&members[j], &members[i], &message);
                let found = members
                    .iter()
                    .position(|m| &m.address == inbound.sender_address())
                    .unwrap();
                assert_eq!(inbound.group_message().unwrap().group_id(), &group);
                let r = receivers[i][found].as_mut().unwrap();
                assert_eq!(r.decrypt(&inbound).unwrap(), text, "member {i} from {j}");
            }
        }
    }
}

#[test]
fn late_member_reads_only_from_its_distribution_on() {
    let alice = member(1);
    let bob = member(2);
    let mut sender = GroupSender::generate(GroupId([1; 32]), 0, &mut OsRng);
    let early = sender.encrypt(b"before").unwrap();
    let mut late = receiver_of(&alice, &sender);
    let after = sender.encrypt(b"after").unwrap();
    // The key of iteration 0 was never handed to the late member.
    assert_eq!(
        late.decrypt(&seal(&alice, &bob, &early)),
        Err(GroupError::Replay(0))
    );
    assert_eq!(late.decrypt(&seal(&alice, &bob, &after)).unwrap(), b"after");
}

#[test]
fn a_distribution_signed_by_another_identity_is_refused() {
    let alice = member(1);
    let mallory = member(9);
    let group = GroupId([2; 32]);
    let sender = GroupSender::generate(group, 0, &mut OsRng);
    // Mallory signs a sender key and sends it over her own session, but
    // claims (in the pairwise channel of alice) it is alice's: the check
    // runs under alice's identity.
    let forged = sender.distribution(&mallory.identity);
    assert_eq!(
        SignedDistribution::verify(forged.as_bytes(), &alice.identity.public(), &group).err(),
        Some(GroupError::BadDistributionSignature)
    );
    // Alice's genuine one, forwarded by mallory over mallory's session.
    let genuine = sender.distribution(&alice.identity);
    assert_eq!(
        SignedDistribution::verify(genuine.as_bytes(), &mallory.identity.public(), &group).err(),
        Some(GroupError::BadDistributionSignature)
    );
    // Any single flipped bit of the signed part breaks it (or names another group).
    for i in 0..177 {
        let mut bad = genuine.as_bytes().to_vec();
        bad[i] ^= 0x01;
        let got = SignedDistribution::verify(&bad, &alice.identity.public(), &group).err();
        let expected = match i {
            0 => GroupError::UnsupportedVersion(0x03),
            1..=32 => GroupError::WrongGroup,
            _ => GroupError::BadDistributionSignature,
        };
        assert_eq!(got, Some(expected), "byte {i}");
    }
    assert!(
        SignedDistribution::verify(genuine.as_bytes(), &alice.identity.public(), &group).is_ok()
    );
}

#[test]
fn a_distribution_or_message_moves_to_no_other_group_or_epoch() {
    let alice = member(1);
    let bob = member(2);
    let group = GroupId([3; 32]);
    let other = GroupId([4; 32]);
    let mut sender = GroupSender::generate(group, 7, &mut OsRng);
    let d = sender.distribution(&alice.identity);
    // Carried in content that names another group.
    assert_eq!(
        SignedDistribution::verify(d.as_bytes(), &alice.identity.public(), &other).err(),
        Some(GroupError::WrongGroup)
    );
    // Re-labelled to the other group: the signature no longer verifies.
    let mut moved = d.as_bytes().to_vec();
    moved[1..33].copy_from_slice(&other.0);
    assert_eq!(
        SignedDistribution::verify(&moved, &alice.identity.public(), &other).err(),
        Some(GroupError::BadDistributionSignature)
    );
    let mut r = receiver_of(&alice, &sender);
    let m = sender.encrypt(b"for group 3, epoch 7").unwrap();
    let edit = |range: std::ops::Range<usize>, with: &[u8]| {
        let mut bytes = m.as_bytes().to_vec();
        bytes[range].copy_from_slice(with);
        GroupMessage::from_bytes(&bytes).unwrap()
    };
    let inbound = |msg: &GroupMessage| seal(&alice, &bob, msg);
    assert_eq!(
        r.decrypt(&inbound(&edit(1..33, &other.0))),
        Err(GroupError::WrongGroup)
    );
    assert_eq!(
        r.decrypt(&inbound(&edit(33..41, &8u64.to_be_bytes()))),
        Err(GroupError::WrongEpoch {
            expected: 7,
            got: 8
        })
    );
    // A receiver of a newer key of the same sender at epoch 8 does not take
    // an epoch-7 message either.
    let newer = GroupSender::generate(group, 8, &mut OsRng);
    let mut r8 = receiver_of(&alice, &newer);
    assert!(r.replaced_by(
        &SignedDistribution::verify(
            newer.distribution(&alice.identity).as_bytes(),
            &alice.identity.public(),
            &group
        )
        .unwrap()
    ));
    assert_eq!(
        r8.decrypt(&inbound(&m)),
        Err(GroupError::WrongEpoch {
            expected: 8,
            got: 7
        })
    );
    assert_eq!(r.decrypt(&inbound(&m)).unwrap(), b"for group 3, epoch 7");
}

#[test]
fn a_member_cannot_resend_another_members_message_as_its_own() {
    let alice = member(1);
    let bob = member(2);
    let mallory = member(9);
    let group = GroupId([5; 32]);
    let mut alice_key = GroupSender::generate(group, 0, &mut OsRng);
    let mallory_key = GroupSender::generate(group, 0, &mut OsRng);
    let mut bob_of_alice = receiver_of(&alice, &alice_key);
    let mut bob_of_mallory = receiver_of(&mallory, &mallory_key);

    let m = alice_key.encrypt(b"alice said this").unwrap();
    // Mallory re-seals alice's message under her own identity. Bob finds
    // the state by (group, mallory's address): mallory's chain.
    let resent = seal(&mallory, &bob, &m);
    assert_eq!(resent.sender_address(), &mallory.address);
    assert!(matches!(
        bob_of_mallory.decrypt(&resent),
        Err(GroupError::WrongChain { .. })
    ));
    // Had bob looked it up by the header alone (alice's chain), the sealed
    // identity check still refuses it.
    assert_eq!(bob_of_alice.decrypt(&resent), Err(GroupError::WrongSender));
    // Mallory's receiver forced onto alice's chain id (a collision) fails
    // the signature.
    let mut header_only = m.as_bytes().to_vec();
    header_only[41..45].copy_from_slice(&mallory_key.chain_id().to_be_bytes());
    let collided = GroupMessage::from_bytes(&header_only).unwrap();
    assert_eq!(
        bob_of_mallory.decrypt(&seal(&mallory, &bob, &collided)),
        Err(GroupError::BadSignature)
    );
    // Nothing was consumed: the genuine delivery still works.
    assert_eq!(bob_of_mallory.iteration(), 0);
    assert_eq!(
        bob_of_alice.decrypt(&seal(&alice, &bob, &m)).unwrap(),
        b"alice said this"
    );
}

#[test]
fn size_limits_are_typed_errors_before_sending() {
    let alice = member(1);
    let bob = member(2);
    let mut sender = GroupSender::generate(GroupId([6; 32]), 0, &mut OsRng);
    let mut r = receiver_of(&alice, &sender);
    assert_eq!(
        sender.encrypt(&vec![0; MAX_GROUP_PAYLOAD + 1]),
        Err(GroupError::PlaintextTooLong {
            len: MAX_GROUP_PAYLOAD + 1
        })
    );
    assert_eq!(sender.iteration(), 0, "a refused payload burns no key");
    let biggest = sender.encrypt(&vec![0x33; MAX_GROUP_PAYLOAD]).unwrap();
    assert_eq!(biggest.sealed_inner().len(), MAX_GROUP_INNER_LEN);
    const { assert!(MAX_GROUP_INNER_LEN <= sealed::MAX_INNER_LEN) };
    let inbound = seal(&alice, &bob, &biggest);
    assert_eq!(r.decrypt(&inbound).unwrap(), vec![0x33; MAX_GROUP_PAYLOAD]);

    // Truncated and oversized group messages are typed errors at decode.
    let small = sender.encrypt(b"x").unwrap();
    let bytes = small.as_bytes();
    for cut in [0, 1, GROUP_HEADER_LEN, MIN_GROUP_MESSAGE_LEN - 1] {
        assert_eq!(
            GroupMessage::from_bytes(&bytes[..cut]),
            Err(GroupError::BadMessageLength { len: cut })
        );
    }
    let mut long = biggest.as_bytes().to_vec();
    long.push(0);
    assert_eq!(
        GroupMessage::from_bytes(&long),
        Err(GroupError::BadMessageLength { len: long.len() })
    );
    // Inside a sealed envelope the same failures are PairwiseError::GroupEncoding.
    let mut inner = vec![GROUP_MESSAGE_TYPE];
    inner.extend_from_slice(&bytes[..GROUP_HEADER_LEN]);
    let envelope = sealed::seal(
        &alice.identity,
        &alice.address,
        &bob.identity.public(),
        &inner,
        &mut OsRng,
    )
    .unwrap();
    assert!(matches!(
        InboundEnvelope::open(&bob.identity, &envelope),
        Err(PairwiseError::GroupEncoding(GroupError::BadMessageLength {
            len: 49
        }))
    ));
    // A truncated message that still parses (signature cut short) fails
    // the signature, without touching the receiver.
    let cut = GroupMessage::from_bytes(&bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(
        r.decrypt(&seal(&alice, &bob, &cut)),
        Err(GroupError::BadSignature)
    );
    assert_eq!(r.decrypt(&seal(&alice, &bob, &small)).unwrap(), b"x");
}

#[test]
fn a_pairwise_envelope_is_not_a_group_message() {
    let alice = member(1);
    let bob = member(2);
    let sender = GroupSender::generate(GroupId([7; 32]), 0, &mut OsRng);
    let mut r = receiver_of(&alice, &sender);
    // A sealed envelope whose inner is an ephemeral-type message.
    let envelope = sealed::seal(
        &alice.identity,
        &alice.address,
        &bob.identity.public(),
        &[0x03; 80],
        &mut OsRng,
    )
    .unwrap();
    if let Ok(inbound) = InboundEnvelope::open(&bob.identity, &envelope) {
        assert_eq!(r.decrypt(&inbound), Err(GroupError::NotAGroupMessage));
    }
    assert_eq!(r.iteration(), 0);
}

#[test]
fn sealed_and_group_ciphertexts_do_not_cross() {
    let alice_m = member(1);
    let bob_m = member(2);
    let (alice, bob) = (&alice_m.identity, &bob_m.identity);
    let mut sender = GroupSender::generate(GroupId([3; 32]), 0, &mut OsRng);
    let mut receiver = receiver_of(&alice_m, &sender);

    let group_msg = sender.encrypt(&[0u8; 200]).unwrap();
    let group_bytes = group_msg.as_bytes();
    let envelope = sealed::seal(
        alice,
        &alice_m.address,
        &bob.public(),
        &[0u8; 300],
        &mut OsRng,
    )
    .unwrap();
    // Read as a group message, a sealed envelope is the wrong version (1,
    // not 2); with the version patched, the wrong group.
    assert_eq!(
        GroupMessage::from_bytes(&envelope),
        Err(GroupError::UnsupportedVersion(1))
    );
    let mut patched = envelope.clone();
    patched[0] = GROUP_MESSAGE_VERSION;
    assert_eq!(
        receiver.decrypt_unsealed(&GroupMessage::from_bytes(&patched).unwrap()),
        Err(GroupError::WrongGroup)
    );
    assert_eq!(
        sealed::open(bob, group_bytes),
        Err(SealedError::UnsupportedVersion(GROUP_MESSAGE_VERSION))
    );
    let mut patched = group_bytes.to_vec();
    patched[0] = sealed::SEALED_VERSION;
    assert_eq!(
        sealed::open(bob, &patched),
        Err(SealedError::SenderLayerUndecryptable)
    );
    // Even with the group header grafted on, a sealed body is refused.
    let mut grafted = group_bytes[..GROUP_HEADER_LEN].to_vec();
    grafted.extend_from_slice(&envelope[..envelope.len().min(300)]);
    let grafted = GroupMessage::from_bytes(&grafted).unwrap();
    assert_eq!(
        receiver.decrypt_unsealed(&grafted),
        Err(GroupError::BadSignature)
    );
    // (That a correctly signed group message whose key was derived under any
    // other label fails is `group::tests::a_key_derived_under_any_other_label_does_not_decrypt`.)
    // Both still work for their own context afterwards.
    assert_eq!(receiver.decrypt_unsealed(&group_msg).unwrap(), [0u8; 200]);
    assert_eq!(sealed::open(bob, &envelope).unwrap().inner, [0u8; 300]);
}

/// Delivery events: `(message index, duplicate?)` drawn over 12 messages.
fn deliveries() -> impl Strategy<Value = Vec<(usize, bool)>> {
    proptest::collection::vec((0usize..12, any::<bool>()), 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any order, with drops and duplicates: each message is read exactly
    /// once, a second copy is a `Replay`, and nothing else ever happens.
    #[test]
    fn any_delivery_order_reads_each_message_once(order in deliveries()) {
        let alice = member(1);
        let bob = member(2);
        let mut sender = GroupSender::generate(GroupId([8; 32]), 0, &mut OsRng);
        let mut r = receiver_of(&alice, &sender);
        let messages: Vec<_> = (0..12u8)
            .map(|i| seal(&alice, &bob, &sender.encrypt(&[i]).unwrap()))
            .collect();
        let mut read = [false; 12];
        for (i, twice) in order {
            for _ in 0..(1 + usize::from(twice)) {
                match r.decrypt(&messages[i]) {
                    Ok(payload) => {
                        prop_assert!(!read[i], "message {} read twice", i);
                        prop_assert_eq!(payload, vec![i as u8]);
                        read[i] = true;
                    }
                    Err(e) => {
                        prop_assert!(read[i], "unread message {} refused: {:?}", i, e);
                        prop_assert_eq!(e, GroupError::Replay(i as u32));
                    }
                }
            }
        }
        // Everything not yet read is still readable (dropped ones were only late).
        for (i, m) in messages.iter().enumerate().filter(|(i, _)| !read[*i]) {
            prop_assert_eq!(r.decrypt(m).unwrap(), vec![i as u8]);
        }
    }

    /// Hostile group bytes inside a genuine sealed envelope never panic and
    /// never change the receiver.
    #[test]
    fn hostile_group_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let alice = member(1);
        let bob = member(2);
        let sender = GroupSender::generate(GroupId([9; 32]), 0, &mut OsRng);
        let mut r = receiver_of(&alice, &sender);
        let mut inner = vec![GROUP_MESSAGE_TYPE];
        inner.extend_from_slice(&bytes);
        let envelope = sealed::seal(&alice.identity, &alice.address, &bob.identity.public(), &inner, &mut OsRng).unwrap();
        if let Ok(inbound) = InboundEnvelope::open(&bob.identity, &envelope) {
            prop_assert!(r.decrypt(&inbound).is_err());
        }
        let _ = SignedDistribution::verify(&bytes, &alice.identity.public(), &GroupId([9; 32]));
        prop_assert_eq!(r.iteration(), 0);
        prop_assert_eq!(r.skipped_len(), 0);
    }

    /// Storing and reloading both sides (pickles) at any point changes
    /// nothing: the same deliveries give the same results as without.
    #[test]
    fn pickles_are_transparent(order in deliveries(), reload_at in 0usize..30) {
        let alice = member(1);
        let bob = member(2);
        let mut sender = GroupSender::generate(GroupId([10; 32]), 3, &mut OsRng);
        let mut plain = receiver_of(&alice, &sender);
        let mut stored = GroupReceiver::from_pickle(
            &GroupReceiverPickle::decode(&plain.pickle().encode()).unwrap(),
        )
        .unwrap();
        let mut messages = Vec::new();
        for i in 0..12u8 {
            if usize::from(i) == reload_at % 12 {
                sender = GroupSender::from_pickle(
                    &GroupSenderPickle::decode(&sender.pickle().encode()).unwrap(),
                )
                .unwrap();
            }
            messages.push(seal(&alice, &bob, &sender.encrypt(&[i]).unwrap()));
        }
        for (step, (i, _)) in order.into_iter().enumerate() {
            if step == reload_at {
                stored = GroupReceiver::from_pickle(
                    &GroupReceiverPickle::decode(&stored.pickle().encode()).unwrap(),
                )
                .unwrap();
            }
            prop_assert_eq!(plain.decrypt(&messages[i]), stored.decrypt(&messages[i]));
        }
        prop_assert_eq!(plain.iteration(), stored.iteration());
        prop_assert_eq!(plain.skipped_len(), stored.skipped_len());
    }
}
