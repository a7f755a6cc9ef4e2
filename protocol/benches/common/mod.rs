//! Set-up shared by the criterion bench (`protocol.rs`) and the
//! instruction-count harness (`callgrind.rs`): the same sessions, bundles
//! and accounts, so both measure exactly the same operations.

#![allow(dead_code)] // each bench target uses its own subset

use rand::rngs::OsRng;

use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey, VerifiedPreKeyBundle};
use umbra_protocol::ratchet::Session;
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh;

use vodozemac::olm::{Account, OlmMessage, Session as OlmSession, SessionConfig};

/// Relay addresses that X3DH and sealed sender bind (fixed, arbitrary).
pub const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
/// The responder's relay address.
pub const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(1),
};

/// The plaintext sizes of the steady-state benchmarks.
pub const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

/// A responder's private keys, as its device holds them.
pub struct Responder {
    pub identity: IdentityKeyPair,
    pub signed: SignedPreKey,
    pub one_time: OneTimePreKey,
}

/// A fresh responder and its verified bundle (with a one-time prekey).
pub fn responder() -> (Responder, VerifiedPreKeyBundle) {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let signed = SignedPreKey::generate(&identity, 1, 1_700_000_000, &mut OsRng);
    let one_time = OneTimePreKey::generate(1, &mut OsRng);
    let bundle = PreKeyBundle {
        identity: identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: Some(one_time.public()),
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .expect("bundle verifies");
    (
        Responder {
            identity,
            signed,
            one_time,
        },
        bundle,
    )
}

/// Both sides of a key agreement up to the decrypted first message: what
/// the `key_agreement_both_sides/umbra` benchmark measures.
pub fn umbra_key_agreement(
    alice_id: &IdentityKeyPair,
    bob: &Responder,
    bundle: &VerifiedPreKeyBundle,
) -> Vec<u8> {
    let (sa, initial) =
        x3dh::initiate(alice_id, &ALICE_ADDR, bundle, &BOB_ADDR, &mut OsRng).unwrap();
    let mut alice = Session::new_initiator(&sa, bundle.signed_prekey().key, &mut OsRng).unwrap();
    let m = alice.encrypt(b"hello", &mut OsRng).unwrap();
    let sb = x3dh::respond(
        &bob.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        bob.signed.secret(),
        Some(bob.one_time.secret()),
        &initial,
    )
    .unwrap();
    let mut bob_s = Session::new_responder(&sb, bob.signed.secret().clone());
    bob_s.decrypt(&m).unwrap()
}

/// Two umbra ratchet sessions that have exchanged one message each way.
pub fn umbra_pair() -> (Session, Session) {
    let alice_id = IdentityKeyPair::generate(&mut OsRng);
    let (bob, bundle) = responder();
    let (sa, initial) =
        x3dh::initiate(&alice_id, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut OsRng).unwrap();
    let sb = x3dh::respond(
        &bob.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        bob.signed.secret(),
        Some(bob.one_time.secret()),
        &initial,
    )
    .unwrap();
    let mut alice = Session::new_initiator(&sa, bundle.signed_prekey().key, &mut OsRng).unwrap();
    let mut bob_s = Session::new_responder(&sb, bob.signed.secret().clone());
    let m = alice.encrypt(b"hello", &mut OsRng).unwrap();
    bob_s.decrypt(&m).unwrap();
    let r = bob_s.encrypt(b"hi", &mut OsRng).unwrap();
    alice.decrypt(&r).unwrap();
    (alice, bob_s)
}

/// Two Olm accounts, the second with one published one-time key.
pub fn olm_accounts() -> (Account, Account, vodozemac::Curve25519PublicKey) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    (alice, bob, otk)
}

/// Both sides of an Olm session set-up up to the decrypted first message:
/// what `key_agreement_both_sides/vodozemac` measures.
pub fn olm_key_agreement(
    alice: &Account,
    bob: &mut Account,
    otk: vodozemac::Curve25519PublicKey,
) -> Vec<u8> {
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(pre) = a.encrypt(b"hello").unwrap() else {
        panic!("pre-key message expected")
    };
    bob.create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre)
        .unwrap()
        .plaintext
}

/// Two Olm sessions that have exchanged one message each way.
pub fn olm_pair() -> (OlmSession, OlmSession) {
    let (alice, mut bob, otk) = olm_accounts();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(pre) = a.encrypt(b"hello").unwrap() else {
        panic!("first Olm message is a pre-key message")
    };
    let mut b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre)
        .unwrap()
        .session;
    let r = b.encrypt(b"hi").unwrap();
    a.decrypt(&r).unwrap();
    (a, b)
}
