//! Unit tests of bundles, their verification (the KEM prekey rules
//! included) and the wire conversions.

use super::*;
use crate::kem_prekeys::{kem_prekey_message, KemPreKey};
use rand::rngs::OsRng;

fn kem(id: &IdentityKeyPair, kind: KemPreKeyKind, kem_id: u32) -> KemPreKeyPublic {
    kem_at(id, kind, kem_id, 5)
}

fn kem_at(
    id: &IdentityKeyPair,
    kind: KemPreKeyKind,
    kem_id: u32,
    created_at: u64,
) -> KemPreKeyPublic {
    KemPreKey::generate(id, kind, kem_id, created_at, &mut OsRng).public()
}

fn bundle(id: &IdentityKeyPair, created_at: u64) -> PreKeyBundle {
    PreKeyBundle {
        identity: id.public(),
        signed_prekey: SignedPreKey::generate(id, 7, created_at, &mut OsRng).public(),
        one_time_prekey: Some(OneTimePreKey::generate(1, &mut OsRng).public()),
        last_resort: Some(OneTimePreKey::generate(2, &mut OsRng).public()),
        kem_one_time: Some(kem_at(id, KemPreKeyKind::OneTime, 30, created_at)),
        kem_last_resort: Some(kem_at(id, KemPreKeyKind::LastResort, 31, created_at)),
    }
}

fn kem_ref(kind: KemPreKeyKind, id: u32) -> KemPreKeyRef {
    KemPreKeyRef { kind, id }
}

#[test]
fn the_one_time_kem_prekey_is_preferred_then_the_last_resort_one() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let b = bundle(&id, 1000);
    let otk = b.kem_one_time.clone().unwrap();
    let v = b.clone().verify().unwrap();
    let chosen = v.kem_prekey().unwrap();
    assert_eq!(
        KemPreKeyRef::of(chosen),
        kem_ref(KemPreKeyKind::OneTime, 30)
    );
    assert_eq!(chosen.key().as_bytes(), otk.key.as_ref());
    let mut lr_only = b;
    lr_only.kem_one_time = None;
    let v = lr_only.verify().unwrap();
    assert_eq!(
        KemPreKeyRef::of(v.kem_prekey().unwrap()),
        kem_ref(KemPreKeyKind::LastResort, 31)
    );
}

#[test]
fn a_bundle_without_kem_prekey_is_refused_unless_classical() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let mut b = bundle(&id, 1000);
    b.kem_one_time = None;
    b.kem_last_resort = None;
    assert_eq!(b.clone().verify(), Err(PreKeyError::NoKemPreKey));
    assert_eq!(b.clone().verify_at(1000), Err(PreKeyError::NoKemPreKey));
    let classical = b.verify_classical().unwrap();
    assert!(classical.kem_prekey().is_none());
}

#[test]
fn kem_prekeys_of_another_identity_or_kind_are_refused() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let mallory = IdentityKeyPair::generate(&mut OsRng);
    let mut foreign = bundle(&id, 1000);
    foreign.kem_one_time = Some(kem(&mallory, KemPreKeyKind::OneTime, 30));
    assert_eq!(foreign.verify(), Err(PreKeyError::BadKemPreKeySignature));
    // A bad last-resort key fails the bundle even beside a good one-time key.
    let mut foreign_lr = bundle(&id, 1000);
    foreign_lr.kem_last_resort = Some(kem(&mallory, KemPreKeyKind::LastResort, 31));
    assert_eq!(foreign_lr.verify(), Err(PreKeyError::BadKemPreKeySignature));
    // A one-time key served as the last-resort one: labelled with the
    // field's kind its signature fails, labelled with its own kind the
    // field refuses it.
    let mut swapped = bundle(&id, 1000);
    let mut otk = swapped.kem_one_time.take().unwrap();
    swapped.kem_last_resort = Some(otk.clone());
    assert_eq!(
        swapped.clone().verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
    otk.kind = KemPreKeyKind::LastResort;
    swapped.kem_last_resort = Some(otk);
    assert_eq!(swapped.verify(), Err(PreKeyError::BadKemPreKeySignature));
    // And the reverse: the last-resort key in the one-time field.
    let mut reverse = bundle(&id, 1000);
    let mut lr = reverse.kem_last_resort.clone().unwrap();
    lr.kind = KemPreKeyKind::OneTime;
    reverse.kem_one_time = Some(lr);
    assert_eq!(reverse.verify(), Err(PreKeyError::BadKemPreKeySignature));
}

#[test]
fn a_signed_kem_key_failing_the_modulus_check_is_refused() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let mut b = bundle(&id, 1000);
    let mut key = Box::new([0u8; crate::kem::KEM_PUBLIC_KEY_LEN]);
    // First coefficient 0xfff >= q.
    key[0] = 0xff;
    key[1] = 0x0f;
    let msg = kem_prekey_message(KemPreKeyKind::OneTime, 30, 5, &key);
    b.kem_one_time = Some(KemPreKeyPublic {
        kind: KemPreKeyKind::OneTime,
        id: 30,
        created_at: 5,
        key,
        signature: id.sign(labels::KEM_PREKEY, &msg),
    });
    assert_eq!(b.verify(), Err(PreKeyError::InvalidKemPreKey));
}

