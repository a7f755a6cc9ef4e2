//! The two-party setup the ratchet test suites share: Alice and Bob after a
//! real X3DH run, and a session's pickle round trip.
//!
//! Must never: take a shortcut around X3DH (the sessions are the ones the
//! library makes for real peers).

#![allow(dead_code)] // each suite uses a part

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{PreKeyBundle, SignedPreKey};
use umbra_protocol::ratchet::{RatchetPickle, Session};
use umbra_protocol::wire::{AccountId, Address, DeviceId};
use umbra_protocol::x3dh;

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

/// Alice (initiator) and Bob (responder) after a real X3DH run.
pub fn pair(seed: u64) -> (Session, Session, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob_id, 1, 1_700_000_000, &mut rng);
    let bundle = PreKeyBundle {
        identity: bob_id.public(),
        signed_prekey: spk.public(),
        one_time_prekey: None,
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    }
    .verify_classical()
    .expect("bundle verifies");
    let (secret_a, initial) =
        x3dh::initiate(&alice_id, &ALICE_ADDR, &bundle, &BOB_ADDR, &mut rng).expect("initiate");
    let secret_b = x3dh::respond(
        &bob_id,
        &BOB_ADDR,
        &ALICE_ADDR,
        spk.secret(),
        None,
        &initial,
    )
    .expect("respond");
    let alice = Session::new_initiator(&secret_a, spk.public().key, &mut rng).expect("alice");
    let bob = Session::new_responder(&secret_b, spk.secret().clone());
    (alice, bob, rng)
}

pub fn snapshot(session: &Session) -> Vec<u8> {
    session.pickle().encode().to_vec()
}

pub fn restore(bytes: &[u8]) -> Session {
    Session::from_pickle(&RatchetPickle::decode(bytes).expect("pickle decodes"))
        .expect("pickle loads")
}
