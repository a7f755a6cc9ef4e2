//! Set-up shared by the criterion bench (`protocol.rs`) and the
//! instruction-count harness (`callgrind.rs`): the same sessions, bundles
//! and accounts, so both measure exactly the same operations.

#![allow(dead_code)] // each bench target uses its own subset

use rand::rngs::OsRng;

use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey, VerifiedPreKeyBundle};
use umbra_protocol::ratchet::{RatchetMessage, Session};
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
    /// The one-time ML-KEM prekey of a hybrid bundle (unused classically).
    pub kem: KemPreKey,
}

/// A fresh responder and its verified classical bundle (X25519 one-time
/// prekey, no KEM prekey): the baseline the hybrid agreement is measured
/// beside. No umbra client starts such a session any more (PROTOCOL 1.4).
pub fn responder() -> (Responder, VerifiedPreKeyBundle) {
    responder_with(false)
}

/// A fresh responder and its verified hybrid bundle (X25519 and ML-KEM-768
/// one-time prekeys), what every umbra session starts from.
pub fn responder_hybrid() -> (Responder, VerifiedPreKeyBundle) {
    responder_with(true)
}

fn responder_with(kem: bool) -> (Responder, VerifiedPreKeyBundle) {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let signed = SignedPreKey::generate(&identity, 1, 1_700_000_000, &mut OsRng);
    let one_time = OneTimePreKey::generate(1, &mut OsRng);
    let kem_prekey = KemPreKey::generate(
        &identity,
        KemPreKeyKind::OneTime,
        1,
        1_700_000_000,
        &mut OsRng,
    );
    let bundle = PreKeyBundle {
        identity: identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: Some(one_time.public()),
        last_resort: None,
        kem_one_time: kem.then(|| kem_prekey.public()),
        kem_last_resort: None,
    };
    let bundle = if kem {
        bundle.verify()
    } else {
        bundle.verify_classical()
    }
    .expect("bundle verifies");
    (
        Responder {
            identity,
            signed,
            one_time,
            kem: kem_prekey,
        },
        bundle,
    )
}

/// [`umbra_key_agreement`] with PQXDH: the initiator also verifies the KEM
/// prekey (signature and FIPS 203 check) and encapsulates; the responder
/// decapsulates. What `key_agreement_both_sides/umbra_hybrid` measures.
pub fn umbra_key_agreement_hybrid(
    alice_id: &IdentityKeyPair,
    bob: &Responder,
    bundle: &VerifiedPreKeyBundle,
) -> Vec<u8> {
    let (_, mut bob_s, m) = hybrid_first_message(alice_id, bob, bundle);
    bob_s.decrypt(&m).unwrap()
}

/// Both sides of a PQXDH run and the initiator's first ratchet message,
/// not yet decrypted: the part [`umbra_key_agreement_hybrid`] and
/// [`umbra_pair`] share.
fn hybrid_first_message(
    alice_id: &IdentityKeyPair,
    bob: &Responder,
    bundle: &VerifiedPreKeyBundle,
) -> (Session, Session, RatchetMessage) {
    let (sa, initial) =
        x3dh::initiate_hybrid(alice_id, &ALICE_ADDR, bundle, &BOB_ADDR, &mut OsRng).unwrap();
    let mut alice = Session::new_initiator(&sa, bundle.signed_prekey().key, &mut OsRng).unwrap();
    let m = alice.encrypt(b"hello", &mut OsRng).unwrap();
    let sb = x3dh::respond_hybrid(
        &bob.identity,
        &BOB_ADDR,
        &ALICE_ADDR,
        bob.signed.secret(),
        Some(bob.one_time.secret()),
        bob.kem.keypair(),
        &initial,
    )
    .unwrap();
    let bob_s = Session::new_responder(&sb, bob.signed.secret().clone());
    (alice, bob_s, m)
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

/// Two umbra ratchet sessions, started hybrid as every umbra session is,
/// that have exchanged one message each way. Their ratchet runs the
/// post-quantum step (4.13) in every benchmark that uses them.
pub fn umbra_pair() -> (Session, Session) {
    let alice_id = IdentityKeyPair::generate(&mut OsRng);
    let (bob, bundle) = responder_hybrid();
    let (mut alice, mut bob_s, m) = hybrid_first_message(&alice_id, &bob, &bundle);
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
