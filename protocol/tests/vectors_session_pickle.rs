//! Test vectors for the stored form of a session record
//! (`docs/test-vectors/session_pickle.json`, docs/PROTOCOL.md §4.9).
//!
//! From fixed seeds: alice and bob start sessions with each other at the
//! same moment, so bob's record holds the session alice started (current)
//! and the one he started (archived). The file pins that record's pickle,
//! bob's identity, and the next message alice sends in each run. The test
//! loads the pickle *from the file*, decrypts both messages (the archived
//! run's message promotes it), and walks the pickle bytes with a reader
//! written from the §4.9 table alone, so the layout in the spec is the one
//! the code writes. Run once with UMBRA_REGENERATE_VECTORS=1 after a
//! deliberate change (see common/mod.rs).

mod common;

use std::collections::HashMap;

use common::{check_or_regenerate, committed, hex};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseSession, PreKeyStore};
use umbra_protocol::pickle::PICKLE_VERSION;
use umbra_protocol::prekeys::{KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey};
use umbra_protocol::session_record::SessionRecord;
use umbra_protocol::wire::{AccountId, Address};

const SEED: u64 = 0x5e55_1011;
const NOW: u64 = 1_700_000_000;

struct Device {
    identity: IdentityKeyPair,
    address: Address,
    signed: SignedPreKey,
    one_time: HashMap<u32, OneTimePreKey>,
}

impl Device {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(&identity, 5, NOW, rng);
        let one_time = HashMap::from([(1, OneTimePreKey::generate(1, rng))]);
        Device {
            identity,
            address: Address::primary(AccountId::random(rng)),
            signed,
            one_time,
        }
    }

    fn initiate(&self, to: &Device, rng: &mut ChaCha20Rng) -> PairwiseSession {
        let bundle = PreKeyBundle {
            identity: to.identity.public(),
            signed_prekey: to.signed.public(),
            one_time_prekey: Some(to.one_time[&1].public()),
            last_resort: None,
            kem_one_time: None,
            kem_last_resort: None,
        }
        .verify_classical()
        .unwrap();
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
        let inbound = InboundEnvelope::open(&self.identity, envelope).unwrap();
        PairwiseSession::accept_classical(&self.identity, &self.address, &inbound, self)
            .unwrap()
            .0
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

fn generate() -> Value {
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let alice = Device::new(&mut rng);
    let bob = Device::new(&mut rng);
    let mut bobs_run = bob.initiate(&alice, &mut rng);
    let from_bob = bobs_run
        .seal_for(&bob.identity, b"bob first", &mut rng)
        .unwrap();
    let mut alices_run = alice.initiate(&bob, &mut rng);
    let from_alice = alices_run
        .seal_for(&alice.identity, b"alice first", &mut rng)
        .unwrap();

    let mut record = SessionRecord::new(bobs_run, NOW);
    record.promote_new(bob.accept(&from_alice), NOW);
    let mut alice_in_bobs_run = alice.accept(&from_bob);

    let next = alices_run
        .seal_for(&alice.identity, b"next in alice's run", &mut rng)
        .unwrap();
    let archived = alice_in_bobs_run
        .seal_for(&alice.identity, b"next in bob's run", &mut rng)
        .unwrap();
    json!({
        "description": "bob's SessionRecord pickle after a simultaneous start (current: \
            alice's run, archived: his own), and alice's next message in each run",
        "seed": SEED,
        "now": NOW,
        "pickle_version": PICKLE_VERSION,
        "bob_identity_postcard": hex(postcard::to_stdvec(&bob.identity).unwrap()),
        "record_pickle": hex(record.to_pickle_bytes()),
        "next_message": {"envelope": hex(&next), "plaintext": "next in alice's run"},
        "archived_message": {"envelope": hex(&archived), "plaintext": "next in bob's run"},
    })
}

#[test]
fn session_pickle_vectors_match() {
    check_or_regenerate("session_pickle.json", &generate());
}

fn unhex(v: &Value) -> Vec<u8> {
    ::hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

#[test]
fn a_pickle_from_the_file_loads_and_decrypts_the_next_messages() {
    let file = committed("session_pickle.json");
    let bob: IdentityKeyPair =
        postcard::from_bytes(&unhex(&file["bob_identity_postcard"])).unwrap();
    let pickle = unhex(&file["record_pickle"]);
    let mut record = SessionRecord::from_pickle_bytes(&pickle).expect("the file's pickle loads");
    assert_eq!(record.archived_count(), 1);
    let now = file["now"].as_u64().unwrap();

    let next = InboundEnvelope::open(&bob, &unhex(&file["next_message"]["envelope"])).unwrap();
    let plain = record
        .decrypt(&next, now + 1)
        .expect("next message decrypts");
    assert_eq!(
        plain,
        file["next_message"]["plaintext"]
            .as_str()
            .unwrap()
            .as_bytes()
    );
    assert_eq!(
        record.current_since(),
        now,
        "the current run stayed current"
    );

    let archived =
        InboundEnvelope::open(&bob, &unhex(&file["archived_message"]["envelope"])).unwrap();
    let plain = record
        .decrypt(&archived, now + 2)
        .expect("archived run decrypts");
    assert_eq!(
        plain,
        file["archived_message"]["plaintext"]
            .as_str()
            .unwrap()
            .as_bytes()
    );
    assert_eq!(
        record.current_since(),
        now + 2,
        "the archived run was promoted"
    );
    assert_eq!(record.archived_count(), 1);
}

/// A reader for §4.9's layout, written from the spec table.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint too long")
    }
    /// A fixed-length byte string: varint length (must be `n`), bytes.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        assert_eq!(self.varint(), n as u64, "byte string length");
        self.take(n)
    }
    fn option(&mut self) -> bool {
        match self.take(1)[0] {
            0 => false,
            1 => true,
            other => panic!("option tag {other}"),
        }
    }
    fn seq<T>(&mut self, mut item: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.varint();
        (0..n).map(|_| item(self)).collect()
    }

    fn chain(&mut self) {
        self.bytes(32);
        self.varint();
    }
    fn epoch(&mut self) {
        self.bytes(32);
        self.bytes(32);
    }
    /// A postcard u8 or bool: one raw byte.
    fn raw(&mut self) -> u8 {
        self.take(1)[0]
    }
    /// RatchetPickle, format 2; returns the root key.
    fn ratchet(&mut self) -> Vec<u8> {
        assert_eq!(self.varint(), 0xffff_ffff, "format-2 marker");
        let ad_len = self.varint() as usize;
        self.take(ad_len);
        let root = self.bytes(32).to_vec();
        self.bytes(32); // our ratchet private key
        if self.option() {
            self.bytes(32);
        }
        for _ in 0..2 {
            if self.option() {
                self.chain();
            }
        }
        self.varint(); // previous_sending_length
        self.seq(|r| {
            r.bytes(32);
            r.bytes(32);
            r.bytes(12);
            r.varint();
            if r.option() {
                r.varint();
            }
        });
        self.seq(|r| {
            r.bytes(32);
        });
        if self.option() {
            self.epoch();
        }
        self.seq(Self::epoch);
        self.varint(); // sending_pq_epoch
        self.braids();
        root
    }
    /// The braids of §4.13 as §4.9 lays them out.
    fn braids(&mut self) {
        assert!(self.varint() >= 1, "own epoch");
        if self.option() {
            self.bytes(64); // KEM key pair seed
        }
        if self.option() {
            assert!(self.varint() < 1 << 9, "ciphertext chunks received");
            self.bytes(1088);
        }
        if self.option() {
            self.bytes(32); // decapsulated secret
        }
        assert!(self.raw() < 10, "next key chunk");
        assert!(self.varint() >= 1, "peer epoch");
        match self.varint() {
            0 => {
                if self.option() {
                    assert!(self.varint() < 1 << 10, "key chunks received");
                    self.bytes(1184);
                }
            }
            1 => {
                self.bytes(1184);
            }
            2 => {
                self.bytes(1088);
                self.bytes(32);
                assert!(self.raw() < 9, "next ciphertext chunk");
            }
            other => panic!("peer braid variant {other}"),
        }
        assert!(self.raw() <= 1, "turn");
    }
    fn address(&mut self) -> (Vec<u8>, u64) {
        (self.bytes(16).to_vec(), self.varint())
    }
    /// SessionPickle; returns the root key and the remote address.
    fn session(&mut self) -> (Vec<u8>, (Vec<u8>, u64)) {
        let root = self.ratchet();
        self.bytes(128);
        self.address();
        let remote = self.address();
        if self.option() {
            self.bytes(128);
            self.bytes(32);
            self.varint();
            if self.option() {
                assert!(self.varint() <= 1, "extra prekey variant");
                self.varint();
            }
        }
        if self.option() {
            self.bytes(32);
        }
        (root, remote)
    }
}

