//! `SessionRecord`: trial decryption over the current and archived
//! sessions (the one that works becomes current, a failure changes
//! nothing), the count and age limits, the unanswered-session rule, and
//! the pickle (round trip, unknown version, impossible states, redaction).

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use umbra_protocol::consts::{
    ARCHIVED_SESSION_MAX_AGE, MAX_PREVIOUS_SESSIONS, MAX_UNACKNOWLEDGED_SESSION_AGE,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseSession, PreKeyStore};
use umbra_protocol::pickle::{PickleError, PICKLE_VERSION};
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::ratchet::RatchetError;
use umbra_protocol::session_record::{SessionRecord, SessionRecordPickle};
use umbra_protocol::wire::{AccountId, Address};

const T0: u64 = 1_700_000_000;

struct Device {
    identity: IdentityKeyPair,
    address: Address,
    signed: SignedPreKey,
    one_time: HashMap<u32, OneTimePreKey>,
}

impl Device {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(&identity, 5, T0, rng);
        let one_time = (1..=8)
            .map(|id| (id, OneTimePreKey::generate(id, rng)))
            .collect();
        Device {
            identity,
            address: Address::primary(AccountId::random(rng)),
            signed,
            one_time,
        }
    }

    /// A bundle with one-time prekey `otk` (each session its own run).
    fn bundle(&self, otk: u32) -> PreKeyBundle {
        PreKeyBundle {
            identity: self.identity.public(),
            signed_prekey: self.signed.public(),
            one_time_prekey: Some(self.one_time[&otk].public()),
            last_resort: None,
            kem_one_time: None,
            kem_last_resort: None,
        }
    }

    fn initiate(&self, to: &Device, otk: u32, rng: &mut ChaCha20Rng) -> PairwiseSession {
        let bundle = to.bundle(otk).verify_classical().unwrap();
        PairwiseSession::initiate_classical(
            &self.identity,
            &self.address,
            &bundle,
            &to.address,
            rng,
        )
        .unwrap()
    }

    fn accept(&self, envelope: &[u8]) -> PairwiseSession {
        let inbound = self.open(envelope);
        PairwiseSession::accept_classical(&self.identity, &self.address, &inbound, self)
            .unwrap()
            .0
    }

    fn open(&self, envelope: &[u8]) -> InboundEnvelope {
        InboundEnvelope::open(&self.identity, envelope).unwrap()
    }
}

impl PreKeyStore for Device {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        match prekey {
            PreKeyRef::OneTime(id) => self.one_time.get(&id).map(|k| k.secret().clone()),
            PreKeyRef::LastResort(_) => None,
        }
    }
    // A classical fixture: no ML-KEM prekeys, so a hybrid message is an
    // unknown KEM prekey.
    fn kem_prekey(&self, _: KemPreKeyRef) -> Option<KemPreKey> {
        None
    }
}

fn seal(
    session: &mut PairwiseSession,
    from: &Device,
    text: &[u8],
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    session.seal_for(&from.identity, text, rng).unwrap()
}

fn bytes(record: &SessionRecord) -> Vec<u8> {
    record.to_pickle_bytes().to_vec()
}

/// Both start at once: bob's record holds the session he started
/// (archived) and the one alice started (current).
struct Crossed {
    rng: ChaCha20Rng,
    alice: Device,
    bob: Device,
    record: SessionRecord,
    /// Alice's side of the session bob started (she accepted it).
    alice_in_bobs_run: PairwiseSession,
    /// Alice's side of the session she started.
    alice_in_her_run: PairwiseSession,
}

fn crossed(seed: u64) -> Crossed {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    let mut bobs = bob.initiate(&alice, 1, &mut rng);
    let from_bob = seal(&mut bobs, &bob, b"bob first", &mut rng);
    let mut alices = alice.initiate(&bob, 1, &mut rng);
    let from_alice = seal(&mut alices, &alice, b"alice first", &mut rng);

    let mut record = SessionRecord::new(bobs, T0);
    let inbound = bob.open(&from_alice);
    assert!(matches!(
        record.decrypt(&inbound, T0),
        Err(PairwiseError::WrongSession)
    ));
    record.promote_new(bob.accept(&from_alice), T0);
    assert_eq!(record.archived_count(), 1);
    let alice_in_bobs_run = alice.accept(&from_bob);
    Crossed {
        rng,
        alice,
        bob,
        record,
        alice_in_bobs_run,
        alice_in_her_run: alices,
    }
}

