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

use serde_json::Value;
use umbra_protocol::content::{self, Content};
use umbra_protocol::wire::{self, ErrorCode, RelayFrame, Request, Response, WireError};

// ----- the spec's types ------------------------------------------------------

/// A §9.2 type.
enum Ty {
    /// `u16`/`u32`/`u64` and `ErrorCode`: LEB128 varint.
    Varint,
    Bool,
    /// Byte string: varint length, bytes.
    Bytes,
    /// Fixed array `[u8; N]`: encoded as a byte string of length N.
    Fixed(usize),
    Str,
    Opt(&'static Ty),
    List(&'static Ty),
    Struct(&'static [(&'static str, Ty)]),
    /// Variants in tag order (tag = index).
    Enum(&'static [(&'static str, Variant)]),
}

enum Variant {
    Unit,
    Newtype(&'static Ty),
    Fields(&'static [(&'static str, Ty)]),
}

use Ty::{Bool, Bytes, Fixed, List, Opt, Str, Varint};
use Variant::{Fields, Newtype, Unit};

/// §9.5
const ACCOUNT_ID: Ty = Fixed(16);
const ADDRESS: Ty = Ty::Struct(&[("account", ACCOUNT_ID), ("device", Varint)]);
const PREKEY: Ty = Ty::Struct(&[("id", Varint), ("key", Fixed(32))]);
const SIGNED_PREKEY: Ty = Ty::Struct(&[
    ("id", Varint),
    ("created_at", Varint),
    ("key", Fixed(32)),
    ("signature", Fixed(64)),
]);
const BUNDLE: Ty = Ty::Struct(&[
    ("account", ACCOUNT_ID),
    ("device", Varint),
    ("identity", Bytes),
    ("signed_prekey", SIGNED_PREKEY),
    ("one_time_prekey", Opt(&PREKEY)),
    ("last_resort", Opt(&PREKEY)),
]);
const ACCOUNT_REF: Ty = Ty::Enum(&[
    ("Username", Newtype(&Str)),
    ("Account", Newtype(&ACCOUNT_ID)),
]);
const OUTGOING: Ty = Ty::Struct(&[("to", ADDRESS), ("envelope", Bytes)]);
const SEND_OUTCOME: Ty = Ty::Enum(&[
    ("Accepted", Fields(&[("seq", Varint)])),
    ("Rejected", Fields(&[("code", Varint)])),
]);

/// §9.5 (for §15.5 and §15.6)
const DEVICE_INFO: Ty = Ty::Struct(&[
    ("device", Varint),
    ("created_at", Varint),
    ("last_seen_at", Varint),
]);
const LINK_ENROLLED: Ty = Ty::Struct(&[
    ("account", ACCOUNT_ID),
    ("device", Varint),
    ("token", Fixed(32)),
    ("expires_at", Varint),
]);

