//! Tests of the sealing layer over both backends: what is stored can be
//! read back only with the right password, only from its own slot, kind and
//! owner, and nothing readable reaches the disk.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use umbra_protocol::wire::AccountId;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    text: String,
    n: u64,
}

const PASSWORD: &[u8] = b"correct horse battery staple";
const OWNER: AccountId = AccountId::from_bytes([0xA1; 16]);

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x5eed)
}

async fn new_vault(backend: Arc<dyn ClientStore>) -> Vault {
    Vault::create(
        backend,
        PASSWORD,
        KdfParams::insecure_for_tests(),
        OWNER,
        &mut rng(),
    )
    .await
    .expect("create vault")
}

fn note(text: &str, n: u64) -> Note {
    Note {
        text: text.into(),
        n,
    }
}

async fn put(vault: &Vault, kind: RecordKind, slot: Vec<u8>, value: &Note) {
    let mut txn = Txn::new();
    vault.put(&mut txn, kind, slot, value, &mut rng()).unwrap();
    vault.commit(txn).await.unwrap();
}

async fn roundtrip_on(backend: Arc<dyn ClientStore>) {
    let vault = new_vault(backend.clone()).await;
    let alice = vault.slot(RecordKind::Contact, b"alice");
    let bob = vault.slot(RecordKind::Contact, b"bob");
    put(
        &vault,
        RecordKind::Contact,
        alice.clone(),
        &note("alice", 1),
    )
    .await;
    put(&vault, RecordKind::Contact, bob.clone(), &note("bob", 2)).await;
    assert_eq!(
        vault
            .get::<Note>(RecordKind::Contact, &alice)
            .await
            .unwrap(),
        Some(note("alice", 1))
    );
    // Ordered slots list in sequence order under their prefix only.
    for seq in [3u64, 1, 2] {
        let slot = vault.ordered_slot(RecordKind::History, b"alice", seq);
        put(&vault, RecordKind::History, slot, &note("h", seq)).await;
    }
    put(
        &vault,
        RecordKind::History,
        vault.ordered_slot(RecordKind::History, b"bob", 0),
        &note("other", 0),
    )
    .await;
    let prefix = vault.slot(RecordKind::History, b"alice");
    let listed: Vec<u64> = vault
        .list::<Note>(RecordKind::History, &prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n.n)
        .collect();
    assert_eq!(listed, vec![1, 2, 3]);

    // A batch is applied as a whole: delete + put together.
    let mut txn = Txn::new();
    vault.delete(&mut txn, RecordKind::Contact, alice.clone());
    vault
        .put(
            &mut txn,
            RecordKind::Contact,
            bob.clone(),
            &note("bob", 3),
            &mut rng(),
        )
        .unwrap();
    vault.commit(txn).await.unwrap();
    assert_eq!(
        vault
            .get::<Note>(RecordKind::Contact, &alice)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        vault.get::<Note>(RecordKind::Contact, &bob).await.unwrap(),
        Some(note("bob", 3))
    );

    // Reopening with the password gives the same data.
    drop(vault);
    let reopened = Vault::unlock(backend, PASSWORD).await.unwrap();
    assert_eq!(reopened.owner(), OWNER);
    assert_eq!(
        reopened
            .get::<Note>(RecordKind::Contact, &bob)
            .await
            .unwrap(),
        Some(note("bob", 3))
    );
}

#[tokio::test]
async fn memory_store_roundtrip() {
    roundtrip_on(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn sqlite_store_roundtrip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    roundtrip_on(Arc::new(SqliteStore::open(&data).await.unwrap())).await;
    // A second process-like open of the same directory sees the same store.
    let again: Arc<dyn ClientStore> = Arc::new(SqliteStore::open(&data).await.unwrap());
    assert!(Vault::is_initialized(&*again).await.unwrap());
}

#[tokio::test]
async fn wrong_password_is_a_clear_error() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    new_vault(backend.clone()).await;
    let err = Vault::unlock(backend, b"wrong password").await.unwrap_err();
    assert!(matches!(err, StoreError::WrongPassword), "{err:?}");
}

#[tokio::test]
async fn unlocking_an_empty_store_says_so_and_creating_twice_is_refused() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let err = Vault::unlock(backend.clone(), PASSWORD).await.unwrap_err();
    assert!(matches!(err, StoreError::NotInitialized), "{err:?}");
    new_vault(backend.clone()).await;
    let err = Vault::create(
        backend,
        PASSWORD,
        KdfParams::insecure_for_tests(),
        OWNER,
        &mut rng(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyInitialized), "{err:?}");
}

