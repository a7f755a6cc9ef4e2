//! The attacker's kit shared by `attacks_agreement.rs` and
//! `attacks_sealed.rs`: fixed relay addresses, every low-order X25519
//! point, identities and signed prekeys built around a chosen DH key, and
//! an honest responder to attack.
//!
//! Must never: build a key through a path the attack under test would
//! bypass (each helper signs and encodes exactly as docs/PROTOCOL.md says).

// Each test crate that includes this module uses only some of the kit.
#![allow(dead_code)]

use rand::rngs::OsRng;
use umbra_protocol::group::{GroupReceiver, GroupSender, SignedDistribution};
use umbra_protocol::identity::{IdentityKeyPair, IdentityPublic};
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::keys::{PublicKey, SecretKey};
use umbra_protocol::labels;
use umbra_protocol::prekeys::{
    KemPreKeyRef, OneTimePreKey, PreKeyBundle, PreKeyRef, SignedPreKey, SignedPreKeyPublic,
};
use umbra_protocol::wire::{AccountId, Address, DeviceId};

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

pub fn low_order_points() -> Vec<[u8; 32]> {
    // The X25519 points of small order and their non-canonical encodings
    // (libsodium's `has_small_order` list), each also with bit 255 set,
    // which X25519 ignores (RFC 7748, section 5).
    let hexes = [
        // 0 (order 4) and 1 (order 1)
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        // the two points of order 8
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        // p - 1 (order 2), p (= 0), p + 1 (= 1)
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    let mut out = Vec::new();
    for h in hexes {
        let point: [u8; 32] = hex::decode(h).unwrap().try_into().unwrap();
        let mut high = point;
        high[31] |= 0x80;
        out.push(point);
        out.push(high);
    }
    // Every one of them must really be refused: a point silently dropped
    // from the list would turn the tests below into no-ops for it.
    let probe = SecretKey::generate(&mut OsRng);
    for p in &out {
        assert!(
            probe.diffie_hellman(&PublicKey::from_bytes(*p)).is_err(),
            "{} is accepted by X25519",
            hex::encode(p)
        );
    }
    out
}

/// A public identity whose (validly bound) X25519 key is `dh`, as a
/// malicious peer holding the signing key can make.
pub fn identity_with_dh(signer: &IdentityKeyPair, dh: [u8; 32]) -> IdentityPublic {
    let mut bytes = signer.public().to_bytes();
    bytes[32..64].copy_from_slice(&dh);
    let binding = signer.sign(labels::IDENTITY_BINDING, &dh);
    bytes[64..].copy_from_slice(&binding.to_bytes());
    let id = IdentityPublic::from_bytes(&bytes).unwrap();
    id.verify().unwrap();
    id
}

/// A signed prekey over an arbitrary public key (spec: u32be id ||
/// u64be created_at || key, signed under the signed-prekey label).
pub fn signed_prekey_for(signer: &IdentityKeyPair, id: u32, key: [u8; 32]) -> SignedPreKeyPublic {
    let mut msg = Vec::new();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&0u64.to_be_bytes());
    msg.extend_from_slice(&key);
    SignedPreKeyPublic {
        id,
        created_at: 0,
        key: PublicKey::from_bytes(key),
        signature: signer.sign(labels::SIGNED_PREKEY, &msg),
    }
}

pub struct Bob {
    pub identity: IdentityKeyPair,
    pub signed: SignedPreKey,
    pub one_time: OneTimePreKey,
    /// Signed ML-KEM prekeys (3.9): one-time id 7, last-resort id 8.
    pub kem_one_time: KemPreKey,
    pub kem_last_resort: KemPreKey,
}

pub fn bob() -> Bob {
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let signed = SignedPreKey::generate(&identity, 1, 0, &mut OsRng);
    let one_time = OneTimePreKey::generate(5, &mut OsRng);
    let kem_one_time = KemPreKey::generate(&identity, KemPreKeyKind::OneTime, 7, 0, &mut OsRng);
    let kem_last_resort =
        KemPreKey::generate(&identity, KemPreKeyKind::LastResort, 8, 0, &mut OsRng);
    Bob {
        identity,
        signed,
        one_time,
        kem_one_time,
        kem_last_resort,
    }
}

impl umbra_protocol::pairwise::PreKeyStore for Bob {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        (id == self.signed.id()).then(|| self.signed.secret().clone())
    }
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        (prekey == PreKeyRef::OneTime(self.one_time.id())).then(|| self.one_time.secret().clone())
    }
    fn kem_prekey(&self, prekey: KemPreKeyRef) -> Option<KemPreKey> {
        [&self.kem_one_time, &self.kem_last_resort]
            .into_iter()
            .find(|k| k.kind() == prekey.kind && k.id() == prekey.id)
            .cloned()
    }
}

/// Bob's full bundle as an honest relay serves it: X25519 one-time prekey
/// and both KEM prekeys.
pub fn bundle_of(b: &Bob) -> PreKeyBundle {
    PreKeyBundle {
        identity: b.identity.public(),
        signed_prekey: b.signed.public(),
        one_time_prekey: Some(b.one_time.public()),
        last_resort: None,
        kem_one_time: Some(b.kem_one_time.public()),
        kem_last_resort: Some(b.kem_last_resort.public()),
    }
}

/// A receiver of `sender`'s key as `owner` (its identity) distributes it.
pub fn group_receiver(owner: &IdentityKeyPair, sender: &GroupSender) -> GroupReceiver {
    let dist = sender.distribution(owner);
    GroupReceiver::new(
        SignedDistribution::verify(dist.as_bytes(), &owner.public(), sender.group_id()).unwrap(),
    )
}
