//! Test vectors for content (docs/PROTOCOL.md section 10): one example of
//! every content variant (its value as JSON and its exact bytes as hex) and
//! inputs that must be refused with the named error. Written to
//! docs/test-vectors/content.json through `common::check_or_regenerate`;
//! the examples draw from seed 0x18, as they did when they lived in
//! `vectors_wire.rs`, so no byte changed.

mod common;
mod material;

use material::Material;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use umbra_protocol::content::{self, Content, ContentError, FileKey, FilePointer, MessageId};
use umbra_protocol::group::{
    ChangeHash, GroupAction, GroupChange, GroupId, GroupLog, GroupPolicy, GroupWelcome, NewMember,
};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

fn name(s: &str) -> Username {
    Username::parse(s).expect("example usernames are valid")
}

fn content_examples(m: &mut Material) -> Vec<Content> {
    let group = GroupId(m.bytes());
    let member = |m: &mut Material, user: &str| NewMember {
        account: m.account(),
        username: name(user),
    };
    let (alice, bob, carol) = (member(m, "alice"), member(m, "bob"), member(m, "carol"));
    // Ed25519 signing is deterministic, so fixed keys give fixed changes.
    let alice_key = IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x19; 32]));
    let create = GroupChange::create(
        &alice_key,
        alice.account,
        group,
        "book club",
        GroupPolicy {
            members_may_rename: false,
        },
        vec![alice.clone(), bob],
    )
    .expect("valid create");
    let mut log = GroupLog::create(create.clone(), &alice_key.public()).expect("own create");
    let add =
        GroupChange::add(&alice_key, alice.account, log.state(), vec![carol]).expect("valid add");
    log.apply(add.clone(), &alice_key.public())
        .expect("own add");
    let welcome = GroupWelcome::new(log.state().clone(), add.clone()).expect("welcome");
    vec![
        Content::Text {
            id: MessageId(m.bytes()),
            body: "héllo, bob\n".to_owned(),
            sent_at_ms: 1_795_000_000_456,
        },
        Content::DeliveryReceipt {
            ids: vec![MessageId(m.bytes())],
        },
        Content::ReadReceipt {
            ids: vec![MessageId(m.bytes()), MessageId(m.bytes())],
        },
        Content::Typing { started: true },
        Content::Presence { online: false },
        Content::FilePointer(FilePointer {
            id: MessageId(m.bytes()),
            blob_id: m.vec(16),
            key: FileKey::from_bytes(m.bytes()),
            digest: m.bytes(),
            size: 123_456,
            file_name: "report.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
        }),
        Content::GroupControl {
            change: create.as_bytes().to_vec(),
        },
        Content::GroupControl {
            change: add.as_bytes().to_vec(),
        },
        Content::GroupWelcome {
            state: welcome.state_bytes(),
            change: welcome.change_bytes().to_vec(),
        },
        Content::SenderKeyDistribution {
            group,
            payload: m.vec(24),
        },
        Content::DeleteConversation,
        Content::ProfileChange {
            new_username: name("bobby"),
        },
        Content::GroupTyping {
            group,
            started: true,
        },
        Content::GroupText {
            id: MessageId(m.bytes()),
            body: "hi team".to_owned(),
            sent_at_ms: 1_795_000_000_789,
            head: *add.hash(),
            version: 1,
        },
        Content::GroupSync {
            group,
            have: *create.hash(),
            version: 0,
        },
        Content::GroupSync {
            group,
            have: ChangeHash::ZERO,
            version: 0,
        },
        Content::SessionReset,
        Content::GroupSyncDone {
            group,
            head: *add.hash(),
            version: 1,
        },
        Content::GroupKeyRequest {
            group,
            epoch: 3,
            chain_id: 0x8123_4567,
            iteration: 300,
        },
        // Appended after every earlier example, so the bytes drawn for
        // those (and so their vectors) stay as they were.
        Content::TextReply {
            id: MessageId(m.bytes()),
            target: MessageId(m.bytes()),
            body: "yes, at 8".to_owned(),
            sent_at_ms: 1_795_000_001_000,
        },
        Content::GroupTextReply {
            id: MessageId(m.bytes()),
            target: MessageId(m.bytes()),
            body: "me too".to_owned(),
            sent_at_ms: 1_795_000_001_100,
            head: *add.hash(),
            version: 1,
        },
        Content::Reaction {
            id: MessageId(m.bytes()),
            target: MessageId(m.bytes()),
            emoji: "👍🏽".to_owned(),
            remove: false,
            sent_at_ms: 1_795_000_001_200,
        },
        Content::Edit {
            id: MessageId(m.bytes()),
            target: MessageId(m.bytes()),
            body: "yes, at 9".to_owned(),
            sent_at_ms: 1_795_000_001_300,
        },
        Content::DeleteForEveryone {
            id: MessageId(m.bytes()),
            target: MessageId(m.bytes()),
            sent_at_ms: 1_795_000_001_400,
        },
        // Drawn last, so no earlier example's bytes moved when it came.
        sent_transcript(m),
        // After the transcript, for the same reason (§10.8).
        Content::ExpirationTimer {
            id: MessageId(m.bytes()),
            seconds: 3600,
            sent_at_ms: 1_795_000_001_600,
        },
    ]
}

