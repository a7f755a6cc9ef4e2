//! Unit tests of the classical and hybrid agreement (both in this module
//! tree); behaviour through the public API is in protocol/tests/agreement.rs.

use super::*;
use crate::kem::KemKeyPair;
use crate::kem_prekeys::{kem_prekey_message, KemPreKeyKind, KemPreKeyPublic};
use crate::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey};
use crate::wire::{AccountId, DeviceId};
use rand::rngs::OsRng;

fn addr(byte: u8) -> Address {
    Address {
        account: AccountId::from_bytes([byte; 16]),
        device: DeviceId::PRIMARY,
    }
}

struct Responder {
    id: IdentityKeyPair,
    spk: SignedPreKey,
    otk: OneTimePreKey,
    kem_otk: KemKeyPair,
    kem_lr: KemKeyPair,
}

fn responder() -> Responder {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let spk = SignedPreKey::generate(&id, 1, 0, &mut OsRng);
    let otk = OneTimePreKey::generate(9, &mut OsRng);
    Responder {
        id,
        spk,
        otk,
        kem_otk: KemKeyPair::generate(&mut OsRng),
        kem_lr: KemKeyPair::generate(&mut OsRng),
    }
}

/// A KEM prekey public half signed as 3.9 says (kind, id, time, key).
pub(super) fn signed_kem(
    id: &IdentityKeyPair,
    kind: KemPreKeyKind,
    kem_id: u32,
    pair: &KemKeyPair,
) -> KemPreKeyPublic {
    let msg = kem_prekey_message(kind, kem_id, 0, pair.public().as_bytes());
    KemPreKeyPublic {
        kind,
        id: kem_id,
        created_at: 0,
        key: Box::new(*pair.public().as_bytes()),
        signature: id.sign(labels::KEM_PREKEY, &msg),
    }
}

fn full_bundle(r: &Responder, with_otk: bool, with_kem_otk: bool) -> PreKeyBundle {
    PreKeyBundle {
        identity: r.id.public(),
        signed_prekey: r.spk.public(),
        one_time_prekey: with_otk.then(|| r.otk.public()),
        last_resort: None,
        kem_one_time: with_kem_otk
            .then(|| signed_kem(&r.id, KemPreKeyKind::OneTime, 40, &r.kem_otk)),
        kem_last_resort: Some(signed_kem(&r.id, KemPreKeyKind::LastResort, 41, &r.kem_lr)),
    }
}

fn bundle(r: &Responder, with_otk: bool) -> VerifiedPreKeyBundle {
    full_bundle(r, with_otk, true).verify().unwrap()
}

#[test]
fn both_sides_agree_with_and_without_extra_prekey() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    for with_otk in [true, false] {
        let (sa, header) = initiate(
            &alice,
            &addr(1),
            &bundle(&bob, with_otk),
            &addr(2),
            &mut OsRng,
        )
        .unwrap();
        let extra = with_otk.then(|| bob.otk.secret());
        let sb = respond(
            &bob.id,
            &addr(2),
            &addr(1),
            bob.spk.secret(),
            extra,
            &header,
        )
        .unwrap();
        assert_eq!(sa.root_key(), sb.root_key());
        assert_eq!(sa.associated_data(), sb.associated_data());
        assert_eq!(sa.associated_data().len(), ASSOCIATED_DATA_LEN);
    }
}

#[test]
fn extra_prekey_mismatch_is_named() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (_, header) =
        initiate(&alice, &addr(1), &bundle(&bob, true), &addr(2), &mut OsRng).unwrap();
    assert_eq!(
        respond(&bob.id, &addr(2), &addr(1), bob.spk.secret(), None, &header).unwrap_err(),
        X3dhError::MissingExtraPreKey(PreKeyRef::OneTime(9))
    );
    let (_, header) =
        initiate(&alice, &addr(1), &bundle(&bob, false), &addr(2), &mut OsRng).unwrap();
    assert_eq!(
        respond(
            &bob.id,
            &addr(2),
            &addr(1),
            bob.spk.secret(),
            Some(bob.otk.secret()),
            &header
        )
        .unwrap_err(),
        X3dhError::UnexpectedExtraPreKey
    );
}

#[test]
fn another_address_for_the_same_keys_does_not_agree() {
    // The unknown-key-share: the initiator thinks the keys belong to
    // account 3, the genuine owner (account 2) answers as itself.
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (sa, header) =
        initiate(&alice, &addr(1), &bundle(&bob, false), &addr(3), &mut OsRng).unwrap();
    let sb = respond(&bob.id, &addr(2), &addr(1), bob.spk.secret(), None, &header).unwrap();
    assert_ne!(sa.root_key(), sb.root_key());
    assert_ne!(sa.associated_data(), sb.associated_data());
}

