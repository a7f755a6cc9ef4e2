//! The wire and content vectors checked against docs/PROTOCOL.md as a
//! stranger would implement it, not against the encoder that wrote them.
//!
//! - A second encoder, written here from the encoding rules of §9.2 and the
//!   field tables of §9.5, §9.7, §9.8, §10.2, §10.3 and §10.5 (tags, field
//!   order and types as literals), turns every example's `value` in
//!   `docs/test-vectors/wire.json` and `content.json` into bytes; they must
//!   equal the file's `hex`. (`vectors_wire.rs` ties the file to the code, so
//!   together the code is held to the spec.)
//! - The byte examples printed in the spec decode to the values it names and
//!   re-encode to the same bytes.
//! - Every error code of §9.6 (number, name, retry, fatal) and every limit
//!   of §9.9 and §10.4 is a literal here, compared with the code and with the
//!   files; error codes are decoded from hand-built `Closing` frames, so the
//!   code's own list of codes is not what is checked.
//!
//! Must never: build an expected byte string by calling umbra's encoders, or
//! read a number it checks from the crate's constants.

mod common;

use umbra_protocol::consts;
use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::{self, ErrorCode, RelayFrame, Request, Response, WireError};

mod spec_encoder;

use spec_encoder::{spec_frame, unhex, varint, CLIENT_FRAME, CONTENT, RELAY_FRAME};

// ----- the vector files against the spec's encoding --------------------------

#[test]
fn every_wire_vector_is_the_spec_encoding_of_its_value() {
    let file = common::committed("wire.json");
    let mut checked = 0;
    for (list, ty) in [
        ("client_frames", &CLIENT_FRAME),
        ("relay_frames", &RELAY_FRAME),
    ] {
        for entry in file[list].as_array().expect("a list of frames") {
            let at = format!("{list}/{}", entry["name"]);
            let expected = spec_frame(ty, &entry["value"], &at);
            assert_eq!(entry["hex"].as_str(), Some(expected.as_str()), "{at}");
            checked += 1;
        }
    }
    // 20 client frames, 15 responses and 5 pushes (see vectors_wire.rs),
    // then 10 device requests and 7 device responses (device_frames), then
    // LoginEnrol and LoginEnrolled, then 3 key-transparency requests and 3
    // answers, then LoginDevice.
    assert_eq!(
        checked,
        20 + 15 + 5 + 10 + 7 + 2 + 6 + 1,
        "the file lost or gained examples"
    );
    assert_eq!(file["wire_version"], 1);
    assert_eq!(file["min_supported_version"], 1);
    assert_eq!(file["version_rejection_notice"], "000101");
}

#[test]
fn every_content_vector_is_the_spec_encoding_of_its_value() {
    let file = common::committed("content.json");
    let examples = file["examples"].as_array().expect("a list of examples");
    for entry in examples {
        let at = format!("content/{}", entry["name"]);
        let expected = spec_frame(&CONTENT, &entry["value"], &at);
        assert_eq!(entry["hex"].as_str(), Some(expected.as_str()), "{at}");
    }
    // Twenty-four variants (ExpirationTimer the last), GroupControl twice
    // (a Create and an Add), GroupSync twice (a head, and none).
    assert_eq!(examples.len(), 24 + 2, "the file lost or gained examples");
    assert_eq!(file["content_version"], 1);
}

// ----- the spec's own byte examples ------------------------------------------

