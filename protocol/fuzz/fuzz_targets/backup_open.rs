//! Account backups (docs/PROTOCOL.md §13). The first byte picks the layer:
//! `0x00` opens the rest as a sealed backup under the key of
//! docs/test-vectors/backup.json (so its sealed cases open and mutations of
//! them reach every check of §13.7), `0x01` decodes the rest as backup
//! contents, `0x02` unpads the rest as a decrypted plaintext and decodes
//! what it holds. Any bytes give a backup or a named error, never a panic;
//! accepted contents are their one canonical encoding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use umbra_fuzz::{assert_canonical, vector_hex};
use umbra_protocol::backup::{self, padding, BackupContents, BackupKey};
use umbra_protocol::wire::AccountId;

const BACKUP_JSON: &str = include_str!("../../../docs/test-vectors/backup.json");

fn key() -> &'static BackupKey {
    static KEY: OnceLock<BackupKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let export_key: [u8; 64] = vector_hex(BACKUP_JSON, "/export_key")
            .try_into()
            .expect("a 64-byte export key");
        let account = AccountId::from_slice(&vector_hex(BACKUP_JSON, "/account"))
            .expect("a 16-byte account id");
        BackupKey::derive(&export_key, &account)
    })
}

fn contents_are_canonical(bytes: &[u8]) {
    if let Ok(contents) = BackupContents::decode(bytes) {
        let again = contents.encode().expect("decoded contents re-encode");
        assert_canonical("backup contents", bytes, &again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&layer, rest)) = data.split_first() else {
        return;
    };
    match layer {
        0 => {
            if let Ok(opened) = backup::open(key(), rest, None) {
                let resealed = opened.contents.encode().expect("opened contents re-encode");
                assert!(
                    padding::unpad(&padding::pad(&resealed).expect("opened contents pad")).is_ok(),
                    "opened contents do not pad back"
                );
            }
        }
        1 => contents_are_canonical(rest),
        _ => {
            if let Ok(inner) = padding::unpad(rest) {
                contents_are_canonical(inner);
            }
        }
    }
});
