//! Properties of the account backup (docs/PROTOCOL.md §13) over random
//! contents and keys: what seal makes, open gives back exactly; any single
//! bit flipped anywhere in a sealed backup is refused; a key derived from
//! another export key (another password) or for another account is refused
//! as `WrongKey`; and the sealed size is always a bucket.

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use umbra_protocol::backup::{
    self, BackupContact, BackupContents, BackupError, BackupExtension, BackupGroup, BackupKey,
    BackupTrust, Conversation, HistoryEntry, SettingValue, EXPORT_KEY_LEN,
};
use umbra_protocol::content::MessageId;
use umbra_protocol::group::GroupId;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

/// Contents drawn from one seed: `contacts` contacts, `groups` groups with
/// logs of `log_len` bytes, a few settings, history of `history` entries
/// if `Some`, one extension if `extension`.
fn contents(
    seed: u64,
    contacts: u8,
    groups: u8,
    log_len: usize,
    history: Option<u8>,
    extension: bool,
) -> BackupContents {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let account = AccountId::random(&mut rng);
    let mut c = BackupContents::new(account, IdentityKeyPair::generate(&mut rng), seed);
    for i in 0..contacts {
        let identity = IdentityKeyPair::generate(&mut rng).public();
        let trust = match i % 3 {
            0 => BackupTrust::Unverified,
            1 => BackupTrust::Verified,
            _ => BackupTrust::Changed {
                pending: Box::new(IdentityKeyPair::generate(&mut rng).public()),
            },
        };
        c.contacts.push(BackupContact {
            account: AccountId::random(&mut rng),
            username: Username::parse(&format!("user{i}")).unwrap(),
            identity,
            trust,
        });
    }
    c.contacts.sort_by_key(|c| c.account);
    for i in 0..groups {
        c.groups.push(BackupGroup {
            id: GroupId::random(&mut rng),
            log: vec![i; log_len.max(1)],
        });
    }
    c.groups.sort_by_key(|g| g.id);
    c.settings
        .insert("ui.theme".into(), SettingValue::Text("dark".into()));
    c.settings
        .insert("receipts".into(), SettingValue::Bool(seed % 2 == 0));
    c.settings
        .insert("typing.ttl".into(), SettingValue::U64(seed));
    c.history = history.map(|n| {
        (0..n)
            .map(|i| HistoryEntry {
                conversation: Conversation::Direct(account),
                from: account,
                id: MessageId::random(&mut rng),
                sent_at_ms: u64::from(i),
                body: format!("message {i}"),
            })
            .collect()
    });
    if extension {
        c.extensions.push(BackupExtension {
            tag: 42,
            body: vec![7; 5],
        });
    }
    c
}

fn key_for(c: &BackupContents, export_key: u8) -> BackupKey {
    BackupKey::derive(&[export_key; EXPORT_KEY_LEN], &c.account)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn seal_open_round_trip(
        seed in any::<u64>(),
        contacts in 0u8..24,
        groups in 0u8..4,
        log_len in 0usize..30_000,
        history in proptest::option::of(0u8..10),
        extension in any::<bool>(),
        seq in any::<u64>(),
        export_key in any::<u8>(),
    ) {
        let c = contents(seed, contacts, groups, log_len, history, extension);
        let key = key_for(&c, export_key);
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
        let sealed = backup::seal(&c, &key, seq, &mut rng).unwrap();
        prop_assert!(backup::is_backup_bucket(sealed.len()));
        prop_assert_eq!(
            Some(sealed.len()),
            backup::backup_bucket_for(c.encode().unwrap().len())
        );
        let opened = backup::open(&key, &sealed, Some(seq)).unwrap();
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(opened.contents.encode().unwrap(), c.encode().unwrap());
        prop_assert_eq!(opened.contents.identity.public(), c.identity.public());
    }

    #[test]
    fn any_bit_flip_is_refused(
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let c = contents(seed, 3, 1, 100, Some(2), false);
        let key = key_for(&c, 1);
        let mut sealed = backup::seal(&c, &key, 5, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
        let i = at.index(sealed.len());
        sealed[i] ^= 1 << bit;
        let refused = backup::open(&key, &sealed, None);
        prop_assert!(refused.is_err(), "flip of bit {} of byte {} accepted", bit, i);
        // Which layer refuses depends only on where the flip is (§13.7).
        let expected = match i {
            0 => "Frame",
            9..=24 => "WrongKey",
            _ => "Tampered",
        };
        let got = match refused.unwrap_err() {
            BackupError::Frame(_) => "Frame",
            BackupError::WrongKey => "WrongKey",
            BackupError::Tampered => "Tampered",
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn another_export_key_or_account_is_refused(
        seed in any::<u64>(),
        sealing_key in any::<[u8; 32]>(),
        opening_key in any::<[u8; 32]>(),
    ) {
        let c = contents(seed, 2, 0, 0, None, false);
        let widen = |half: [u8; 32]| {
            let mut k = [0u8; EXPORT_KEY_LEN];
            k[..32].copy_from_slice(&half);
            k[32..].copy_from_slice(&half);
            k
        };
        let key = BackupKey::derive(&widen(sealing_key), &c.account);
        let sealed = backup::seal(&c, &key, 1, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
        let other = BackupKey::derive(&widen(opening_key), &c.account);
        if sealing_key == opening_key {
            prop_assert!(backup::open(&other, &sealed, None).is_ok());
        } else {
            prop_assert_eq!(backup::open(&other, &sealed, None).map(|_| ()), Err(BackupError::WrongKey));
        }
        let mut elsewhere = *c.account.as_bytes();
        elsewhere[0] ^= 0x80;
        let other_account = BackupKey::derive(&widen(sealing_key), &AccountId::from_bytes(elsewhere));
        prop_assert_eq!(
            backup::open(&other_account, &sealed, None).map(|_| ()),
            Err(BackupError::WrongKey)
        );
    }
}

/// Every bit of the header and the tag, where a random flip rarely lands:
/// the version, the sequence number (in the associated data), the key
/// check and the nonce each have their own way of being refused.
#[test]
fn every_header_and_tag_bit_flip_is_refused() {
    let c = contents(7, 2, 1, 10, None, true);
    let key = key_for(&c, 3);
    let sealed = backup::seal(&c, &key, 9, &mut ChaCha20Rng::seed_from_u64(7)).unwrap();
    let edges =
        (0..backup::BACKUP_HEADER_LEN).chain(sealed.len() - backup::BACKUP_TAG_LEN..sealed.len());
    for i in edges {
        for bit in 0..8 {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1 << bit;
            let refused = backup::open(&key, &flipped, None);
            assert!(refused.is_err(), "flip of bit {bit} of byte {i} accepted");
        }
    }
}