#[test]
fn a_hybrid_bundle_survives_its_wire_form_and_bad_fields_are_named() {
    use crate::wire::{AccountId, DeviceId, HybridBundleWire, PreKeyBundleWire};
    let id = IdentityKeyPair::generate(&mut OsRng);
    let b = bundle(&id, 1000);
    let mut wire = HybridBundleWire {
        bundle: PreKeyBundleWire {
            account: AccountId::from_bytes([1; crate::wire::ACCOUNT_ID_LEN]),
            device: DeviceId(1),
            identity: b.identity.to_bytes().to_vec(),
            signed_prekey: (&b.signed_prekey).into(),
            one_time_prekey: b.one_time_prekey.map(Into::into),
            last_resort: b.last_resort.map(Into::into),
        },
        kem_one_time: b.kem_one_time.as_ref().map(KemPreKeyPublic::to_wire),
        kem_last_resort: b.kem_last_resort.as_ref().map(KemPreKeyPublic::to_wire),
    };
    let back = PreKeyBundle::try_from(&wire).unwrap();
    assert_eq!(back, b);
    assert!(back.verify().is_ok());
    // A relay that serves the one-time key in the last-resort place:
    // it converts (lengths are fine) and fails verification.
    let mut swapped = wire.clone();
    swapped.kem_last_resort = swapped.kem_one_time.take();
    assert_eq!(
        PreKeyBundle::try_from(&swapped).unwrap().verify(),
        Err(PreKeyError::BadKemPreKeySignature)
    );
    // Stripped of both KEM prekeys: the downgrade refusal.
    let mut stripped = wire.clone();
    stripped.kem_one_time = None;
    stripped.kem_last_resort = None;
    assert_eq!(
        PreKeyBundle::try_from(&stripped).unwrap().verify(),
        Err(PreKeyError::NoKemPreKey)
    );
    wire.kem_one_time.as_mut().unwrap().key.pop();
    assert_eq!(
        PreKeyBundle::try_from(&wire),
        Err(BundleParseError::KemOneTime(
            PreKeyError::BadKemPreKeyLength { actual: 1183 }
        ))
    );
    wire.kem_one_time = None;
    wire.kem_last_resort.as_mut().unwrap().key.push(0);
    assert_eq!(
        PreKeyBundle::try_from(&wire),
        Err(BundleParseError::KemLastResort(
            PreKeyError::BadKemPreKeyLength { actual: 1185 }
        ))
    );
    wire.bundle.identity.pop();
    assert_eq!(
        PreKeyBundle::try_from(&wire),
        Err(BundleParseError::Identity(IdentityError::BadLength {
            actual: 127
        }))
    );
}

#[test]
fn a_bundle_keeps_its_postcard_round_trip() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let b = bundle(&id, 1000);
    let back: PreKeyBundle = postcard::from_bytes(&postcard::to_stdvec(&b).unwrap()).unwrap();
    assert_eq!(back, b);
}

#[test]
fn genuine_bundle_verifies_and_prefers_one_time_key() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let b = bundle(&id, 1000);
    let otk = b.one_time_prekey.unwrap();
    let v = b.verify().unwrap();
    assert_eq!(v.extra_prekey(), Some((PreKeyRef::OneTime(1), otk.key)));
}

#[test]
fn last_resort_used_when_no_one_time_key() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let mut b = bundle(&id, 1000);
    b.one_time_prekey = None;
    let lr = b.last_resort.unwrap();
    assert_eq!(
        b.verify().unwrap().extra_prekey(),
        Some((PreKeyRef::LastResort(2), lr.key))
    );
}

#[test]
fn signed_prekey_from_other_identity_is_rejected() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let other = IdentityKeyPair::generate(&mut OsRng);
    let mut b = bundle(&id, 1000);
    b.signed_prekey = SignedPreKey::generate(&other, 7, 1000, &mut OsRng).public();
    assert_eq!(b.verify(), Err(PreKeyError::BadSignedPreKeySignature));
}

#[test]
fn signed_fields_are_covered() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let mut by_id = bundle(&id, 1000);
    by_id.signed_prekey.id ^= 1;
    assert_eq!(by_id.verify(), Err(PreKeyError::BadSignedPreKeySignature));
    let mut by_time = bundle(&id, 1000);
    by_time.signed_prekey.created_at += 1;
    assert_eq!(by_time.verify(), Err(PreKeyError::BadSignedPreKeySignature));
}