/// §9.7
const REQUEST: Ty = Ty::Enum(&[
    (
        "RegisterStart",
        Fields(&[("username", Str), ("opaque_request", Bytes)]),
    ),
    (
        "RegisterFinish",
        Fields(&[("username", Str), ("opaque_upload", Bytes)]),
    ),
    (
        "LoginStart",
        Fields(&[("username", Str), ("opaque_request", Bytes)]),
    ),
    (
        "LoginFinish",
        Fields(&[("login_id", Varint), ("opaque_finalization", Bytes)]),
    ),
    (
        "Authenticate",
        Fields(&[("token", Fixed(32)), ("device", Varint)]),
    ),
    ("Logout", Fields(&[("everywhere", Bool)])),
    (
        "PublishKeys",
        Fields(&[
            ("identity", Bytes),
            ("signed_prekey", SIGNED_PREKEY),
            ("last_resort", Opt(&PREKEY)),
        ]),
    ),
    ("UploadPreKeys", Fields(&[("prekeys", List(&PREKEY))])),
    ("PreKeyCount", Unit),
    ("FetchBundle", Fields(&[("target", ACCOUNT_REF)])),
    ("ResolveUsername", Fields(&[("username", Str)])),
    ("Send", Fields(&[("messages", List(&OUTGOING))])),
    ("Ack", Fields(&[("seqs", List(&Varint))])),
    ("Ephemeral", Fields(&[("to", ADDRESS), ("payload", Bytes)])),
    ("Rename", Fields(&[("new_username", Str)])),
    ("DeleteAccount", Unit),
    ("Ping", Unit),
    (
        "PasswordChangeStart",
        Fields(&[
            ("credential_request", Bytes),
            ("registration_request", Bytes),
        ]),
    ),
    (
        "PasswordChangeFinish",
        Fields(&[
            ("change_id", Varint),
            ("credential_finalization", Bytes),
            ("registration_upload", Bytes),
        ]),
    ),
    // §15.4–15.6, tags 19 to 28
    ("PublishDeviceList", Fields(&[("list", Bytes)])),
    ("FetchDeviceList", Fields(&[("account", ACCOUNT_ID)])),
    ("ListDevices", Unit),
    ("RemoveDevice", Fields(&[("device", Varint)])),
    (
        "FetchDeviceBundle",
        Fields(&[("account", ACCOUNT_ID), ("device", Varint)]),
    ),
    ("LinkCreate", Unit),
    ("LinkJoin", Fields(&[("ticket", Fixed(16))])),
    (
        "LinkPost",
        Fields(&[("ticket", Fixed(16)), ("payload", Bytes)]),
    ),
    (
        "LinkFetch",
        Fields(&[("ticket", Fixed(16)), ("after", Varint)]),
    ),
    ("LinkEnrol", Fields(&[("ticket", Fixed(16))])),
]);
const CLIENT_FRAME: Ty = Ty::Struct(&[("request_id", Varint), ("request", REQUEST)]);

/// §9.8
const RESPONSE: Ty = Ty::Enum(&[
    ("RegisterResponse", Fields(&[("opaque_response", Bytes)])),
    ("RegisterDone", Fields(&[("account", ACCOUNT_ID)])),
    (
        "LoginResponse",
        Fields(&[("login_id", Varint), ("opaque_response", Bytes)]),
    ),
    (
        "LoginDone",
        Fields(&[
            ("token", Fixed(32)),
            ("account", ACCOUNT_ID),
            ("expires_at", Varint),
        ]),
    ),
    ("Authenticated", Fields(&[("address", ADDRESS)])),
    ("SendResult", Fields(&[("results", List(&SEND_OUTCOME))])),
    ("Bundle", Newtype(&BUNDLE)),
    (
        "PreKeyCount",
        Fields(&[("remaining", Varint), ("low_water", Varint)]),
    ),
    (
        "Resolved",
        Fields(&[
            ("username", Str),
            ("account", ACCOUNT_ID),
            ("identity", Opt(&Bytes)),
        ]),
    ),
    ("Ok", Unit),
    ("Pong", Unit),
    (
        "Error",
        Fields(&[
            ("code", Varint),
            ("message", Str),
            ("retry_after_secs", Opt(&Varint)),
        ]),
    ),
    (
        "PasswordChangeResponse",
        Fields(&[
            ("change_id", Varint),
            ("credential_response", Bytes),
            ("registration_response", Bytes),
        ]),
    ),
    (
        "PasswordChanged",
        Fields(&[("token", Fixed(32)), ("expires_at", Varint)]),
    ),
    // §15.4–15.6, tags 14 to 18
    ("DeviceList", Fields(&[("list", Opt(&Bytes))])),
    ("Devices", Fields(&[("devices", List(&DEVICE_INFO))])),
    (
        "LinkTicket",
        Fields(&[("ticket", Fixed(16)), ("expires_at", Varint)]),
    ),
    (
        "LinkMessages",
        Fields(&[
            ("messages", List(&Bytes)),
            ("enrolled", Opt(&LINK_ENROLLED)),
        ]),
    ),
    ("DeviceEnrolled", Fields(&[("device", Varint)])),
]);
const RELAY_FRAME: Ty = Ty::Enum(&[
    (
        "Response",
        Fields(&[("request_id", Varint), ("response", RESPONSE)]),
    ),
    (
        "Deliver",
        Fields(&[
            ("seq", Varint),
            ("envelope", Bytes),
            ("received_at_ms", Varint),
        ]),
    ),
    ("QueueEmpty", Unit),
    ("EphemeralDeliver", Fields(&[("payload", Bytes)])),
    ("PreKeysLow", Fields(&[("remaining", Varint)])),
    ("Closing", Fields(&[("code", Varint), ("reason", Str)])),
]);

