//! Test vectors for the client payload, the plaintext of every pairwise
//! message (docs/PROTOCOL.md 12.1), and for the errors its decoder must give
//! on malformed input (`docs/test-vectors/payload.json`).
//!
//! The expected bytes are assembled here by hand from the spec (fixed
//! header, then the content encoding of section 10 written out with the 9.2
//! rules: varint tags and lengths, `10` before a 16-byte id), never by the
//! library's encoder, and the library must produce exactly them. Each
//! malformed input names the error the spec requires. Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate change (see common/mod.rs).

mod common;

use common::{check_or_regenerate, hex};
use serde_json::{json, Value};
use umbra_protocol::content::{Content, ContentError, MessageId};
use umbra_protocol::padding;
use umbra_protocol::payload::{Payload, PayloadError};
use umbra_protocol::wire::{AccountId, Address, DeviceId, Username, WireError};

/// Unsigned LEB128, as 9.2 defines postcard's varints.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// 12.1's header: version, account, device (u32be), username length, username.
fn header(account: [u8; 16], device: u32, username: &str) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&account);
    out.extend_from_slice(&device.to_be_bytes());
    out.push(username.len() as u8);
    out.extend_from_slice(username.as_bytes());
    out
}

/// A 16-byte id as a fixed array on the wire: `10` then the bytes.
fn id_bytes(id: [u8; 16]) -> Vec<u8> {
    let mut out = vec![0x10];
    out.extend_from_slice(&id);
    out
}