#[test]
fn a_bundle_survives_its_wire_form_and_a_bad_identity_is_refused() {
    use crate::wire::{AccountId, DeviceId, PreKeyBundleWire};
    let id = IdentityKeyPair::generate(&mut OsRng);
    let b = bundle(&id, 1000);
    let mut wire = PreKeyBundleWire {
        account: AccountId::from_bytes([1; crate::wire::ACCOUNT_ID_LEN]),
        device: DeviceId(1),
        identity: b.identity.to_bytes().to_vec(),
        signed_prekey: (&b.signed_prekey).into(),
        one_time_prekey: b.one_time_prekey.map(Into::into),
        last_resort: b.last_resort.map(Into::into),
    };
    let back = PreKeyBundle::try_from(&wire).unwrap();
    // The classical wire form carries no KEM prekeys.
    let mut classical = b;
    classical.kem_one_time = None;
    classical.kem_last_resort = None;
    assert_eq!(back, classical);
    assert!(back.verify_classical().is_ok());
    wire.identity.pop();
    assert_eq!(
        PreKeyBundle::try_from(&wire),
        Err(IdentityError::BadLength { actual: 127 })
    );
}

#[test]
fn freshness_window_is_enforced() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let t = 10_000_000;
    assert!(bundle(&id, t)
        .verify_at(t + SIGNED_PREKEY_MAX_AGE_SECS)
        .is_ok());
    assert!(matches!(
        bundle(&id, t).verify_at(t + SIGNED_PREKEY_MAX_AGE_SECS + 1),
        Err(PreKeyError::SignedPreKeyExpired { .. })
    ));
    assert!(matches!(
        bundle(&id, t + SIGNED_PREKEY_MAX_FUTURE_SECS + 1).verify_at(t),
        Err(PreKeyError::SignedPreKeyFromFuture { .. })
    ));
}

#[test]
fn the_last_resort_kem_prekey_has_the_signed_prekeys_age_limits() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let t = 10_000_000;
    let with_lr_at = |created_at: u64| {
        let mut b = bundle(&id, t);
        b.kem_last_resort = Some(kem_at(&id, KemPreKeyKind::LastResort, 31, created_at));
        b
    };
    // Exactly at each limit still verifies.
    assert!(with_lr_at(t - SIGNED_PREKEY_MAX_AGE_SECS)
        .verify_at(t)
        .is_ok());
    assert!(with_lr_at(t + SIGNED_PREKEY_MAX_FUTURE_SECS)
        .verify_at(t)
        .is_ok());
    let old = t - SIGNED_PREKEY_MAX_AGE_SECS - 1;
    assert_eq!(
        with_lr_at(old).verify_at(t),
        Err(PreKeyError::KemPreKeyExpired {
            created_at: old,
            now: t
        })
    );
    let ahead = t + SIGNED_PREKEY_MAX_FUTURE_SECS + 1;
    assert_eq!(
        with_lr_at(ahead).verify_at(t),
        Err(PreKeyError::KemPreKeyFromFuture {
            created_at: ahead,
            now: t
        })
    );
    // Refused also when it is the only KEM prekey (the one that would be used).
    let mut lr_only = with_lr_at(old);
    lr_only.kem_one_time = None;
    assert!(matches!(
        lr_only.clone().verify_at(t),
        Err(PreKeyError::KemPreKeyExpired { .. })
    ));
    assert!(matches!(
        lr_only.clone().verify_classical_at(t),
        Err(PreKeyError::KemPreKeyExpired { .. })
    ));
    // `verify` does not look at the clock.
    assert!(lr_only.verify().is_ok());
    // A stale signed prekey is reported first.
    let mut both = bundle(&id, old);
    both.kem_last_resort = Some(kem_at(&id, KemPreKeyKind::LastResort, 31, old));
    assert!(matches!(
        both.verify_at(t),
        Err(PreKeyError::SignedPreKeyExpired { .. })
    ));
}

#[test]
fn one_time_kem_prekeys_have_no_age_limit() {
    // As in Signal: a one-time key is used once and deleted, so its age
    // widens no window (docs/PROTOCOL.md 3.5).
    let id = IdentityKeyPair::generate(&mut OsRng);
    let t = 10_000_000;
    for created_at in [5, t + SIGNED_PREKEY_MAX_FUTURE_SECS + 1] {
        let mut b = bundle(&id, t);
        b.kem_one_time = Some(kem_at(&id, KemPreKeyKind::OneTime, 30, created_at));
        let v = b.verify_at(t).unwrap();
        let chosen = v.kem_prekey().unwrap();
        assert_eq!(chosen.kind(), KemPreKeyKind::OneTime);
        assert_eq!(chosen.created_at(), created_at);
    }
}

#[test]
fn rotation_due_after_two_days() {
    let id = IdentityKeyPair::generate(&mut OsRng);
    let spk = SignedPreKey::generate(&id, 1, 100, &mut OsRng);
    assert!(!spk.needs_rotation(100 + SIGNED_PREKEY_ROTATION_SECS - 1));
    assert!(spk.needs_rotation(100 + SIGNED_PREKEY_ROTATION_SECS));
}