#[tokio::test]
async fn swapped_records_are_rejected() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = new_vault(backend.clone()).await;
    let alice = vault.slot(RecordKind::Contact, b"alice");
    let bob = vault.slot(RecordKind::Contact, b"bob");
    put(
        &vault,
        RecordKind::Contact,
        alice.clone(),
        &note("alice", 1),
    )
    .await;
    put(&vault, RecordKind::Contact, bob.clone(), &note("bob", 2)).await;
    // An attacker with the file swaps the two sealed values.
    let a = backend
        .get(RecordKind::Contact, &alice)
        .await
        .unwrap()
        .unwrap();
    let b = backend
        .get(RecordKind::Contact, &bob)
        .await
        .unwrap()
        .unwrap();
    backend
        .apply(vec![
            WriteOp::Put {
                kind: RecordKind::Contact,
                slot: alice.clone(),
                sealed: b,
            },
            WriteOp::Put {
                kind: RecordKind::Contact,
                slot: bob.clone(),
                sealed: a,
            },
        ])
        .await
        .unwrap();
    for slot in [&alice, &bob] {
        let err = vault
            .get::<Note>(RecordKind::Contact, slot)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Tampered {
                    kind: RecordKind::Contact
                }
            ),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn records_moved_to_another_slot_or_kind_are_rejected() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = new_vault(backend.clone()).await;
    let alice = vault.slot(RecordKind::Contact, b"alice");
    put(
        &vault,
        RecordKind::Contact,
        alice.clone(),
        &note("alice", 1),
    )
    .await;
    let sealed = backend
        .get(RecordKind::Contact, &alice)
        .await
        .unwrap()
        .unwrap();

    let elsewhere = vault.slot(RecordKind::Contact, b"mallory");
    backend
        .apply(vec![WriteOp::Put {
            kind: RecordKind::Contact,
            slot: elsewhere.clone(),
            sealed: sealed.clone(),
        }])
        .await
        .unwrap();
    assert!(matches!(
        vault.get::<Note>(RecordKind::Contact, &elsewhere).await,
        Err(StoreError::Tampered { .. })
    ));

    // Same slot bytes, different kind: also rejected.
    backend
        .apply(vec![WriteOp::Put {
            kind: RecordKind::Session,
            slot: alice.clone(),
            sealed,
        }])
        .await
        .unwrap();
    assert!(matches!(
        vault.get::<Note>(RecordKind::Session, &alice).await,
        Err(StoreError::Tampered {
            kind: RecordKind::Session
        })
    ));
    // The original is untouched.
    assert_eq!(
        vault
            .get::<Note>(RecordKind::Contact, &alice)
            .await
            .unwrap(),
        Some(note("alice", 1))
    );
}

#[tokio::test]
async fn a_record_from_another_accounts_store_is_rejected() {
    // Two stores with the same password but different owners.
    let one: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault_one = new_vault(one.clone()).await;
    let two: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault_two = Vault::create(
        two.clone(),
        PASSWORD,
        KdfParams::insecure_for_tests(),
        AccountId::from_bytes([0xB2; 16]),
        &mut rng(),
    )
    .await
    .unwrap();
    let slot = vault_one.slot(RecordKind::Token, b"");
    put(
        &vault_one,
        RecordKind::Token,
        slot.clone(),
        &note("token", 1),
    )
    .await;
    let sealed = one.get(RecordKind::Token, &slot).await.unwrap().unwrap();
    two.apply(vec![WriteOp::Put {
        kind: RecordKind::Token,
        slot: slot.clone(),
        sealed,
    }])
    .await
    .unwrap();
    assert!(matches!(
        vault_two.get::<Note>(RecordKind::Token, &slot).await,
        Err(StoreError::Tampered { .. })
    ));
}

