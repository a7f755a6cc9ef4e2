//! Fixed parties for the fuzz targets in `fuzz_targets/`: identities,
//! prekeys and sessions drawn from the same seeds as the test vectors in
//! docs/test-vectors/, so a seed-corpus entry taken from a vector reaches the
//! code behind the decoder (it opens, decrypts, verifies) instead of failing
//! at the first authentication check, and the fuzzer mutates from there.
//!
//! Everything here is built once per process (`OnceLock`) and cloned per
//! input: a target must never carry state from one input to the next, or a
//! crash would not reproduce from its input alone.
//!
//! Must never: use a real RNG (a crash must replay byte for byte), or be
//! linked into anything but the fuzz targets.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseSession, PreKeyStore};
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::wire::{AccountId, Address, DeviceId};

pub mod group;
pub mod opaque;

/// The hex string at `pointer` (RFC 6901, e.g. `/login/credential_request`)
/// of a vector file compiled into the target with `include_str!`.
#[allow(clippy::expect_used)] // A vector file without the field is a broken fuzz build.
pub fn vector_hex(json: &str, pointer: &str) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_str(json).expect("vector file parses");
    let text = json
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .expect("vector field is a string");
    hex::decode(text).expect("vector field is hex")
}

/// Fails the run if `left != right`: a decoder accepted bytes that its own
/// encoder writes differently, so the format has two encodings of one value.
#[track_caller]
pub fn assert_canonical(what: &str, input: &[u8], reencoded: &[u8]) {
    assert!(
        input == reencoded,
        "{what}: decoded value re-encodes to other bytes ({} in, {} out)",
        input.len(),
        reencoded.len()
    );
}

/// The recipient of `docs/test-vectors/sealed_sender.json` case 1 (seed 4:
/// the sender's identity is drawn first, then the recipient's), so that
/// case's envelope opens.
pub fn sealed_recipient() -> &'static IdentityKeyPair {
    static RECIPIENT: OnceLock<IdentityKeyPair> = OnceLock::new();
    RECIPIENT.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let _sender = IdentityKeyPair::generate(&mut rng);
        IdentityKeyPair::generate(&mut rng)
    })
}

/// Alice's and Bob's addresses in pairwise.json and x3dh.json.
pub const ALICE_ADDR: Address = Address {
    account: AccountId::from_bytes([0xa1; 16]),
    device: DeviceId(1),
};
/// See [`ALICE_ADDR`].
pub const BOB_ADDR: Address = Address {
    account: AccountId::from_bytes([0xb0; 16]),
    device: DeviceId(2),
};

/// Bob's private prekeys, looked up as the client's store would.
pub struct BobPreKeys {
    signed: SignedPreKey,
    one_time: OneTimePreKey,
}

impl PreKeyStore for BobPreKeys {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }

    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        match prekey {
            PreKeyRef::OneTime(id) if id == self.one_time.id() => {
                Some(self.one_time.secret().clone())
            }
            _ => None,
        }
    }
    // A classical fixture: no ML-KEM prekeys, so a hybrid message is an
    // unknown KEM prekey.
    fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
        None
    }
}

/// Session a of `docs/test-vectors/pairwise.json` (seed 1) as Bob holds it
/// when message e (Alice's first plain message) arrives: his prekeys (for
/// pre-key messages, like message a) and his session after accepting a and
/// sending c and d. Alice's identity seals every fuzzed inner message, so
/// the sealed layer authenticates it as Alice's and the ratchet sees it.
pub struct Pairwise {
    /// Alice's identity key pair (the sender of every fuzzed message).
    pub alice: IdentityKeyPair,
    /// Bob's identity key pair (the recipient).
    pub bob: IdentityKeyPair,
    /// Bob's private prekeys.
    pub prekeys: BobPreKeys,
    /// Bob's session with Alice before message e.
    pub bob_session: PairwiseSession,
}

/// The fixture of [`Pairwise`], built once. The draws follow
/// `protocol/tests/vectors_pairwise.rs` exactly, so the vector messages
/// decrypt against it.
pub fn pairwise() -> &'static Pairwise {
    static PAIRWISE: OnceLock<Pairwise> = OnceLock::new();
    PAIRWISE.get_or_init(build_pairwise)
}

#[allow(clippy::expect_used)] // A fixture that cannot be built is a broken fuzz build.
fn build_pairwise() -> Pairwise {
    let mut r = ChaCha20Rng::from_seed([1; 32]);
    let alice = IdentityKeyPair::generate(&mut r);
    let bob = IdentityKeyPair::generate(&mut r);
    let signed = SignedPreKey::generate(&bob, 42, 1_700_000_000, &mut r);
    let one_time = OneTimePreKey::generate(7, &mut r);
    let prekeys = BobPreKeys { signed, one_time };
    let bundle = PreKeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed.public(),
        one_time_prekey: Some(prekeys.one_time.public()),
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: None,
    };
    let verified = bundle.verify_classical().expect("fixture bundle verifies");
    let mut alice_session =
        PairwiseSession::initiate_classical(&alice, &ALICE_ADDR, &verified, &BOB_ADDR, &mut r)
            .expect("alice initiates");
    let first = alice_session
        .seal_for(&alice, b"hello via a one-time prekey", &mut r)
        .expect("alice seals a");
    let inbound = InboundEnvelope::open(&bob, &first).expect("bob opens a");
    let (mut bob_session, _, _) =
        PairwiseSession::accept_classical(&bob, &BOB_ADDR, &inbound, &prekeys)
            .expect("bob accepts a");
    for reply in [&b"got it"[..], b"and a second plain message"] {
        let envelope = bob_session
            .seal_for(&bob, reply, &mut r)
            .expect("bob seals c, d");
        let inbound = InboundEnvelope::open(&alice, &envelope).expect("alice opens c, d");
        alice_session.decrypt(&inbound).expect("alice reads c, d");
    }
    Pairwise {
        alice,
        bob,
        prekeys,
        bob_session,
    }
}

/// A fresh deterministic RNG for one input (for sealing fuzzed bytes).
pub fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0x5e; 32])
}