#[test]
fn session_secret_debug_is_redacted() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (sa, _) = initiate(&alice, &addr(1), &bundle(&bob, true), &addr(2), &mut OsRng).unwrap();
    let shown = format!("{sa:?}");
    assert!(!shown.contains(&hex::encode(sa.root_key())));
    assert!(!shown.contains(&format!("{:?}", sa.root_key())));
}

#[test]
fn hybrid_sides_agree_for_every_prekey_combination() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    for with_otk in [true, false] {
        for with_kem_otk in [true, false] {
            let verified = full_bundle(&bob, with_otk, with_kem_otk).verify().unwrap();
            let (sa, header) =
                initiate_hybrid(&alice, &addr(1), &verified, &addr(2), &mut OsRng).unwrap();
            let kem = header.kem.as_ref().unwrap();
            let (expected, pair) = if with_kem_otk {
                (
                    KemPreKeyRef {
                        kind: KemPreKeyKind::OneTime,
                        id: 40,
                    },
                    &bob.kem_otk,
                )
            } else {
                (
                    KemPreKeyRef {
                        kind: KemPreKeyKind::LastResort,
                        id: 41,
                    },
                    &bob.kem_lr,
                )
            };
            assert_eq!(kem.prekey, expected);
            let extra = with_otk.then(|| bob.otk.secret());
            let sb = respond_hybrid(
                &bob.id,
                &addr(2),
                &addr(1),
                bob.spk.secret(),
                extra,
                pair,
                &header,
            )
            .unwrap();
            assert_eq!(sa.root_key(), sb.root_key());
            assert_eq!(sa.associated_data(), sb.associated_data());
            assert_eq!(sa.associated_data().len(), PQXDH_ASSOCIATED_DATA_LEN);
            assert!(sa
                .associated_data()
                .starts_with(labels::PQXDH_ASSOCIATED_DATA));
        }
    }
}

#[test]
fn hybrid_and_classical_are_never_mixed_up() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (_, hybrid) =
        initiate_hybrid(&alice, &addr(1), &bundle(&bob, false), &addr(2), &mut OsRng).unwrap();
    // A hybrid header answered classically names the KEM prekey it lacks.
    assert_eq!(
        respond(&bob.id, &addr(2), &addr(1), bob.spk.secret(), None, &hybrid).unwrap_err(),
        X3dhError::MissingKemPreKey(KemPreKeyRef {
            kind: KemPreKeyKind::OneTime,
            id: 40
        })
    );
    // A classical header answered as hybrid.
    let (_, classical) =
        initiate(&alice, &addr(1), &bundle(&bob, false), &addr(2), &mut OsRng).unwrap();
    assert!(classical.kem.is_none());
    assert_eq!(
        respond_hybrid(
            &bob.id,
            &addr(2),
            &addr(1),
            bob.spk.secret(),
            None,
            &bob.kem_otk,
            &classical
        )
        .unwrap_err(),
        X3dhError::UnexpectedKemPreKey
    );
    // A classical-only bundle (phase 1's verify_classical) cannot start a
    // hybrid session.
    let mut no_kem = full_bundle(&bob, false, false);
    no_kem.kem_last_resort = None;
    let classical_bundle = no_kem.verify_classical().unwrap();
    assert_eq!(
        initiate_hybrid(&alice, &addr(1), &classical_bundle, &addr(2), &mut OsRng).unwrap_err(),
        X3dhError::NoKemPreKey
    );
}

#[test]
fn the_wrong_kem_private_key_gives_an_unrelated_root_key() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (sa, header) =
        initiate_hybrid(&alice, &addr(1), &bundle(&bob, false), &addr(2), &mut OsRng).unwrap();
    // The last-resort private key for a header naming the one-time one:
    // decapsulation implicitly rejects, and its public key enters info/AD.
    let sb = respond_hybrid(
        &bob.id,
        &addr(2),
        &addr(1),
        bob.spk.secret(),
        None,
        &bob.kem_lr,
        &header,
    )
    .unwrap();
    assert_ne!(sa.root_key(), sb.root_key());
    assert_ne!(sa.associated_data(), sb.associated_data());
}

#[test]
fn kem_header_serde_round_trips() {
    let alice = IdentityKeyPair::generate(&mut OsRng);
    let bob = responder();
    let (_, header) =
        initiate_hybrid(&alice, &addr(1), &bundle(&bob, true), &addr(2), &mut OsRng).unwrap();
    let bytes = postcard::to_stdvec(&header).unwrap();
    let back: InitialHeader = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, header);
}
