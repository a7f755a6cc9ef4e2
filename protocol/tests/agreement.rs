//! End-to-end behaviour of the agreement layer through the public API only:
//! bundles over the wire, X3DH both ways, sealed sender around it, padding
//! and safety numbers together (sender-key groups: tests/group.rs).

use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use umbra_protocol::fingerprint::SafetyNumber;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::padding::{pad, unpad};
use umbra_protocol::prekeys::{
    OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey, SIGNED_PREKEY_MAX_AGE_SECS,
};
use umbra_protocol::sealed::{open, seal};
use umbra_protocol::x3dh::{initiate, respond, InitialHeader};

use umbra_protocol::wire::{AccountId, Address, DeviceId};

/// Relay addresses that X3DH and sealed sender bind (fixed, arbitrary).
const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
/// The responder's relay address.
const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(1),
};

struct Device {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: Vec<OneTimePreKey>,
    last_resort: OneTimePreKey,
}

impl Device {
    fn new(now: u64) -> Self {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let signed = SignedPreKey::generate(&identity, 1, now, &mut OsRng);
        let one_time = (100..103)
            .map(|id| OneTimePreKey::generate(id, &mut OsRng))
            .collect();
        let last_resort = OneTimePreKey::generate(9999, &mut OsRng);
        Self {
            identity,
            signed,
            one_time,
            last_resort,
        }
    }

    /// What a relay would serve: one one-time key while any remain.
    fn served_bundle(&mut self) -> Vec<u8> {
        let one_time = if self.one_time.is_empty() {
            None
        } else {
            Some(self.one_time.remove(0).public())
        };
        let bundle = PreKeyBundle {
            identity: self.identity.public(),
            signed_prekey: self.signed.public(),
            one_time_prekey: one_time,
            last_resort: Some(self.last_resort.public()),
            kem_one_time: None,
            kem_last_resort: None,
        };
        postcard::to_stdvec(&bundle).unwrap()
    }
}

#[test]
fn x3dh_over_serialized_bundle_and_header() {
    let now = 1_700_000_000;
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mut bob = Device::new(now);
    let kept_one_time = bob.one_time.first().unwrap().secret().clone();

    let bundle: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    let verified = bundle.verify_classical_at(now + 60).unwrap();
    let (alice_secret, header) =
        initiate(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut OsRng).unwrap();
    assert_eq!(header.extra_prekey, Some(PreKeyRef::OneTime(100)));

    let header: InitialHeader =
        postcard::from_bytes(&postcard::to_stdvec(&header).unwrap()).unwrap();
    let bob_secret = respond(
        &bob.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        bob.signed.secret(),
        Some(&kept_one_time),
        &header,
    )
    .unwrap();
    assert_eq!(alice_secret.root_key(), bob_secret.root_key());
    assert_eq!(alice_secret.associated_data(), bob_secret.associated_data());
    // AD names the initiator first, then the responder, each identity
    // followed by its address (account id, u32be device id).
    let ad = alice_secret.associated_data();
    let mut expected = alice.public().to_bytes().to_vec();
    expected.extend_from_slice(ALICE_ADDR.account.as_bytes());
    expected.extend_from_slice(&ALICE_ADDR.device.0.to_be_bytes());
    expected.extend_from_slice(&bob.identity.public().to_bytes());
    expected.extend_from_slice(BOB_ADDR.account.as_bytes());
    expected.extend_from_slice(&BOB_ADDR.device.0.to_be_bytes());
    assert_eq!(&ad[ad.len() - expected.len()..], &expected[..]);
}

#[test]
fn last_resort_key_once_one_time_keys_run_out() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mut bob = Device::new(0);
    for _ in 0..3 {
        bob.served_bundle();
    }
    let bundle: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    let (sa, header) = initiate(
        &alice,
        &ALICE_ADDR,
        &bundle.verify_classical().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    assert_eq!(header.extra_prekey, Some(PreKeyRef::LastResort(9999)));
    let sb = respond(
        &bob.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        bob.signed.secret(),
        Some(bob.last_resort.secret()),
        &header,
    )
    .unwrap();
    assert_eq!(sa.root_key(), sb.root_key());
}

#[test]
fn two_initiators_get_unrelated_secrets() {
    let mut bob = Device::new(0);
    let a1 = IdentityKeyPair::generate(&mut OsRng);
    let a2 = IdentityKeyPair::generate(&mut OsRng);
    let b1: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    let b2: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    let (s1, _) = initiate(
        &a1,
        &ALICE_ADDR,
        &b1.verify_classical().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    let (s2, _) = initiate(
        &a2,
        &ALICE_ADDR,
        &b2.verify_classical().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();
    assert_ne!(s1.root_key(), s2.root_key());
}

#[test]
fn stale_signed_prekey_is_refused_by_initiator() {
    let mut bob = Device::new(1_000);
    let bundle: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    assert!(bundle
        .verify_at(1_000 + SIGNED_PREKEY_MAX_AGE_SECS + 1)
        .is_err());
}

#[test]
fn sealed_padded_message_names_the_session_peer() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let mut bob = Device::new(0);
    let bundle: PreKeyBundle = postcard::from_bytes(&bob.served_bundle()).unwrap();
    let (_, header) = initiate(
        &alice,
        &ALICE_ADDR,
        &bundle.verify_classical().unwrap(),
        &BOB_ADDR,
        &mut OsRng,
    )
    .unwrap();

    let padded = pad(b"hi bob").unwrap();
    let envelope = seal(
        &alice,
        &ALICE_ADDR,
        &bob.identity.public(),
        &padded,
        &mut OsRng,
    )
    .unwrap();
    let opened = open(&bob.identity, &envelope).unwrap();
    // The check the pairwise layer makes: sealed sender == X3DH initiator.
    assert!(bool::from(opened.sender.ct_eq(&header.initiator_identity)));
    assert_eq!(unpad(&opened.inner).unwrap(), b"hi bob");
}

#[test]
fn envelope_sizes_depend_only_on_bucket() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let short = seal(
        &alice,
        &ALICE_ADDR,
        &bob.public(),
        &pad(b"a").unwrap(),
        &mut OsRng,
    )
    .unwrap();
    let longer = seal(
        &alice,
        &ALICE_ADDR,
        &bob.public(),
        &pad(&[b'a'; 150]).unwrap(),
        &mut OsRng,
    )
    .unwrap();
    assert_eq!(short.len(), longer.len());
}

// Sender-key groups through the public API are in tests/group.rs.

#[test]
fn safety_number_agrees_on_both_devices() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let on_alice = SafetyNumber::compute(b"alice", &alice.public(), b"bob", &bob.public());
    let on_bob = SafetyNumber::compute(b"bob", &bob.public(), b"alice", &alice.public());
    assert_eq!(on_alice.display(), on_bob.display());
    assert!(bool::from(on_alice.ct_eq(&on_bob)));
}