#[tokio::test]
async fn flipped_bits_and_truncation_are_rejected_not_panics() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = new_vault(backend.clone()).await;
    let slot = vault.slot(RecordKind::Contact, b"alice");
    put(&vault, RecordKind::Contact, slot.clone(), &note("alice", 1)).await;
    let sealed = backend
        .get(RecordKind::Contact, &slot)
        .await
        .unwrap()
        .unwrap();
    let mut variants = vec![
        Vec::new(),
        sealed[..10].to_vec(),
        sealed[..sealed.len() - 1].to_vec(),
    ];
    for i in [0, 23, 24, sealed.len() - 1] {
        let mut flipped = sealed.clone();
        flipped[i] ^= 0x01;
        variants.push(flipped);
    }
    for bad in variants {
        backend
            .apply(vec![WriteOp::Put {
                kind: RecordKind::Contact,
                slot: slot.clone(),
                sealed: bad,
            }])
            .await
            .unwrap();
        assert!(matches!(
            vault.get::<Note>(RecordKind::Contact, &slot).await,
            Err(StoreError::Tampered { .. })
        ));
    }
}

#[tokio::test]
async fn a_tampered_header_fails_like_a_wrong_password() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    new_vault(backend.clone()).await;
    let header = backend.read_header().await.unwrap().unwrap();
    // Change the owner id (bytes 36..52): the check record's AD no longer matches.
    let mut changed = header.clone();
    changed[40] ^= 0xff;
    backend.write_header(&changed).await.unwrap();
    assert!(matches!(
        Vault::unlock(backend.clone(), PASSWORD).await,
        Err(StoreError::WrongPassword)
    ));
    // Garbage is a header error, not a panic.
    backend.write_header(b"nonsense").await.unwrap();
    assert!(matches!(
        Vault::unlock(backend, PASSWORD).await,
        Err(StoreError::BadHeader(_))
    ));
}

#[tokio::test]
async fn sqlite_file_holds_no_plaintext_and_has_private_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("umbra");
    let store = Arc::new(SqliteStore::open(&data).await.unwrap());
    let backend: Arc<dyn ClientStore> = store.clone();
    let vault = new_vault(backend).await;
    let canary = "CANARY-plaintext-7f3a9c";
    let contact_name = "zebediah_contact";
    let slot = vault.slot(RecordKind::Contact, contact_name.as_bytes());
    put(&vault, RecordKind::Contact, slot, &note(canary, 42)).await;
    store.close().await;

    let mut all_bytes = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        all_bytes.extend(std::fs::read(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
        }
    }
    assert!(!all_bytes.is_empty());
    for needle in [canary.as_bytes(), contact_name.as_bytes(), PASSWORD] {
        assert!(
            !all_bytes.windows(needle.len()).any(|w| w == needle),
            "found {:?} in the data directory",
            String::from_utf8_lossy(needle)
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

#[test]
fn store_keys_debug_is_redacted() {
    let keys =
        store_key::StoreKeys::derive(PASSWORD, &[7; 16], KdfParams::insecure_for_tests()).unwrap();
    let shown = format!("{keys:?}");
    assert_eq!(shown, "StoreKeys(<redacted>)");
}

#[test]
fn recommended_parameters_are_the_documented_ones() {
    let p = KdfParams::recommended();
    assert_eq!(
        (p.memory_kib(), p.iterations(), p.parallelism()),
        (65536, 3, 1)
    );
    assert_eq!(KdfParams::default(), p);
}

#[test]
fn record_kind_numbers_roundtrip() {
    for n in 0..=255u8 {
        if let Some(kind) = RecordKind::from_u8(n) {
            assert_eq!(kind.as_u8(), n);
        }
    }
    assert_eq!(RecordKind::from_u8(0), None);
}

#[tokio::test]
async fn a_store_of_an_older_format_is_refused_by_name_before_anything_is_read() {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let vault = new_vault(backend.clone()).await;
    put(
        &vault,
        RecordKind::Contact,
        vault.slot(RecordKind::Contact, b"alice"),
        &note("alice", 1),
    )
    .await;
    drop(vault);
    // What an older umbra wrote: the same header, an older version.
    let mut header = backend.read_header().await.unwrap().unwrap();
    assert_eq!(header[7], header::STORE_FORMAT_VERSION);
    header[7] = header::STORE_FORMAT_VERSION - 1;
    backend.write_header(&header).await.unwrap();
    match Vault::unlock(backend.clone(), PASSWORD).await {
        Err(StoreError::OlderFormat { found, supported }) => {
            assert_eq!(
                (found, supported),
                (
                    header::STORE_FORMAT_VERSION - 1,
                    header::STORE_FORMAT_VERSION
                )
            );
        }
        other => panic!("expected OlderFormat, got {other:?}"),
    }
    // Even the wrong password gets the format error: nothing is derived.
    assert!(matches!(
        Vault::unlock(backend, b"wrong").await,
        Err(StoreError::OlderFormat { .. })
    ));
}