#[test]
fn the_pickle_layout_is_the_one_the_spec_gives() {
    let file = committed("session_pickle.json");
    let pickle = unhex(&file["record_pickle"]);
    let record = SessionRecord::from_pickle_bytes(&pickle).unwrap();
    let mut reader = Reader(&pickle);
    assert_eq!(reader.take(1), [PICKLE_VERSION]);
    let (root, remote) = reader.session();
    assert_eq!(
        reader.varint(),
        file["now"].as_u64().unwrap(),
        "current_since"
    );
    let archived = reader.seq(|r| {
        let session = r.session();
        (session, r.varint())
    });
    assert!(reader.0.is_empty(), "the layout accounts for every byte");
    assert_eq!(archived.len(), record.archived_count());
    let current = record.current();
    assert_eq!(root, current.ratchet().root_key().as_bytes());
    assert_eq!(remote.0, current.remote_address().account.as_bytes());
    assert_eq!(remote.1, u64::from(current.remote_address().device.0));
}

/// A record stored before the post-quantum step (RatchetPickle format 1,
/// §4.9) still loads, with fresh braids; its old-version messages are
/// refused by name; and it is written back as format 2, which loads again.
#[test]
fn a_format_1_pickle_loads_with_fresh_braids() {
    use umbra_protocol::pairwise::PairwiseError;
    use umbra_protocol::ratchet::RatchetMessageError;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/session_record_format1.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let old = unhex(&file["record_pickle"]);
    let record = SessionRecord::from_pickle_bytes(&old).expect("format 1 loads");
    assert_eq!(record.archived_count(), 1);
    assert_eq!(record.current().ratchet().pq_epochs(), (1, 1));
    assert_eq!(record.current().ratchet().sending_pq_epoch(), 0);
    let bob: IdentityKeyPair =
        postcard::from_bytes(&unhex(&file["bob_identity_postcard"])).unwrap();
    let refused =
        InboundEnvelope::open(&bob, &unhex(&file["next_message"]["envelope"])).unwrap_err();
    assert!(
        matches!(
            refused,
            PairwiseError::RatchetEncoding(RatchetMessageError::UnsupportedVersion(1))
        ),
        "{refused:?}"
    );
    let rewritten = record.to_pickle_bytes();
    assert_ne!(&rewritten[..], &old[..]);
    let mut reader = Reader(&rewritten);
    reader.take(1);
    let (root, _) = reader.session();
    assert_eq!(root, record.current().ratchet().root_key().as_bytes());
    let again = SessionRecord::from_pickle_bytes(&rewritten).expect("format 2 loads");
    assert_eq!(again.to_pickle_bytes(), rewritten);
}