#[test]
fn the_spec_examples_decode_and_encode_as_printed() {
    // §9.7: Ping with request id 7.
    let ping = unhex("01 07 10");
    let frame = wire::decode_client(&ping).expect("spec example decodes");
    assert_eq!((frame.request_id, &frame.request), (7, &Request::Ping));
    assert_eq!(wire::encode_client(&frame).expect("encodes"), ping);

    // §9.7: KtHead with nothing remembered, and KtLookup of `bob` (tags 33
    // and 34, §16.9).
    let head = unhex("01 07 21 00 00");
    let frame = wire::decode_client(&head).expect("spec example decodes");
    assert_eq!(
        frame.request,
        Request::KtHead {
            known: None,
            entry_of: None
        }
    );
    assert_eq!(wire::encode_client(&frame).expect("encodes"), head);
    let mut lookup = unhex("01 07 22 00 03");
    lookup.extend_from_slice(b"bob");
    let frame = wire::decode_client(&lookup).expect("spec example decodes");
    assert!(
        matches!(&frame.request, Request::KtLookup { label: wire::AccountRef::Username(n) } if n.as_str() == "bob"),
        "{frame:?}"
    );
    assert_eq!(wire::encode_client(&frame).expect("encodes"), lookup);

    // §9.7: LoginDevice for device 2 (tag 36, §15.6).
    let again = unhex("01 07 24 02");
    let frame = wire::decode_client(&again).expect("spec example decodes");
    assert_eq!(
        frame.request,
        Request::LoginDevice {
            device: wire::DeviceId(2)
        }
    );
    assert_eq!(wire::encode_client(&frame).expect("encodes"), again);

    // §9.8: Error { RateLimited, "slow down", Some(30) } for request 1.
    let mut error = unhex("01 00 01 0b 08 09");
    error.extend_from_slice(b"slow down");
    error.extend_from_slice(&unhex("01 1e"));
    match wire::decode_relay(&error).expect("spec example decodes") {
        RelayFrame::Response {
            request_id: 1,
            response:
                ref response @ Response::Error {
                    code,
                    ref message,
                    retry_after_secs: Some(30),
                },
        } => {
            assert_eq!(code.name(), "RateLimited");
            assert_eq!(message, "slow down");
            let again = RelayFrame::Response {
                request_id: 1,
                response: response.clone(),
            };
            assert_eq!(wire::encode_relay(&again).expect("encodes"), error);
        }
        other => panic!("spec example decoded as {other:?}"),
    }

    // §9.8: Resolved { "carol", account, None } for request 10, then the
    // same with a 128-byte identity.
    let account = [0x5c; 16];
    let mut resolved = unhex("01 00 0a 08 05");
    resolved.extend_from_slice(b"carol");
    resolved.push(0x10);
    resolved.extend_from_slice(&account);
    let mut with_identity = resolved.clone();
    resolved.push(0x00);
    with_identity.extend_from_slice(&unhex("01 80 01"));
    with_identity.extend_from_slice(&[0x77; 128]);
    for (bytes, identity) in [(resolved, None), (with_identity, Some(vec![0x77; 128]))] {
        let frame = wire::decode_relay(&bytes).expect("spec example decodes");
        match &frame {
            RelayFrame::Response {
                request_id: 10,
                response:
                    Response::Resolved {
                        username,
                        account: got,
                        identity: got_identity,
                    },
            } => {
                assert_eq!(username.as_str(), "carol");
                assert_eq!(got.as_bytes(), &account);
                assert_eq!(got_identity, &identity);
            }
            other => panic!("spec example decoded as {other:?}"),
        }
        assert_eq!(wire::encode_relay(&frame).expect("encodes"), bytes);
    }

    // §10.3: Typing { started: true }, DeleteConversation and SessionReset.
    let typing = unhex("01 03 01");
    assert_eq!(
        content::decode(&typing),
        Ok(Content::Typing { started: true })
    );
    assert_eq!(
        content::encode(&Content::Typing { started: true }),
        Ok(typing)
    );
    assert_eq!(
        content::decode(&unhex("01 09")),
        Ok(Content::DeleteConversation)
    );
    assert_eq!(content::decode(&unhex("01 0e")), Ok(Content::SessionReset));

    // §9.4: the version-rejection notice.
    assert_eq!(
        wire::version_rejection_notice().as_slice(),
        unhex("00 01 01")
    );
    assert_eq!(
        wire::decode_client(&unhex("00 01 01")),
        Err(WireError::PeerRejectedVersion { min: 1, max: 1 })
    );
}

// ----- §9.6 error codes ------------------------------------------------------