/// A sent transcript (§10.7) of a text to another account.
fn sent_transcript(m: &mut Material) -> Content {
    let destination = m.account();
    let original = Content::Text {
        id: MessageId(m.bytes()),
        body: "on my way".to_owned(),
        sent_at_ms: 1_795_000_001_500,
    };
    content::sent_transcript(destination, &original).expect("a text is transcribable")
}

fn content_name(value: &Content) -> String {
    match value {
        Content::GroupControl { change } => {
            let change = GroupChange::from_bytes(change).expect("examples are valid changes");
            let op = match change.action() {
                GroupAction::Create { .. } => "Create",
                GroupAction::Add { .. } => "Add",
                GroupAction::Remove { .. } => "Remove",
                GroupAction::Leave => "Leave",
                GroupAction::Rename { .. } => "Rename",
                GroupAction::Promote { .. } => "Promote",
            };
            format!("GroupControl/{op}")
        }
        other => other.kind().to_owned(),
    }
}

fn content_error_name(error: &ContentError) -> String {
    match error {
        ContentError::Frame(inner) => format!("Frame/{}", common::wire_error_name(inner)),
        ContentError::Group(inner) => format!("Group/{}", inner.name()),
        other => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[test]
fn content_vectors() {
    let mut m = Material::new(0x18);

    let mut examples = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for value in content_examples(&mut m) {
        let bytes = content::encode(&value).expect("examples encode");
        assert_eq!(content::decode(&bytes).as_ref(), Ok(&value));
        names.insert(content_name(&value));
        examples.push(json!({
            "name": content_name(&value),
            "value": serde_json::to_value(&value).expect("content serializes to JSON"),
            "hex": common::hex(&bytes),
        }));
    }
    assert_eq!(
        names.len(),
        24 + 1,
        "every content variant has a vector, GroupControl a Create and an Add"
    );

    let raw = |value: &Content| {
        let mut out = vec![content::CONTENT_VERSION];
        out.extend(postcard::to_allocvec(value).expect("postcard encodes"));
        out
    };
    let id = MessageId([0x11; 16]);
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("empty input", vec![]),
        ("version 2", vec![2, 3, 1]),
        ("trailing byte after Typing", vec![1, 3, 1, 0]),
        ("unknown content tag 24", vec![1, 24]),
        (
            "disappearing timer one second over MAX_EXPIRATION_TIMER_SECS",
            raw(&Content::ExpirationTimer {
                id,
                seconds: umbra_protocol::consts::MAX_EXPIRATION_TIMER_SECS + 1,
                sent_at_ms: 0,
            }),
        ),
        (
            "group sync naming no head with version 3",
            raw(&Content::GroupSync {
                group: GroupId([0x22; 32]),
                have: ChangeHash::ZERO,
                version: 3,
            }),
        ),
        (
            "group change of ten bytes",
            raw(&Content::GroupControl {
                change: vec![1; 10],
            }),
        ),
        (
            "text with an escape character",
            raw(&Content::Text {
                id,
                body: "\u{1b}[31mred".to_owned(),
                sent_at_ms: 0,
            }),
        ),
        (
            "text one byte over MAX_TEXT_BYTES",
            raw(&Content::Text {
                id,
                body: "a".repeat(content::MAX_TEXT_BYTES + 1),
                sent_at_ms: 0,
            }),
        ),
        (
            "edit naming itself",
            raw(&Content::Edit {
                id,
                target: id,
                body: "x".to_owned(),
                sent_at_ms: 0,
            }),
        ),
        (
            "reaction with a space",
            raw(&Content::Reaction {
                id,
                target: MessageId([0x12; 16]),
                emoji: "a b".to_owned(),
                remove: false,
                sent_at_ms: 0,
            }),
        ),
        (
            "empty reaction",
            raw(&Content::Reaction {
                id,
                target: MessageId([0x12; 16]),
                emoji: String::new(),
                remove: true,
                sent_at_ms: 0,
            }),
        ),
        (
            "reaction one byte over MAX_REACTION_BYTES",
            raw(&Content::Reaction {
                id,
                target: MessageId([0x12; 16]),
                emoji: "x".repeat(content::MAX_REACTION_BYTES + 1),
                remove: false,
                sent_at_ms: 0,
            }),
        ),
        (
            "reply text with an escape character",
            raw(&Content::TextReply {
                id,
                target: MessageId([0x12; 16]),
                body: "\u{1b}[2J".to_owned(),
                sent_at_ms: 0,
            }),
        ),
        (
            "sent transcript of a typing notice",
            raw(&Content::SentTranscript {
                destination: AccountId::from_bytes([0x33; 16]),
                content: vec![1, 3, 1],
            }),
        ),
        (
            "sent transcript inside a sent transcript",
            raw(&Content::SentTranscript {
                destination: AccountId::from_bytes([0x33; 16]),
                content: raw(&Content::SentTranscript {
                    destination: AccountId::from_bytes([0x34; 16]),
                    content: raw(&Content::Text {
                        id,
                        body: "x".to_owned(),
                        sent_at_ms: 0,
                    }),
                }),
            }),
        ),
        (
            "sent transcript of a text with an escape character",
            raw(&Content::SentTranscript {
                destination: AccountId::from_bytes([0x33; 16]),
                content: raw(&Content::Text {
                    id,
                    body: "\u{1b}[31mred".to_owned(),
                    sent_at_ms: 0,
                }),
            }),
        ),
        (
            "read receipt with no ids",
            raw(&Content::ReadReceipt { ids: vec![] }),
        ),
        (
            "file name with a path separator",
            raw(&Content::FilePointer(FilePointer {
                id,
                blob_id: vec![1],
                key: FileKey::from_bytes([0; 32]),
                digest: [0; 32],
                size: 1,
                file_name: "../x".to_owned(),
                content_type: "text/plain".to_owned(),
            })),
        ),
    ];
    let invalid: Vec<Value> = invalid
        .into_iter()
        .map(|(what, bytes)| {
            let error = content::decode(&bytes).expect_err("invalid vectors are refused");
            // A long input is written as its longest run of one byte and
            // what stands around it, so the file stays readable and still
            // says every byte exactly: the input is `hex`, then
            // `repeat.count` copies of `repeat.byte`, then `hex_after`.
            if bytes.len() > 256 {
                let (start, len) = longest_run(&bytes);
                let rest = bytes.len() - len;
                assert!(
                    rest <= 256,
                    "a long invalid input must be mostly one repeated byte"
                );
                return json!({
                    "what": what,
                    "hex": common::hex(&bytes[..start]),
                    "repeat": { "byte": common::hex(&bytes[start..start + 1]), "count": len },
                    "hex_after": common::hex(&bytes[start + len..]),
                    "error": content_error_name(&error),
                });
            }
            json!({ "what": what, "hex": common::hex(&bytes), "error": content_error_name(&error) })
        })
        .collect();

    let vectors = json!({
        "description": "umbra content (inside the encryption): [content version u8][postcard body]; see docs/PROTOCOL.md §10. 'value' is serde JSON (byte strings as arrays of numbers); 'hex' is the exact plaintext before padding. An invalid input with a 'repeat' is 'hex', then repeat.count copies of the byte repeat.byte, then 'hex_after'.",
        "content_version": content::CONTENT_VERSION,
        "limits": {
            "MAX_CONTENT_BYTES": content::MAX_CONTENT_BYTES,
            "MAX_TEXT_BYTES": content::MAX_TEXT_BYTES,
            "MAX_IDS_PER_RECEIPT": content::MAX_IDS_PER_RECEIPT,
            "MAX_FILE_NAME_BYTES": content::MAX_FILE_NAME_BYTES,
            "MAX_CONTENT_TYPE_BYTES": content::MAX_CONTENT_TYPE_BYTES,
            "MAX_BLOB_ID_BYTES": content::MAX_BLOB_ID_BYTES,
            "MAX_GROUP_NAME_BYTES": content::MAX_GROUP_NAME_BYTES,
            "MAX_GROUP_MEMBERS": content::MAX_GROUP_MEMBERS,
            "MAX_REACTION_BYTES": content::MAX_REACTION_BYTES,
            "MIN_EXPIRATION_TIMER_SECS": umbra_protocol::consts::MIN_EXPIRATION_TIMER_SECS,
            "MAX_EXPIRATION_TIMER_SECS": umbra_protocol::consts::MAX_EXPIRATION_TIMER_SECS,
        },
        "examples": examples,
        "invalid": invalid,
    });
    common::check_or_regenerate("content.json", &vectors);
}

/// The start and length of the longest run of one repeated byte.
fn longest_run(bytes: &[u8]) -> (usize, usize) {
    let mut best = (0, 0);
    let mut start = 0;
    for i in 1..=bytes.len() {
        if i == bytes.len() || bytes[i] != bytes[start] {
            if i - start > best.1 {
                best = (start, i - start);
            }
            start = i;
        }
    }
    best
}
