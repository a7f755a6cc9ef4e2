//! Test vectors for wire frames and content: one example of every frame,
//! reply, push and content variant (its value as JSON and its exact bytes as
//! hex), every error code's number, every limit, and inputs that must be
//! refused with the named error. Written to docs/test-vectors/wire.json and
//! content.json through `common::check_or_regenerate`.

mod common;
mod device_frames;
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
use umbra_protocol::wire::{
    self, AccountRef, Address, ClientFrame, DeviceId, ErrorCode, OutgoingEnvelope,
    PreKeyBundleWire, RelayFrame, Request, Response, SendOutcome, SessionToken, Username,
    WireError,
};

fn name(s: &str) -> Username {
    Username::parse(s).expect("example usernames are valid")
}

fn client_examples(m: &mut Material) -> Vec<ClientFrame> {
    let requests = vec![
        Request::RegisterStart {
            username: name("alice"),
            opaque_request: m.vec(32),
        },
        Request::RegisterFinish {
            username: name("alice"),
            opaque_upload: m.vec(48),
        },
        Request::LoginStart {
            username: name("alice"),
            opaque_request: m.vec(40),
        },
        Request::LoginFinish {
            login_id: 0x0123_4567_89ab_cdef,
            opaque_finalization: m.vec(24),
        },
        Request::Authenticate {
            token: SessionToken::from_bytes(m.bytes()),
            device: DeviceId::PRIMARY,
        },
        Request::Logout { everywhere: true },
        Request::PublishKeys {
            identity: m.vec(128),
            signed_prekey: m.signed_prekey(),
            last_resort: Some(m.prekey(0xffff_ffff)),
        },
        Request::UploadPreKeys {
            prekeys: vec![m.prekey(100), m.prekey(101)],
        },
        Request::PreKeyCount,
        Request::FetchBundle {
            target: AccountRef::Username(name("bob")),
        },
        Request::ResolveUsername {
            username: name("bob"),
        },
        Request::Send {
            messages: vec![
                OutgoingEnvelope {
                    to: m.address(),
                    envelope: m.vec(20),
                },
                OutgoingEnvelope {
                    to: Address {
                        account: m.account(),
                        device: DeviceId(2),
                    },
                    envelope: m.vec(20),
                },
            ],
        },
        Request::Ack {
            seqs: vec![1, 2, 300],
        },
        Request::Ephemeral {
            to: m.address(),
            payload: m.vec(16),
        },
        Request::Rename {
            new_username: name("alice.w"),
        },
        Request::DeleteAccount,
        Request::Ping,
    ];
    let mut frames: Vec<ClientFrame> = requests
        .into_iter()
        .zip(1u64..)
        .map(|(request, request_id)| ClientFrame {
            request_id,
            request,
        })
        .collect();
    // One more FetchBundle, by account id, to pin AccountRef's second tag.
    frames.push(ClientFrame {
        request_id: 200,
        request: Request::FetchBundle {
            target: AccountRef::Account(m.account()),
        },
    });
    // The password-change pair (tags 17 and 18), from material of their
    // own so that adding them left every earlier vector's bytes as they were.
    let mut own = Material::new(0x2a);
    frames.push(ClientFrame {
        request_id: 201,
        request: Request::PasswordChangeStart {
            credential_request: own.vec(96),
            registration_request: own.vec(32),
        },
    });
    frames.push(ClientFrame {
        request_id: 202,
        request: Request::PasswordChangeFinish {
            change_id: 0x0fed_cba9_8765_4321,
            credential_finalization: own.vec(64),
            registration_upload: own.vec(192),
        },
    });
    // The device requests (tags 19 to 28), from their own seed likewise.
    frames.extend(device_frames::client_examples());
    frames
}

