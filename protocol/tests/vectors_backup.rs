//! Test vectors for the account backup (`docs/test-vectors/backup.json`,
//! docs/PROTOCOL.md §13), from fixed seeds.
//!
//! Two backups (a minimal one, and one with contacts of every trust level,
//! groups, settings, history and an extension section) sealed under a key
//! derived from a fixed export key, with every field written out so that
//! another implementation can rebuild the contents, their encoding and the
//! sealed bytes; the bucket rule at its edges; mutations of a sealed backup
//! and the error each must give; plaintexts sealed with a valid tag but bad
//! padding or contents, and their errors; contents encodings that must be
//! refused. The test also recomputes the key with raw HKDF, reopens the
//! sealed bytes with raw XChaCha20-Poly1305, and assembles the minimal
//! contents byte by byte from §13.4, so the spec and the code agree. Run
//! once with UMBRA_REGENERATE_VECTORS=1 after a deliberate change.

mod backup_spec;
mod common;

use backup_spec::{padded, raw_keys, seal_by_hand, FIXED_NONCE};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use common::{check_or_regenerate, committed, hex};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use umbra_protocol::backup::{
    self, BackupContact, BackupContents, BackupError, BackupExtension, BackupFrameError,
    BackupGroup, BackupKey, BackupTrust, Conversation, HistoryEntry, SettingValue, EXPORT_KEY_LEN,
};
use umbra_protocol::content::MessageId;
use umbra_protocol::group::GroupId;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::labels;
use umbra_protocol::wire::{AccountId, Username};

const SEED: u64 = 0xbac0_0001;
const WRITTEN_AT: u64 = 1_800_000_000;
const FULL_SEQ: u64 = 0x0000_0100_0000_0007;

fn name(e: &BackupError) -> &'static str {
    match e {
        BackupError::Frame(BackupFrameError::Truncated) => "Truncated",
        BackupError::Frame(BackupFrameError::TooLarge { .. }) | BackupError::TooLarge { .. } => {
            "TooLarge"
        }
        BackupError::Frame(BackupFrameError::UnknownVersion { .. }) => "UnknownVersion",
        BackupError::Frame(BackupFrameError::NotABucket { .. }) => "NotABucket",
        BackupError::WrongKey => "WrongKey",
        BackupError::Tampered => "Tampered",
        BackupError::RolledBack { .. } => "RolledBack",
        BackupError::BadPadding(_) => "BadPadding",
        BackupError::UnknownContentsVersion { .. } => "UnknownContentsVersion",
        BackupError::Malformed(_) => "Malformed",
        BackupError::Invalid(_) => "Invalid",
        BackupError::AccountMismatch => "AccountMismatch",
    }
}

fn copy(identity: &IdentityKeyPair) -> IdentityKeyPair {
    postcard::from_bytes(&postcard::to_stdvec(identity).unwrap()).unwrap()
}

fn identity_json(identity: &IdentityKeyPair) -> Value {
    let stored = postcard::to_stdvec(identity).unwrap();
    json!({
        "ed25519_seed": hex(&stored[1..33]),
        "x25519_secret": hex(&stored[34..66]),
        "public_identity": hex(identity.public().to_bytes()),
    })
}