/// §10.2, §10.3, §10.5
const MESSAGE_ID: Ty = Fixed(16);
const GROUP_ID: Ty = Fixed(32);
const FILE_POINTER: Ty = Ty::Struct(&[
    ("id", MESSAGE_ID),
    ("blob_id", Bytes),
    ("key", Fixed(32)),
    ("digest", Fixed(32)),
    ("size", Varint),
    ("file_name", Str),
    ("content_type", Str),
]);
const CONTENT: Ty = Ty::Enum(&[
    (
        "Text",
        Fields(&[("id", MESSAGE_ID), ("body", Str), ("sent_at_ms", Varint)]),
    ),
    ("DeliveryReceipt", Fields(&[("ids", List(&MESSAGE_ID))])),
    ("ReadReceipt", Fields(&[("ids", List(&MESSAGE_ID))])),
    ("Typing", Fields(&[("started", Bool)])),
    ("Presence", Fields(&[("online", Bool)])),
    ("FilePointer", Newtype(&FILE_POINTER)),
    ("GroupControl", Fields(&[("change", Bytes)])),
    (
        "GroupWelcome",
        Fields(&[("state", Bytes), ("change", Bytes)]),
    ),
    (
        "SenderKeyDistribution",
        Fields(&[("group", GROUP_ID), ("payload", Bytes)]),
    ),
    ("DeleteConversation", Unit),
    ("ProfileChange", Fields(&[("new_username", Str)])),
    (
        "GroupTyping",
        Fields(&[("group", GROUP_ID), ("started", Bool)]),
    ),
    (
        "GroupText",
        Fields(&[
            ("id", MESSAGE_ID),
            ("body", Str),
            ("sent_at_ms", Varint),
            ("head", GROUP_ID),
            ("version", Varint),
        ]),
    ),
    (
        "GroupSync",
        Fields(&[("group", GROUP_ID), ("have", GROUP_ID), ("version", Varint)]),
    ),
    ("SessionReset", Unit),
    (
        "GroupSyncDone",
        Fields(&[("group", GROUP_ID), ("head", GROUP_ID), ("version", Varint)]),
    ),
    (
        "GroupKeyRequest",
        Fields(&[
            ("group", GROUP_ID),
            ("epoch", Varint),
            ("chain_id", Varint),
            ("iteration", Varint),
        ]),
    ),
    (
        "TextReply",
        Fields(&[
            ("id", MESSAGE_ID),
            ("target", MESSAGE_ID),
            ("body", Str),
            ("sent_at_ms", Varint),
        ]),
    ),
    (
        "GroupTextReply",
        Fields(&[
            ("id", MESSAGE_ID),
            ("target", MESSAGE_ID),
            ("body", Str),
            ("sent_at_ms", Varint),
            ("head", GROUP_ID),
            ("version", Varint),
        ]),
    ),
    (
        "Reaction",
        Fields(&[
            ("id", MESSAGE_ID),
            ("target", MESSAGE_ID),
            ("emoji", Str),
            ("remove", Bool),
            ("sent_at_ms", Varint),
        ]),
    ),
    (
        "Edit",
        Fields(&[
            ("id", MESSAGE_ID),
            ("target", MESSAGE_ID),
            ("body", Str),
            ("sent_at_ms", Varint),
        ]),
    ),
    (
        "DeleteForEveryone",
        Fields(&[
            ("id", MESSAGE_ID),
            ("target", MESSAGE_ID),
            ("sent_at_ms", Varint),
        ]),
    ),
]);

