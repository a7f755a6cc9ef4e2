//! Test vectors for wire frames: one example of every frame, reply and push
//! (its value as JSON and its exact bytes as hex), every error code's
//! number, every limit, and inputs that must be refused with the named
//! error. Written to docs/test-vectors/wire.json through
//! `common::check_or_regenerate` (content is `vectors_content.rs`).

mod common;
mod device_frames;
mod material;

use material::Material;

use serde_json::{json, Value};
use umbra_protocol::wire::{
    self, AccountRef, Address, ClientFrame, DeviceId, ErrorCode, LinkEnrolled, OutgoingEnvelope,
    PreKeyBundleWire, RelayFrame, Request, Response, SendOutcome, SessionToken, Username,
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
    // LoginEnrol (tag 32, §15.6): no fields, so no seed.
    frames.push(ClientFrame {
        request_id: 320,
        request: Request::LoginEnrol,
    });
    // The key-transparency requests (tags 33 to 35, §16.9), appended after.
    frames.extend(kt_client_examples());
    // LoginDevice (tag 36, §15.6), appended after; its answer is the
    // LoginEnrolled above, so no relay frame is added for it.
    frames.push(ClientFrame {
        request_id: 360,
        request: Request::LoginDevice {
            device: DeviceId(2),
        },
    });
    frames
}

/// `KtHead`, `KtLookup`, `KtHistory` (tags 33 to 35): fields of fixed
/// values, no seed.
fn kt_client_examples() -> Vec<ClientFrame> {
    vec![
        ClientFrame {
            request_id: 330,
            request: Request::KtHead {
                known: Some(41),
                entry_of: Some(7),
            },
        },
        ClientFrame {
            request_id: 331,
            request: Request::KtLookup {
                label: AccountRef::Username(name("bob")),
            },
        },
        ClientFrame {
            request_id: 332,
            request: Request::KtHistory {
                label: AccountRef::Account(wire::AccountId::from_bytes([0xb0; 16])),
                first: 300,
            },
        },
    ]
}

/// `KtHead`, `KtLookup`, `KtHistory` answers (tags 22 to 24), from a seed of
/// their own; the byte strings stand in for the encodings of §16
/// (`kt.json` has real ones).
fn kt_relay_examples() -> Vec<RelayFrame> {
    let mut own = Material::new(0x2f);
    let mut head = || own.vec(146 + 32);
    let (h1, h2, h3) = (head(), head(), head());
    let mut own = Material::new(0x30);
    vec![
        RelayFrame::Response {
            request_id: 330,
            response: Response::KtHead {
                head: h1,
                consistency: Some(own.vec(17 + 64)),
                entry: Some(own.vec(49)),
                inclusion: None,
            },
        },
        RelayFrame::Response {
            request_id: 331,
            response: Response::KtLookup {
                head: h2,
                proof: own.vec(81 + 32 + 64),
            },
        },
        RelayFrame::Response {
            request_id: 332,
            response: Response::KtHistory {
                head: h3,
                proof: own.vec(122 + 73 + 32),
            },
        },
    ]
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
    // LoginEnrolled (tag 21, §15.6), from a seed of its own.
    let mut own = Material::new(0x2e);
    frames.push(RelayFrame::Response {
        request_id: 320,
        response: Response::LoginEnrolled(LinkEnrolled {
            account: own.account(),
            device: DeviceId(3),
            token: SessionToken::from_bytes(own.bytes()),
            expires_at: 1_799_592_000,
        }),
    });
    frames.extend(kt_relay_examples());
    frames
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
    // The KEM requests (tags 29 to 31) have none yet; LoginEnrol has one,
    // and so has each key-transparency request and LoginDevice.
    assert_eq!(
        kinds.len(),
        19 + 10 + 1 + 3 + 1,
        "every request variant has a vector"
    );

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
    // 20 responses (Resolved, DeviceList and LinkMessages twice each; the
    // KEM responses none yet), the 3 key-transparency ones, and 5 pushes.
    assert_eq!(
        names.len(),
        20 + 3 + 3 + 5,
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
                "error": common::wire_error_name(&error),
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