/// Every field of `c`, as another implementation needs them.
fn describe(c: &BackupContents) -> Value {
    let contacts: Vec<Value> = c
        .contacts
        .iter()
        .map(|k| {
            let trust = match &k.trust {
                BackupTrust::Unverified => json!("Unverified"),
                BackupTrust::Verified => json!("Verified"),
                BackupTrust::Changed { pending } => json!({"Changed": hex(pending.to_bytes())}),
            };
            json!({"account": hex(k.account.as_bytes()), "username": k.username.as_str(),
                   "identity": hex(k.identity.to_bytes()), "trust": trust})
        })
        .collect();
    let groups: Vec<Value> = c
        .groups
        .iter()
        .map(|g| json!({"id": hex(g.id.as_bytes()), "log": hex(&g.log)}))
        .collect();
    let settings: Vec<Value> = c
        .settings
        .iter()
        .map(|(n, v)| match v {
            SettingValue::Bool(b) => json!([n, {"Bool": b}]),
            SettingValue::U64(u) => json!([n, {"U64": u}]),
            SettingValue::Text(t) => json!([n, {"Text": t}]),
        })
        .collect();
    let history = c.history.as_ref().map(|h| {
        h.iter()
            .map(|e| {
                let conversation = match e.conversation {
                    Conversation::Direct(a) => json!({"Direct": hex(a.as_bytes())}),
                    Conversation::Group(g) => json!({"Group": hex(g.as_bytes())}),
                };
                json!({"conversation": conversation, "from": hex(e.from.as_bytes()),
                       "id": hex(e.id.0), "sent_at_ms": e.sent_at_ms, "body": e.body})
            })
            .collect::<Vec<_>>()
    });
    let extensions: Vec<Value> = c
        .extensions
        .iter()
        .map(|e| json!({"tag": e.tag, "body": hex(&e.body)}))
        .collect();
    json!({"account": hex(c.account.as_bytes()), "identity": identity_json(&c.identity),
           "written_at": c.written_at, "contacts": contacts, "groups": groups,
           "settings": settings, "history": history, "extensions": extensions})
}

fn full(account: AccountId, identity: IdentityKeyPair, rng: &mut ChaCha20Rng) -> BackupContents {
    let mut c = BackupContents::new(account, identity, WRITTEN_AT + 60);
    let trusts = [BackupTrust::Unverified, BackupTrust::Verified];
    for (i, trust) in trusts.into_iter().enumerate() {
        c.contacts.push(BackupContact {
            account: AccountId::random(rng),
            username: Username::parse(["bob", "carol"][i]).unwrap(),
            identity: IdentityKeyPair::generate(rng).public(),
            trust,
        });
    }
    c.contacts.push(BackupContact {
        account: AccountId::random(rng),
        username: Username::parse("dave").unwrap(),
        identity: IdentityKeyPair::generate(rng).public(),
        trust: BackupTrust::Changed {
            pending: Box::new(IdentityKeyPair::generate(rng).public()),
        },
    });
    c.contacts.sort_by_key(|k| k.account);
    let (g1, g2) = (GroupId::random(rng), GroupId::random(rng));
    c.groups = vec![
        BackupGroup {
            id: g1.min(g2),
            log: b"\x01opaque group log pickle one".to_vec(),
        },
        BackupGroup {
            id: g1.max(g2),
            log: b"\x01opaque group log pickle two".to_vec(),
        },
    ];
    c.settings
        .insert("receipts.send".into(), SettingValue::Bool(false));
    c.settings
        .insert("typing.ttl-secs".into(), SettingValue::U64(300));
    c.settings
        .insert("ui.theme".into(), SettingValue::Text("dark".into()));
    let bob = c.contacts[0].account;
    c.history = Some(vec![
        HistoryEntry {
            conversation: Conversation::Direct(bob),
            from: bob,
            id: MessageId::random(rng),
            sent_at_ms: 1_800_000_000_123,
            body: "hi, it's bob".into(),
        },
        HistoryEntry {
            conversation: Conversation::Group(g1),
            from: account,
            id: MessageId::random(rng),
            sent_at_ms: 1_800_000_000_456,
            body: "hello group".into(),
        },
    ]);
    c.extensions.push(BackupExtension {
        tag: 9,
        body: vec![0xde, 0xad],
    });
    c
}

fn mutate(sealed: &[u8], m: &Value) -> Vec<u8> {
    let mut out = sealed.to_vec();
    if let Some(x) = m.get("xor") {
        let i = x[0].as_u64().unwrap() as usize;
        out[i] ^= x[1].as_u64().unwrap() as u8;
    }
    if let Some(n) = m.get("truncate") {
        out.truncate(n.as_u64().unwrap() as usize);
    }
    if let Some(n) = m.get("append_zeros") {
        out.resize(out.len() + n.as_u64().unwrap() as usize, 0);
    }
    out
}