fn relay_examples(m: &mut Material) -> Vec<RelayFrame> {
    let responses = vec![
        Response::RegisterResponse {
            opaque_response: m.vec(64),
        },
        Response::RegisterDone {
            account: m.account(),
        },
        Response::LoginResponse {
            login_id: 0x0123_4567_89ab_cdef,
            opaque_response: m.vec(64),
        },
        Response::LoginDone {
            token: SessionToken::from_bytes(m.bytes()),
            account: m.account(),
            expires_at: 1_797_000_000,
        },
        Response::Authenticated {
            address: m.address(),
        },
        Response::SendResult {
            results: vec![
                SendOutcome::Accepted { seq: 41 },
                SendOutcome::Rejected {
                    code: ErrorCode::UnknownRecipient,
                },
            ],
        },
        Response::Bundle(Box::new(PreKeyBundleWire {
            account: m.account(),
            device: DeviceId::PRIMARY,
            identity: m.vec(128),
            signed_prekey: m.signed_prekey(),
            one_time_prekey: Some(m.prekey(100)),
            last_resort: Some(m.prekey(0xffff_ffff)),
        })),
        Response::PreKeyCount {
            remaining: 57,
            low_water: 20,
        },
        Response::Resolved {
            username: name("bob"),
            account: m.account(),
            identity: Some(m.vec(128)),
        },
        Response::Resolved {
            username: name("carol"),
            account: m.account(),
            identity: None,
        },
        Response::Ok,
        Response::Pong,
        Response::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".to_owned(),
            retry_after_secs: Some(30),
        },
    ];
    let mut own = Material::new(0x2b);
    let mut responses = responses;
    responses.push(Response::PasswordChangeResponse {
        change_id: 0x0fed_cba9_8765_4321,
        credential_response: own.vec(320),
        registration_response: own.vec(64),
    });
    responses.push(Response::PasswordChanged {
        token: SessionToken::from_bytes(own.bytes()),
        expires_at: 1_797_592_000,
    });
    let mut frames: Vec<RelayFrame> = responses
        .into_iter()
        .zip(1u64..)
        .map(|(response, request_id)| RelayFrame::Response {
            request_id,
            response,
        })
        .collect();
    frames.extend([
        RelayFrame::Deliver {
            seq: 41,
            envelope: m.vec(20),
            received_at_ms: 1_795_000_000_123,
        },
        RelayFrame::QueueEmpty,
        RelayFrame::EphemeralDeliver { payload: m.vec(16) },
        RelayFrame::PreKeysLow { remaining: 5 },
        RelayFrame::Closing {
            code: ErrorCode::Replaced,
            reason: "a newer connection for this device".to_owned(),
        },
    ]);
    // The device responses (tags 14 to 18), from their own seed likewise.
    frames.extend(device_frames::relay_examples());
    frames
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
    ]
}

fn response_kind(response: &Response) -> &'static str {
    if let Some(name) = device_frames::response_name(response) {
        return name;
    }
    match response {
        Response::Resolved { identity: None, .. } => "Resolved/NoIdentity",
        other => other.kind(),
    }
}

fn relay_name(frame: &RelayFrame) -> String {
    match frame {
        RelayFrame::Response { response, .. } => format!("Response/{}", response_kind(response)),
        other => other.kind().to_owned(),
    }
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

fn wire_error_name(error: &WireError) -> &'static str {
    match error {
        WireError::Empty => "Empty",
        WireError::TooLarge { .. } => "TooLarge",
        WireError::UnsupportedVersion { .. } => "UnsupportedVersion",
        WireError::PeerRejectedVersion { .. } => "PeerRejectedVersion",
        WireError::Malformed(_) => "Malformed",
        WireError::TrailingBytes { .. } => "TrailingBytes",
        WireError::NonCanonical => "NonCanonical",
        WireError::Encode(_) => "Encode",
    }
}