/// (number, name, retry, fatal), copied from the table in §9.6.
const ERROR_CODES: [(u16, &str, bool, bool); 26] = [
    (1, "BadFrame", false, true),
    (2, "UnsupportedVersion", false, true),
    (3, "FrameTooLarge", false, true),
    (4, "NotAuthenticated", false, false),
    (5, "AuthFailed", false, false),
    (6, "UsernameTaken", false, false),
    (7, "InvalidUsername", false, false),
    (8, "RateLimited", true, false),
    (9, "UnknownRecipient", false, false),
    (10, "QueueFull", true, false),
    (11, "EnvelopeTooLarge", false, false),
    (12, "TooManyRecipients", false, false),
    (13, "BadSignature", false, false),
    (14, "TooManyPreKeys", false, false),
    (15, "NoPreKeys", false, false),
    (16, "TokenExpired", false, false),
    (17, "Internal", true, false),
    (18, "Replaced", false, true),
    (19, "ShuttingDown", true, true),
    (20, "UnknownUsername", false, false),
    (21, "AlreadyAuthenticated", false, false),
    (22, "UnknownExchange", false, false),
    (23, "BadPreKey", false, false),
    (24, "LimitExceeded", false, false),
    (25, "IdentityInUse", false, false),
    (26, "StaleDeviceList", false, false),
];

/// `Closing { code: n, reason: "" }`, built by hand: version, tag 5,
/// varint code, empty string.
fn closing_with(code: u16) -> Vec<u8> {
    let mut out = vec![1, 5];
    varint(u64::from(code), &mut out);
    out.push(0);
    out
}

#[test]
fn error_codes_are_the_numbers_the_spec_lists() {
    for (number, name, retry, fatal) in ERROR_CODES {
        let bytes = closing_with(number);
        let code = match wire::decode_relay(&bytes) {
            Ok(RelayFrame::Closing { code, reason }) if reason.is_empty() => code,
            other => panic!("code {number} ({name}) in a Closing frame: {other:?}"),
        };
        assert_eq!(code.as_u16(), number);
        assert_eq!(code.name(), name, "code {number}");
        assert_eq!(code.is_retryable(), retry, "{name}: retry");
        assert_eq!(code.is_fatal(), fatal, "{name}: fatal");
        let again = RelayFrame::Closing {
            code,
            reason: String::new(),
        };
        assert_eq!(wire::encode_relay(&again).expect("encodes"), bytes);
    }
    // Numbers outside the table make the frame Malformed (§9.6), so the
    // code cannot know a code the spec does not list.
    for number in [0u16, 27, 300, u16::MAX] {
        assert!(
            matches!(
                wire::decode_relay(&closing_with(number)),
                Err(WireError::Malformed(_))
            ),
            "code {number} is not in the spec and must be refused"
        );
    }
    assert_eq!(ErrorCode::ALL.len(), ERROR_CODES.len());

    let file = common::committed("wire.json");
    let listed: Vec<(u64, &str, bool, bool)> = file["error_codes"]
        .as_array()
        .expect("a list of codes")
        .iter()
        .map(|c| {
            (
                c["value"].as_u64().expect("number"),
                c["name"].as_str().expect("name"),
                c["retryable"].as_bool().expect("retryable"),
                c["fatal"].as_bool().expect("fatal"),
            )
        })
        .collect();
    let spec: Vec<(u64, &str, bool, bool)> = ERROR_CODES
        .iter()
        .map(|&(n, name, r, f)| (u64::from(n), name, r, f))
        .collect();
    assert_eq!(listed, spec, "wire.json's error codes differ from §9.6");
}

// ----- §9.9 and §10.4 limits -------------------------------------------------