fn generate() -> Value {
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let mut export_key = [0u8; EXPORT_KEY_LEN];
    rng.fill_bytes(&mut export_key);
    let account = AccountId::random(&mut rng);
    let identity = IdentityKeyPair::generate(&mut rng);
    let key = BackupKey::derive(&export_key, &account);
    let (raw_aead, raw_check) = raw_keys(&export_key, &account);
    assert_eq!(raw_aead, key.aead_key_bytes(), "§13.2 aead_key");
    assert_eq!(&raw_check, key.key_check(), "§13.2 key_check");

    let minimal = BackupContents::new(account, copy(&identity), WRITTEN_AT);
    let by_hand = backup_spec::minimal_by_hand(&account, &identity, WRITTEN_AT);
    assert_eq!(*minimal.encode().unwrap(), by_hand, "§13.4 by hand");
    let full = full(account, copy(&identity), &mut rng);

    let mut cases = Vec::new();
    for (what, c, seq) in [("minimal", &minimal, 1), ("full", &full, FULL_SEQ)] {
        let mut nonce_rng = rng.clone();
        let sealed = backup::seal(c, &key, seq, &mut rng).unwrap();
        let mut nonce = [0u8; 24];
        nonce_rng.fill_bytes(&mut nonce);
        let encoded = c.encode().unwrap();
        // Reopen with raw XChaCha20-Poly1305 from the layout of §13.6.
        assert_eq!(&sealed[25..49], &nonce, "nonce drawn next from the rng");
        let mut body = sealed[49..sealed.len() - 16].to_vec();
        XChaCha20Poly1305::new((&raw_aead).into())
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &[&[1u8][..], account.as_bytes(), &seq.to_be_bytes()].concat(),
                &mut body,
                chacha20poly1305::Tag::from_slice(&sealed[sealed.len() - 16..]),
            )
            .unwrap();
        assert_eq!(body, padded(&encoded, sealed.len() - 65, true));
        cases.push(json!({
            "what": what, "seq": seq, "contents": describe(c),
            "contents_encoded": hex(&*encoded), "nonce": hex(nonce),
            "sealed_len": sealed.len(), "sealed": hex(&sealed),
        }));
    }

    let minimal_sealed = hex::decode(cases[0]["sealed"].as_str().unwrap()).unwrap();
    let mut other_password = export_key;
    other_password[0] ^= 1;
    let mutations = [
        (
            "the export key of another password",
            json!({}),
            Some(hex(other_password)),
            None,
            "WrongKey",
        ),
        ("empty", json!({"truncate": 0}), None, None, "Truncated"),
        (
            "version byte 0x00",
            json!({"xor": [0, 1]}),
            None,
            None,
            "UnknownVersion",
        ),
        (
            "one byte short",
            json!({"truncate": 16383}),
            None,
            None,
            "NotABucket",
        ),
        (
            "key check changed",
            json!({"xor": [9, 0x80]}),
            None,
            None,
            "WrongKey",
        ),
        (
            "seq changed",
            json!({"xor": [8, 1]}),
            None,
            None,
            "Tampered",
        ),
        (
            "nonce changed",
            json!({"xor": [48, 1]}),
            None,
            None,
            "Tampered",
        ),
        (
            "ciphertext changed",
            json!({"xor": [1000, 4]}),
            None,
            None,
            "Tampered",
        ),
        (
            "tag changed",
            json!({"xor": [16383, 0x10]}),
            None,
            None,
            "Tampered",
        ),
        (
            "grown to the next bucket",
            json!({"append_zeros": 16384}),
            None,
            None,
            "Tampered",
        ),
        (
            "older than the last seen seq",
            json!({}),
            None,
            Some(2u64),
            "RolledBack",
        ),
    ];
    let refusals: Vec<Value> = mutations
        .into_iter()
        .map(|(what, mutation, other_key, last_seen, error)| {
            let opening = match &other_key {
                Some(k) => {
                    BackupKey::derive(&hex::decode(k).unwrap().try_into().unwrap(), &account)
                }
                None => BackupKey::derive(&export_key, &account),
            };
            let got = backup::open(&opening, &mutate(&minimal_sealed, &mutation), last_seen);
            assert_eq!(got.as_ref().map(|_| ()).map_err(name), Err(error), "{what}");
            json!({"what": what, "mutation": mutation, "export_key": other_key,
                   "last_seen_seq": last_seen, "error": error})
        })
        .collect();

    let stranger = AccountId::from_bytes([0x5a; 16]);
    let min_encoded = minimal.encode().unwrap();
    let stranger_contents = BackupContents::new(stranger, copy(&identity), WRITTEN_AT)
        .encode()
        .unwrap();
    let mut v2 = min_encoded.to_vec();
    v2[0] = 2;
    let inner = [
        (
            "no 0x80 terminator",
            padded(&min_encoded, 16384 - 65, false),
            "BadPadding",
        ),
        (
            "padded to 32 KiB though it fits 16 KiB",
            padded(&min_encoded, 32768 - 65, true),
            "BadPadding",
        ),
        (
            "contents of another account",
            padded(&stranger_contents, 16384 - 65, true),
            "AccountMismatch",
        ),
        (
            "contents version 2",
            padded(&v2, 16384 - 65, true),
            "UnknownContentsVersion",
        ),
    ];
    let inner_refusals: Vec<Value> = inner
        .into_iter()
        .map(|(what, plaintext, error)| {
            let sealed = seal_by_hand(&raw_aead, &raw_check, &account, 1, &plaintext);
            let got = backup::open(&key, &sealed, None);
            assert_eq!(got.as_ref().map(|_| ()).map_err(name), Err(error), "{what}");
            let end = plaintext.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            json!({"what": what, "seq": 1, "nonce": hex(FIXED_NONCE),
                   "plaintext_head": hex(&plaintext[..end]), "plaintext_len": plaintext.len(),
                   "error": error})
        })
        .collect();

    let contents_cases = backup_spec::contents_cases(&account, &identity, WRITTEN_AT);
    let contents_refusals: Vec<Value> = contents_cases
        .into_iter()
        .map(|(what, bytes, error)| {
            let got = BackupContents::decode(&bytes);
            assert_eq!(got.as_ref().map(|_| ()).map_err(name), Err(error), "{what}");
            json!({"what": what, "contents": hex(&bytes), "error": error})
        })
        .collect();

    let buckets: Vec<Value> = [
        0usize, 16_318, 16_319, 32_702, 32_703, 16_777_150, 16_777_151,
    ]
    .iter()
    .map(|&n| json!({"contents_len": n, "sealed_len": backup::backup_bucket_for(n)}))
    .collect();

    json!({
        "description": "account backups (PROTOCOL.md 13) sealed under a key derived from a fixed \
            OPAQUE export key; refusals of mutated backups, of authentic plaintexts with bad \
            padding or contents, and of bad contents encodings",
        "seed": SEED,
        "labels": {"aead_key": String::from_utf8_lossy(labels::BACKUP_AEAD_KEY),
                   "key_check": String::from_utf8_lossy(labels::BACKUP_KEY_CHECK)},
        "export_key": hex(export_key),
        "account": hex(account.as_bytes()),
        "aead_key": hex(raw_aead),
        "key_check": hex(raw_check),
        "buckets": buckets,
        "cases": cases,
        "refusals": refusals,
        "inner_refusals": inner_refusals,
        "contents_refusals": contents_refusals,
    })
}

#[test]
fn backup_vectors() {
    check_or_regenerate("backup.json", &generate());
}

/// The committed file opens with the library: its sealed bytes give back
/// exactly the encoded contents it lists.
#[test]
fn committed_backups_open() {
    let v = committed("backup.json");
    let export_key: [u8; 64] = hex::decode(v["export_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let account = AccountId::from_hex(v["account"].as_str().unwrap()).unwrap();
    let key = BackupKey::derive(&export_key, &account);
    for case in v["cases"].as_array().unwrap() {
        let sealed = hex::decode(case["sealed"].as_str().unwrap()).unwrap();
        let opened = backup::open(&key, &sealed, case["seq"].as_u64()).unwrap();
        assert_eq!(
            hex(&*opened.contents.encode().unwrap()),
            case["contents_encoded"].as_str().unwrap()
        );
        assert_eq!(describe(&opened.contents), case["contents"]);
    }
}
