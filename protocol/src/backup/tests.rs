//! Unit tests of the backup module: encoding rules and refusals of the
//! contents, and the outside checks of `open`. Properties over random
//! contents (round trip, bit flips, wrong keys) are in
//! `protocol/tests/backup_props.rs`.

use rand::rngs::OsRng;

use super::contents::tag;
use super::*;
use crate::identity::IdentityKeyPair;
use crate::wire::{AccountId, Username};

fn account() -> AccountId {
    AccountId::from_bytes([0x11; 16])
}

fn contents() -> BackupContents {
    let mut c = BackupContents::new(
        account(),
        IdentityKeyPair::generate(&mut OsRng),
        1_800_000_000,
    );
    let friend = IdentityKeyPair::generate(&mut OsRng).public();
    c.contacts.push(BackupContact {
        account: AccountId::from_bytes([0x22; 16]),
        username: Username::parse("bob").unwrap(),
        identity: friend,
        trust: BackupTrust::Verified,
    });
    c.settings
        .insert("notify.sound".into(), SettingValue::Bool(true));
    c
}

fn key() -> BackupKey {
    BackupKey::derive(&[5; EXPORT_KEY_LEN], &account())
}

/// `CONTENTS_VERSION || sections`, each `(tag, body)`.
fn raw(sections: &[(u32, &[u8])]) -> Vec<u8> {
    let list: Vec<BackupExtension> = sections
        .iter()
        .map(|(tag, body)| BackupExtension {
            tag: *tag,
            body: body.to_vec(),
        })
        .collect();
    let mut out = vec![CONTENTS_VERSION];
    out.extend(postcard::to_stdvec(&list).unwrap());
    out
}

#[test]
fn contents_round_trip_canonically() {
    let c = contents();
    let bytes = c.encode().unwrap();
    let back = BackupContents::decode(&bytes).unwrap();
    assert_eq!(back.encode().unwrap(), bytes);
    assert_eq!(back.identity.public(), c.identity.public());
    assert!(back.contacts[0].trust.is_verified());
    assert!(back.history.is_none());
}

/// A varint padded with an empty group (`a4 00` for 36, postcard reads
/// it as 36) is refused, in a section tag, a length or a body: the
/// contents are accepted only as their one encoding. Found by the
/// backup_open fuzz target.
#[test]
fn a_padded_varint_is_refused() {
    let mut c = contents();
    c.extensions.push(BackupExtension {
        tag: 36,
        body: Vec::new(),
    });
    let bytes = c.encode().unwrap();
    assert!(BackupContents::decode(&bytes).is_ok());
    assert_eq!(&bytes[bytes.len() - 2..], &[0x24, 0x00]);
    let mut padded = bytes[..bytes.len() - 2].to_vec();
    padded.extend_from_slice(&[0xa4, 0x00, 0x00]);
    assert!(matches!(
        BackupContents::decode(&padded),
        Err(BackupError::Malformed(_))
    ));
}

#[test]
fn unknown_sections_are_kept_and_written_back() {
    let mut c = contents();
    c.extensions.push(BackupExtension {
        tag: 9,
        body: vec![1, 2, 3],
    });
    let bytes = c.encode().unwrap();
    let back = BackupContents::decode(&bytes).unwrap();
    assert_eq!(back.extensions, c.extensions);
    assert_eq!(back.encode().unwrap(), bytes);
    // An extension may not reuse a defined tag.
    c.extensions[0].tag = tag::HISTORY;
    assert!(matches!(c.encode(), Err(BackupError::Invalid(_))));
}