fn content_error_name(error: &ContentError) -> String {
    match error {
        ContentError::Frame(inner) => format!("Frame/{}", wire_error_name(inner)),
        ContentError::Group(inner) => format!("Group/{}", inner.name()),
        other => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[test]
fn wire_vectors() {
    let mut m = Material::new(0x17);

    let mut client = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for frame in client_examples(&mut m) {
        let bytes = wire::encode_client(&frame).expect("examples encode");
        assert_eq!(wire::decode_client(&bytes).as_ref(), Ok(&frame));
        kinds.insert(frame.request.kind());
        client.push(json!({
            "name": frame.request.kind(),
            "value": serde_json::to_value(&frame).expect("frames serialize to JSON"),
            "hex": common::hex(&bytes),
        }));
    }
    assert_eq!(kinds.len(), 19 + 10, "every request variant has a vector");

    let mut relay = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for frame in relay_examples(&mut m) {
        let bytes = wire::encode_relay(&frame).expect("examples encode");
        assert_eq!(wire::decode_relay(&bytes).as_ref(), Ok(&frame));
        names.insert(relay_name(&frame));
        relay.push(json!({
            "name": relay_name(&frame),
            "value": serde_json::to_value(&frame).expect("frames serialize to JSON"),
            "hex": common::hex(&bytes),
        }));
    }
    // 19 responses (Resolved, DeviceList and LinkMessages twice each) and 5 pushes.
    assert_eq!(
        names.len(),
        19 + 3 + 5,
        "every response and push has a vector"
    );

    let ping = wire::encode_client(&ClientFrame {
        request_id: 1,
        request: Request::Ping,
    })
    .expect("encodes");
    let mut trailing = ping.clone();
    trailing.push(0);
    let mut future = ping.clone();
    future[0] = wire::WIRE_VERSION + 1;
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("empty input", vec![]),
        ("version above WIRE_VERSION", future),
        ("version 0 but not a 3-byte notice", vec![0, 1, 1, 16]),
        ("version-rejection notice [0, min, max]", vec![0, 1, 1]),
        ("trailing byte after Ping", trailing),
        (
            "request_id 1 as an over-long varint",
            vec![1, 0x81, 0x00, 16],
        ),
        ("unknown request tag 17", vec![1, 1, 17]),
        ("bool that is neither 0 nor 1 (Logout)", vec![1, 1, 5, 2]),
        ("truncated body", vec![1, 1]),
        (
            "username not in canonical lower case (ResolveUsername 'Bob')",
            vec![1, 1, 10, 3, b'B', b'o', b'b'],
        ),
        (
            "account id of 15 bytes (FetchBundle by account)",
            [vec![1, 1, 9, 1, 15], vec![0xaa; 15]].concat(),
        ),
    ];
    let invalid = invalid
        .into_iter()
        .chain(device_frames::invalid_client_frames());
    let invalid: Vec<Value> = invalid
        .map(|(what, bytes)| {
            let error = wire::decode_client(&bytes).expect_err("invalid vectors are refused");
            json!({
                "what": what,
                "hex": common::hex(&bytes),
                "error": wire_error_name(&error),
                "error_code": error.code().as_u16(),
            })
        })
        .collect();

    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| json!({ "name": c.name(), "value": c.as_u16(), "retryable": c.is_retryable(), "fatal": c.is_fatal() }))
        .collect();

    let vectors = json!({
        "description": "umbra client<->relay frames: [version u8][postcard body]; see docs/PROTOCOL.md §9. 'value' is the frame as serde JSON (byte strings as arrays of numbers); 'hex' is the exact WebSocket binary message.",
        "wire_version": wire::WIRE_VERSION,
        "min_supported_version": wire::MIN_SUPPORTED_VERSION,
        "version_rejection_notice": common::hex(wire::version_rejection_notice()),
        "limits": {
            "MAX_FRAME_BYTES": wire::MAX_FRAME_BYTES,
            "MAX_ENVELOPE_BYTES": wire::MAX_ENVELOPE_BYTES,
            "MAX_RECIPIENTS_PER_SEND": wire::MAX_RECIPIENTS_PER_SEND,
            "ONE_TIME_PREKEYS_PER_UPLOAD_MAX": wire::ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
            "MAX_ACKS_PER_FRAME": wire::MAX_ACKS_PER_FRAME,
            "MAX_EPHEMERAL_BYTES": wire::MAX_EPHEMERAL_BYTES,
            "MAX_OPAQUE_MESSAGE_BYTES": wire::MAX_OPAQUE_MESSAGE_BYTES,
            "MAX_IDENTITY_BYTES": wire::MAX_IDENTITY_BYTES,
            "MAX_REASON_BYTES": wire::MAX_REASON_BYTES,
            "USERNAME_MIN_LEN": wire::USERNAME_MIN_LEN,
            "USERNAME_MAX_LEN": wire::USERNAME_MAX_LEN,
            "MAX_DEVICES_PER_ACCOUNT": wire::MAX_DEVICES_PER_ACCOUNT,
            "MAX_DEVICE_LIST_BYTES": wire::MAX_DEVICE_LIST_BYTES,
            "MAX_LINK_MESSAGE_BYTES": wire::MAX_LINK_MESSAGE_BYTES,
            "MAX_LINK_MESSAGES_PER_SIDE": wire::MAX_LINK_MESSAGES_PER_SIDE,
        },
        "error_codes": codes,
        "client_frames": client,
        "relay_frames": relay,
        "invalid_client_frames": invalid,
    });
    common::check_or_regenerate("wire.json", &vectors);
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
        22 + 1,
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
        ("unknown content tag 22", vec![1, 22]),
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