#[test]
fn limits_are_the_numbers_the_spec_lists() {
    // (name, value in §9.9 / §9.5, value in the code)
    let wire_limits: [(&str, usize, usize); 15] = [
        ("MAX_FRAME_BYTES", 262_144, wire::MAX_FRAME_BYTES),
        ("MAX_ENVELOPE_BYTES", 98_304, wire::MAX_ENVELOPE_BYTES),
        (
            "MAX_RECIPIENTS_PER_SEND",
            1_024,
            wire::MAX_RECIPIENTS_PER_SEND,
        ),
        (
            "ONE_TIME_PREKEYS_PER_UPLOAD_MAX",
            100,
            wire::ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
        ),
        ("MAX_ACKS_PER_FRAME", 1_024, wire::MAX_ACKS_PER_FRAME),
        ("MAX_EPHEMERAL_BYTES", 4_096, wire::MAX_EPHEMERAL_BYTES),
        (
            "MAX_OPAQUE_MESSAGE_BYTES",
            4_096,
            wire::MAX_OPAQUE_MESSAGE_BYTES,
        ),
        ("MAX_IDENTITY_BYTES", 1_024, wire::MAX_IDENTITY_BYTES),
        ("MAX_REASON_BYTES", 1_024, wire::MAX_REASON_BYTES),
        ("USERNAME_MIN_LEN", 3, wire::USERNAME_MIN_LEN),
        ("USERNAME_MAX_LEN", 32, wire::USERNAME_MAX_LEN),
        ("MAX_DEVICES_PER_ACCOUNT", 8, wire::MAX_DEVICES_PER_ACCOUNT),
        ("MAX_DEVICE_LIST_BYTES", 122, wire::MAX_DEVICE_LIST_BYTES),
        (
            "MAX_LINK_MESSAGE_BYTES",
            32_768,
            wire::MAX_LINK_MESSAGE_BYTES,
        ),
        (
            "MAX_LINK_MESSAGES_PER_SIDE",
            4,
            wire::MAX_LINK_MESSAGES_PER_SIDE,
        ),
    ];
    // (name, value in §10.4, value in the code)
    let content_limits: [(&str, usize, usize); 11] = [
        ("MAX_CONTENT_BYTES", 65_535, content::MAX_CONTENT_BYTES),
        ("MAX_TEXT_BYTES", 32_768, content::MAX_TEXT_BYTES),
        ("MAX_IDS_PER_RECEIPT", 256, content::MAX_IDS_PER_RECEIPT),
        ("MAX_FILE_NAME_BYTES", 255, content::MAX_FILE_NAME_BYTES),
        (
            "MAX_CONTENT_TYPE_BYTES",
            127,
            content::MAX_CONTENT_TYPE_BYTES,
        ),
        ("MAX_BLOB_ID_BYTES", 64, content::MAX_BLOB_ID_BYTES),
        ("MAX_GROUP_NAME_BYTES", 128, content::MAX_GROUP_NAME_BYTES),
        ("MAX_GROUP_MEMBERS", 1_024, content::MAX_GROUP_MEMBERS),
        ("MAX_REACTION_BYTES", 64, content::MAX_REACTION_BYTES),
        (
            "MIN_EXPIRATION_TIMER_SECS",
            1,
            consts::MIN_EXPIRATION_TIMER_SECS as usize,
        ),
        (
            "MAX_EXPIRATION_TIMER_SECS",
            2_419_200,
            consts::MAX_EXPIRATION_TIMER_SECS as usize,
        ),
    ];
    for (file, limits) in [
        ("wire.json", &wire_limits[..]),
        ("content.json", &content_limits[..]),
    ] {
        let listed = &common::committed(file)["limits"];
        assert_eq!(
            listed.as_object().map(|o| o.len()),
            Some(limits.len()),
            "{file} lists other limits than the spec"
        );
        for &(name, spec, code) in limits {
            assert_eq!(code, spec, "{name} in the code");
            assert_eq!(listed[name].as_u64(), Some(spec as u64), "{name} in {file}");
        }
    }
    // The frame limit is enforced at exactly that size (§9.3 step 1).
    let mut big = vec![1u8];
    big.resize(262_144 + 1, 0);
    assert!(matches!(
        wire::decode_client(&big),
        Err(WireError::TooLarge { .. })
    ));
}