#[test]
fn contents_refusals_are_named() {
    let c = contents();
    let account = postcard::to_stdvec(&c.account).unwrap();
    let identity = postcard::to_stdvec(&c.identity).unwrap();
    let when = postcard::to_stdvec(&1u64).unwrap();
    let base = [(1, &account[..]), (2, &identity[..]), (3, &when[..])];
    assert!(BackupContents::decode(&raw(&base)).is_ok());
    assert!(matches!(
        BackupContents::decode(&[]),
        Err(BackupError::Malformed(_))
    ));
    let mut v2 = raw(&base);
    v2[0] = 2;
    assert_eq!(
        BackupContents::decode(&v2).map(|_| ()),
        Err(BackupError::UnknownContentsVersion {
            found: 2,
            supported: 1
        })
    );
    let twice = [base[0], base[0], base[1], base[2]];
    assert!(matches!(
        BackupContents::decode(&raw(&twice)),
        Err(BackupError::Malformed(_))
    ));
    let no_identity = [base[0], base[2]];
    assert_eq!(
        BackupContents::decode(&raw(&no_identity)).map(|_| ()),
        Err(BackupError::Invalid("no identity section"))
    );
    let empty_contacts = [base[0], base[1], base[2], (tag::CONTACTS, &[0u8][..])];
    assert!(matches!(
        BackupContents::decode(&raw(&empty_contacts)),
        Err(BackupError::Malformed(_))
    ));
    let mut trailing = raw(&base);
    trailing.push(0);
    assert!(matches!(
        BackupContents::decode(&trailing),
        Err(BackupError::Malformed(_))
    ));
    let long_account = [(1, &identity[..]), base[1], base[2]];
    assert!(matches!(
        BackupContents::decode(&raw(&long_account)),
        Err(BackupError::Malformed(_))
    ));
}

#[test]
fn contents_rules_hold_both_ways() {
    let mut c = contents();
    let again = c.contacts[0].clone();
    c.contacts.push(again);
    assert_eq!(
        c.encode().map(|_| ()),
        Err(BackupError::Invalid(
            "contacts are not in strictly ascending account order"
        ))
    );
    let mut c = contents();
    c.settings.insert("Upper".into(), SettingValue::U64(1));
    assert!(matches!(c.encode(), Err(BackupError::Invalid(_))));
    let mut c = contents();
    c.settings.insert(
        "x".into(),
        SettingValue::Text("y".repeat(MAX_SETTING_TEXT_BYTES + 1)),
    );
    assert!(matches!(c.encode(), Err(BackupError::Invalid(_))));
}

#[test]
fn seal_open_and_outside_refusals() {
    let c = contents();
    let k = key();
    let sealed = seal(&c, &k, 3, &mut OsRng).unwrap();
    assert_eq!(sealed.len(), MIN_BACKUP_BYTES);
    let opened = open(&k, &sealed, Some(3)).unwrap();
    assert_eq!(opened.seq, 3);
    assert_eq!(opened.contents.encode().unwrap(), c.encode().unwrap());
    assert_eq!(
        open(&k, &sealed, Some(4)).map(|_| ()),
        Err(BackupError::RolledBack {
            found: 3,
            last_seen: 4
        })
    );
    let other_account = BackupKey::derive(&[5; EXPORT_KEY_LEN], &AccountId::from_bytes([9; 16]));
    assert_eq!(
        open(&other_account, &sealed, None).map(|_| ()),
        Err(BackupError::WrongKey)
    );
    assert_eq!(
        seal(&c, &other_account, 1, &mut OsRng),
        Err(BackupError::AccountMismatch)
    );
    assert_eq!(
        open(&k, &sealed[..sealed.len() - 1], None).map(|_| ()),
        Err(BackupError::Frame(BackupFrameError::NotABucket {
            len: sealed.len() - 1
        }))
    );
    let mut relabelled = sealed.clone();
    relabelled[8] ^= 1;
    assert_eq!(
        open(&k, &relabelled, None).map(|_| ()),
        Err(BackupError::Tampered)
    );
}

#[test]
fn debug_shows_no_secrets_or_names() {
    let c = contents();
    let shown = format!("{c:?}");
    let secret = postcard::to_stdvec(&c.identity).unwrap();
    assert!(!shown.contains(&hex::encode(&secret[1..33])), "{shown}");
    assert!(!shown.contains("bob"), "{shown}");
}