fn string(s: &str) -> Vec<u8> {
    let mut out = varint(s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    out
}

struct Case {
    name: &'static str,
    payload: Payload,
    expected: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let alice = [0xa1; 16];
    let bob = [0xb0; 16];
    let id1 = [0x11; 16];
    let id2 = [0x22; 16];
    let username = |s: &str| Username::parse(s).expect("valid username");

    // Text { id, body, sent_at_ms } is tag 0.
    let mut text = header(alice, 1, "alice");
    text.push(0x01); // content version
    text.extend(varint(0));
    text.extend(id_bytes(id1));
    text.extend(string("hello, bob"));
    text.extend(varint(1_700_000_000_123));

    // Typing { started } is tag 3, a bool byte.
    let mut typing = header(bob, 2, "bob");
    typing.extend([0x01, 0x03, 0x01]);

    // DeliveryReceipt { ids } is tag 1: count, then the ids.
    let mut receipt = header(bob, 1, "bob.x_9");
    receipt.extend([0x01, 0x01]);
    receipt.extend(varint(2));
    receipt.extend(id_bytes(id1));
    receipt.extend(id_bytes(id2));

    // ProfileChange { new_username } is tag 10.
    let mut rename = header(alice, 1, "alice");
    rename.extend([0x01, 0x0a]);
    rename.extend(string("alice2"));

    vec![
        Case {
            name: "text",
            payload: Payload {
                sender: Address::primary(AccountId::from_bytes(alice)),
                sender_username: username("alice"),
                content: Content::Text {
                    id: MessageId(id1),
                    body: "hello, bob".into(),
                    sent_at_ms: 1_700_000_000_123,
                },
            },
            expected: text,
        },
        Case {
            name: "typing_from_device_2",
            payload: Payload {
                sender: Address {
                    account: AccountId::from_bytes(bob),
                    device: DeviceId(2),
                },
                sender_username: username("bob"),
                content: Content::Typing { started: true },
            },
            expected: typing,
        },
        Case {
            name: "delivery_receipt",
            payload: Payload {
                sender: Address::primary(AccountId::from_bytes(bob)),
                sender_username: username("bob.x_9"),
                content: Content::DeliveryReceipt {
                    ids: vec![MessageId(id1), MessageId(id2)],
                },
            },
            expected: receipt,
        },
        Case {
            name: "profile_change",
            payload: Payload {
                sender: Address::primary(AccountId::from_bytes(alice)),
                sender_username: username("alice"),
                content: Content::ProfileChange {
                    new_username: username("alice2"),
                },
            },
            expected: rename,
        },
    ]
}

/// A stable name for an error, the form the vector file uses.
fn error_name(e: &PayloadError) -> String {
    match e {
        PayloadError::Truncated => "Truncated".into(),
        PayloadError::UnsupportedVersion(v) => format!("UnsupportedVersion({v})"),
        PayloadError::BadUsername => "BadUsername".into(),
        PayloadError::Content(ContentError::Frame(w)) => match w {
            WireError::Empty => "Content(Empty)".into(),
            WireError::UnsupportedVersion { got, .. } => {
                format!("Content(UnsupportedVersion({got}))")
            }
            WireError::Malformed(_) => "Content(Malformed)".into(),
            WireError::TrailingBytes { count } => format!("Content(TrailingBytes({count}))"),
            WireError::NonCanonical => "Content(NonCanonical)".into(),
            other => format!("Content({other:?})"),
        },
        PayloadError::Content(other) => format!("Content({other:?})"),
    }
}

/// Malformed payloads and the error 12.1 (and section 10 for the content)
/// requires for each.
fn malformed() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let account = [0xa1; 16];
    let good = header(account, 1, "alice");
    let with = |tail: &[u8]| {
        let mut v = good.clone();
        v.extend_from_slice(tail);
        v
    };
    let typing = |mut v: Vec<u8>| {
        v.extend_from_slice(&[0x01, 0x03, 0x01]);
        v
    };
    let mut version_2 = typing(good.clone());
    version_2[0] = 0x02;
    let mut short_name = good.clone();
    short_name.truncate(good.len() - 2); // the length byte says 5; 3 follow
    let mut upper = typing(good.clone());
    upper[22] = b'A';
    let mut not_utf8 = typing(good.clone());
    not_utf8[23] = 0xff;
    vec![
        ("empty", vec![], "Truncated"),
        ("version_2", version_2, "UnsupportedVersion(2)"),
        ("version_0", vec![0x00; 40], "UnsupportedVersion(0)"),
        ("header_cut_at_21_bytes", good[..21].to_vec(), "Truncated"),
        ("username_shorter_than_its_length", short_name, "Truncated"),
        ("username_upper_case", upper, "BadUsername"),
        ("username_not_utf8", not_utf8, "BadUsername"),
        (
            "username_too_short",
            typing(header(account, 1, "al")),
            "BadUsername",
        ),
        ("no_content", good.clone(), "Content(Empty)"),
        (
            "content_version_2",
            with(&[0x02, 0x03, 0x01]),
            "Content(UnsupportedVersion(2))",
        ),
        (
            "content_unknown_tag_11",
            with(&[0x01, 0x0b]),
            "Content(Malformed)",
        ),
        (
            "content_bool_byte_2",
            with(&[0x01, 0x03, 0x02]),
            "Content(Malformed)",
        ),
        (
            "content_trailing_byte",
            with(&[0x01, 0x03, 0x01, 0x00]),
            "Content(TrailingBytes(1))",
        ),
        (
            "content_overlong_varint_tag",
            with(&[0x01, 0x83, 0x00, 0x01]),
            "Content(NonCanonical)",
        ),
    ]
}

fn vectors() -> Value {
    let mut payloads = Vec::new();
    for case in cases() {
        let encoded = case.payload.encode().expect("examples encode");
        assert_eq!(
            hex(&encoded),
            hex(&case.expected),
            "{}: the library's bytes differ from the spec's",
            case.name
        );
        assert_eq!(Payload::decode(&case.expected).as_ref(), Ok(&case.payload));
        let padded = padding::pad(&encoded).expect("small payloads pad");
        payloads.push(json!({
            "name": case.name,
            "payload": hex(&encoded),
            "padded_length": padded.len(),
        }));
    }
    let mut errors = Vec::new();
    for (name, input, expected) in malformed() {
        let got = Payload::decode(&input).expect_err(name);
        assert_eq!(error_name(&got), expected, "{name}");
        errors.push(json!({ "name": name, "input": hex(&input), "error": expected }));
    }
    json!({
        "description": "Client payloads (docs/PROTOCOL.md 12.1): the plaintext of every pairwise message, before padding (section 6). payload = 01 || sender account (16) || sender device u32be || username length u8 || username || content (section 10, its own version byte first). decode_errors: inputs Payload::decode must refuse, with the error it must give.",
        "payloads": payloads,
        "decode_errors": errors,
    })
}

#[test]
fn payload_vectors() {
    check_or_regenerate("payload.json", &vectors());
}