// ----- the spec's encoding (§9.2), over serde JSON values --------------------

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn byte_string(bytes: &[u8], out: &mut Vec<u8>) {
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn json_bytes(value: &Value, at: &str) -> Vec<u8> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{at}: expected an array of bytes, got {value}"))
        .iter()
        .map(|b| {
            b.as_u64()
                .and_then(|b| u8::try_from(b).ok())
                .unwrap_or_else(|| panic!("{at}: {b} is not a byte"))
        })
        .collect()
}

fn fields(list: &[(&str, Ty)], value: &Value, at: &str, out: &mut Vec<u8>) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
    let names: Vec<&str> = list.iter().map(|(name, _)| *name).collect();
    let mut present: Vec<&str> = object.keys().map(String::as_str).collect();
    present.sort_unstable();
    let mut expected = names.clone();
    expected.sort_unstable();
    assert_eq!(present, expected, "{at}: fields differ from the spec");
    for (name, ty) in list {
        encode(ty, &object[*name], &format!("{at}.{name}"), out);
    }
}

fn encode(ty: &Ty, value: &Value, at: &str, out: &mut Vec<u8>) {
    match ty {
        Varint => varint(
            value
                .as_u64()
                .unwrap_or_else(|| panic!("{at}: expected an unsigned integer, got {value}")),
            out,
        ),
        Bool => out.push(u8::from(
            value
                .as_bool()
                .unwrap_or_else(|| panic!("{at}: expected a bool")),
        )),
        Bytes => byte_string(&json_bytes(value, at), out),
        Fixed(n) => {
            let bytes = json_bytes(value, at);
            assert_eq!(bytes.len(), *n, "{at}: fixed array of the wrong length");
            byte_string(&bytes, out);
        }
        Str => byte_string(
            value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: expected a string"))
                .as_bytes(),
            out,
        ),
        Opt(inner) => {
            if value.is_null() {
                out.push(0);
            } else {
                out.push(1);
                encode(inner, value, at, out);
            }
        }
        List(inner) => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: expected a list"));
            varint(items.len() as u64, out);
            for (i, item) in items.iter().enumerate() {
                encode(inner, item, &format!("{at}[{i}]"), out);
            }
        }
        Ty::Struct(list) => fields(list, value, at, out),
        Ty::Enum(variants) => {
            // serde's external tagging: "Name" for a unit variant, else
            // {"Name": payload}.
            let (name, payload) = match value {
                Value::String(name) => (name.as_str(), None),
                Value::Object(map) if map.len() == 1 => {
                    let (name, payload) = map.iter().next().expect("one entry");
                    (name.as_str(), Some(payload))
                }
                other => panic!("{at}: expected an enum value, got {other}"),
            };
            let tag = variants
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{at}: variant {name} is not in the spec"));
            varint(tag as u64, out);
            let at = format!("{at}::{name}");
            match (&variants[tag].1, payload) {
                (Unit, None) => {}
                (Newtype(inner), Some(payload)) => encode(inner, payload, &at, out),
                (Fields(list), Some(payload)) => fields(list, payload, &at, out),
                _ => panic!("{at}: payload shape differs from the spec"),
            }
        }
    }
}

/// `version || encoding(value)` (§9.1, §10.1: both versions are 1).
fn spec_frame(ty: &Ty, value: &Value, at: &str) -> String {
    let mut out = vec![1u8];
    encode(ty, value, at, &mut out);
    hex::encode(out)
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("hex literal")
}

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
    // then 10 device requests and 7 device responses (device_frames).
    assert_eq!(
        checked,
        20 + 15 + 5 + 10 + 7,
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
    // Twenty-two variants, GroupControl twice (a Create and an Add),
    // GroupSync twice (a head, and none).
    assert_eq!(examples.len(), 22 + 2, "the file lost or gained examples");
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
    let content_limits: [(&str, usize, usize); 9] = [
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