#[test]
fn an_archived_session_that_decrypts_becomes_current() {
    let Crossed {
        mut rng,
        alice,
        bob,
        mut record,
        mut alice_in_bobs_run,
        ..
    } = crossed(1);
    let reply = seal(&mut alice_in_bobs_run, &alice, b"in your run", &mut rng);
    let plain = record.decrypt(&bob.open(&reply), T0 + 5).unwrap();
    assert_eq!(plain, b"in your run");
    assert_eq!(record.current_since(), T0 + 5, "promoted now");
    assert_eq!(record.archived_count(), 1, "the other run is archived");
    // Bob's sends now go over the run alice answered in: she reads them.
    let back = seal(record.current_mut(), &bob, b"converged", &mut rng);
    assert_eq!(
        alice_in_bobs_run.decrypt(&alice.open(&back)).unwrap(),
        b"converged"
    );
}

#[test]
fn a_failed_decryption_changes_nothing_not_even_expiry() {
    let Crossed {
        mut rng,
        alice,
        bob,
        mut record,
        mut alice_in_her_run,
        ..
    } = crossed(2);
    let good = seal(&mut alice_in_her_run, &alice, b"one", &mut rng);
    let mut tampered = seal(&mut alice_in_her_run, &alice, b"two", &mut rng);
    let before = bytes(&record);
    // A replay of an accepted pre-key message after the archive's age: the
    // archived session would be dropped by expiry, yet nothing may change.
    let late = T0 + ARCHIVED_SESSION_MAX_AGE.as_secs() + 1;
    assert!(record.decrypt(&bob.open(&good), T0).is_ok());
    let after_good = bytes(&record);
    assert_ne!(after_good, before);
    assert!(matches!(
        record.decrypt(&bob.open(&good), late),
        Err(PairwiseError::Ratchet(RatchetError::DuplicateMessage))
    ));
    assert_eq!(bytes(&record), after_good, "a replay changed the record");
    assert_eq!(record.archived_count(), 1);
    // A different ciphertext under the same header fails authentication in
    // every session; still nothing changes.
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    if let Ok(inbound) = InboundEnvelope::open(&bob.identity, &tampered) {
        assert!(record.decrypt(&inbound, late).is_err());
    }
    assert_eq!(bytes(&record), after_good);
}

#[test]
fn old_sessions_are_bounded_in_count_and_age() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    let mut record = SessionRecord::new(alice.initiate(&bob, 1, &mut rng), T0);
    for n in 0..(MAX_PREVIOUS_SESSIONS as u64 + 3) {
        record.promote_new(alice.initiate(&bob, 1, &mut rng), T0 + n);
        assert!(record.archived_count() <= MAX_PREVIOUS_SESSIONS);
    }
    assert_eq!(record.archived_count(), MAX_PREVIOUS_SESSIONS);
    let newest_archive = T0 + MAX_PREVIOUS_SESSIONS as u64 + 2;
    let max = ARCHIVED_SESSION_MAX_AGE.as_secs();
    record.expire(newest_archive + max - 1);
    assert_eq!(record.archived_count(), 1, "only the newest is younger");
    record.expire(newest_archive + max);
    assert_eq!(record.archived_count(), 0);
}

#[test]
fn an_unanswered_session_is_due_for_a_restart_only_after_the_limit() {
    let Crossed {
        mut rng,
        alice,
        bob,
        ..
    } = crossed(4);
    let record = SessionRecord::new(alice.initiate(&bob, 2, &mut rng), T0);
    let max = MAX_UNACKNOWLEDGED_SESSION_AGE.as_secs();
    assert!(!record.unanswered_too_long(T0 + max - 1));
    assert!(record.unanswered_too_long(T0 + max));
    // A session we accepted is never "unanswered".
    let mut theirs = bob.initiate(&alice, 2, &mut rng);
    let first = seal(&mut theirs, &bob, b"hi", &mut rng);
    let accepted = SessionRecord::new(alice.accept(&first), T0);
    assert!(!accepted.unanswered_too_long(T0 + 10 * max));
}

