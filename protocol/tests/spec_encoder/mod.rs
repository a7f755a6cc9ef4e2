//! A second encoder of the wire and content formats, written from
//! docs/PROTOCOL.md alone for `spec_wire.rs`: the §9.2 encoding rules over
//! serde JSON values, and the field tables of §9.5, §9.7, §9.8, §10.2,
//! §10.3 and §10.5 (tags, field order and types) as literals.
//!
//! Must never: call umbra's encoders or read a tag, order or type from the
//! crate, so the vectors are checked against the spec, not against the code.

use serde_json::Value;

// ----- the spec's types ------------------------------------------------------

/// A §9.2 type.
pub enum Ty {
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

pub enum Variant {
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
/// §9.5, the KEM prekeys of 3.9 (issue 14)
const KEM_PREKEY: Ty = Ty::Struct(&[
    ("id", Varint),
    ("created_at", Varint),
    ("key", Bytes),
    ("signature", Fixed(64)),
]);
const HYBRID_BUNDLE: Ty = Ty::Struct(&[
    ("bundle", BUNDLE),
    ("kem_one_time", Opt(&KEM_PREKEY)),
    ("kem_last_resort", Opt(&KEM_PREKEY)),
]);
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
    // §9.7, tags 29 to 31 (the KEM prekeys of 3.9)
    (
        "UploadKemPreKeys",
        Fields(&[
            ("last_resort", Opt(&KEM_PREKEY)),
            ("one_time", List(&KEM_PREKEY)),
        ]),
    ),
    ("KemPreKeyCount", Unit),
    (
        "FetchHybridBundle",
        Fields(&[("account", ACCOUNT_ID), ("device", Opt(&Varint))]),
    ),
    // §15.6, tag 32
    ("LoginEnrol", Unit),
    // §16.9, tags 33 to 35
    (
        "KtHead",
        Fields(&[("known", Opt(&Varint)), ("entry_of", Opt(&Varint))]),
    ),
    ("KtLookup", Fields(&[("label", ACCOUNT_REF)])),
    (
        "KtHistory",
        Fields(&[("label", ACCOUNT_REF), ("first", Varint)]),
    ),
    // §15.6, tag 36
    ("LoginDevice", Fields(&[("device", Varint)])),
]);
pub const CLIENT_FRAME: Ty = Ty::Struct(&[("request_id", Varint), ("request", REQUEST)]);

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
    // §9.8, tags 19 and 20 (the KEM prekeys of 3.9)
    ("HybridBundle", Newtype(&HYBRID_BUNDLE)),
    (
        "KemPreKeyCount",
        Fields(&[("remaining", Varint), ("low_water", Varint)]),
    ),
    // §15.6, tag 21
    ("LoginEnrolled", Newtype(&LINK_ENROLLED)),
    // §16.9, tags 22 to 24
    (
        "KtHead",
        Fields(&[
            ("head", Bytes),
            ("consistency", Opt(&Bytes)),
            ("entry", Opt(&Bytes)),
            ("inclusion", Opt(&Bytes)),
        ]),
    ),
    ("KtLookup", Fields(&[("head", Bytes), ("proof", Bytes)])),
    ("KtHistory", Fields(&[("head", Bytes), ("proof", Bytes)])),
]);
pub const RELAY_FRAME: Ty = Ty::Enum(&[
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
pub const CONTENT: Ty = Ty::Enum(&[
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
    (
        "SentTranscript",
        Fields(&[("destination", ACCOUNT_ID), ("content", Bytes)]),
    ),
    (
        "ExpirationTimer",
        Fields(&[
            ("id", MESSAGE_ID),
            ("seconds", Varint),
            ("sent_at_ms", Varint),
        ]),
    ),
]);

// ----- the spec's encoding (§9.2), over serde JSON values --------------------

pub fn varint(mut value: u64, out: &mut Vec<u8>) {
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

pub fn encode(ty: &Ty, value: &Value, at: &str, out: &mut Vec<u8>) {
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
pub fn spec_frame(ty: &Ty, value: &Value, at: &str) -> String {
    let mut out = vec![1u8];
    encode(ty, value, at, &mut out);
    hex::encode(out)
}

pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("hex literal")
}