#[test]
fn a_pickle_round_trips_and_keeps_decrypting() {
    let Crossed {
        mut rng,
        alice,
        bob,
        record,
        mut alice_in_bobs_run,
        mut alice_in_her_run,
    } = crossed(5);
    let encoded = record.to_pickle_bytes();
    assert_eq!(encoded[0], PICKLE_VERSION);
    let mut loaded = SessionRecord::from_pickle_bytes(&encoded).unwrap();
    assert_eq!(bytes(&loaded), encoded.to_vec(), "pickling is stable");
    assert_eq!(loaded.archived_count(), 1);
    assert_eq!(loaded.current_since(), T0);
    let current = seal(&mut alice_in_her_run, &alice, b"current", &mut rng);
    assert_eq!(loaded.decrypt(&bob.open(&current), T0).unwrap(), b"current");
    let archived = seal(&mut alice_in_bobs_run, &alice, b"archived", &mut rng);
    assert_eq!(
        loaded.decrypt(&bob.open(&archived), T0).unwrap(),
        b"archived"
    );
}

#[test]
fn unknown_versions_and_impossible_pickles_are_named_errors() {
    let Crossed { record, .. } = crossed(6);
    let mut encoded = record.to_pickle_bytes().to_vec();
    assert!(matches!(
        SessionRecord::from_pickle_bytes(&[]),
        Err(PickleError::Empty)
    ));
    for version in [0x00, PICKLE_VERSION + 1, 0xff] {
        encoded[0] = version;
        assert_eq!(
            SessionRecordPickle::decode(&encoded).unwrap_err(),
            PickleError::UnknownVersion {
                found: version,
                supported: PICKLE_VERSION
            }
        );
    }
    encoded[0] = PICKLE_VERSION;
    let mut trailing = encoded.clone();
    trailing.push(0);
    assert!(matches!(
        SessionRecordPickle::decode(&trailing),
        Err(PickleError::Malformed(_))
    ));
    for cut in [1, 2, encoded.len() / 2, encoded.len() - 1] {
        assert!(
            SessionRecord::from_pickle_bytes(&encoded[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // More archived sessions than kept, forged from the layout
    // (docs/PROTOCOL.md §4.9): version || current || current_since ||
    // count || (session || archived_at)*.
    let mut rng = ChaCha20Rng::seed_from_u64(60);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    let mut full = SessionRecord::new(alice.initiate(&bob, 1, &mut rng), T0);
    for _ in 0..MAX_PREVIOUS_SESSIONS {
        full.promote_new(alice.initiate(&bob, 1, &mut rng), T0);
    }
    let full_bytes = full.to_pickle_bytes().to_vec();
    let current = full.current().pickle().encode()[1..].to_vec();
    let count_at = 1 + current.len() + varint(T0).len();
    assert_eq!(
        full_bytes[1..1 + current.len()],
        current[..],
        "current first"
    );
    assert_eq!(usize::from(full_bytes[count_at]), MAX_PREVIOUS_SESSIONS);
    let mut forged = full_bytes.clone();
    forged[count_at] += 1;
    forged.extend_from_slice(&current);
    forged.extend_from_slice(&varint(T0));
    assert_eq!(
        SessionRecord::from_pickle_bytes(&forged).unwrap_err(),
        PickleError::Invalid("more archived sessions than kept")
    );
    // The same bytes with the count left alone are one entry too long.
    forged[count_at] -= 1;
    assert!(matches!(
        SessionRecord::from_pickle_bytes(&forged),
        Err(PickleError::Malformed(_))
    ));
}

/// postcard's unsigned varint (LEB128).
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn pickles_and_records_never_show_secrets() {
    let Crossed { record, .. } = crossed(7);
    let pickle = record.pickle();
    let ratchet = record.current().ratchet();
    let mut secrets = vec![hex::encode(ratchet.root_key().as_bytes())];
    secrets.extend(ratchet.sending_chain().map(|c| hex::encode(c.as_bytes())));
    secrets.extend(ratchet.receiving_chain().map(|c| hex::encode(c.as_bytes())));
    assert!(secrets.len() >= 2, "bob's current session has received");
    for shown in [format!("{pickle:?}"), format!("{record:?}")] {
        for secret in &secrets {
            assert!(!shown.contains(&secret[..16]), "{shown}");
        }
        assert!(!shown.contains("root_key"), "{shown}");
    }
}
