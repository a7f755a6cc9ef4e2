//! Properties of the wire and content codecs: any byte string decodes to a
//! value or a named error (never a panic), every value round-trips, and the
//! version, size, trailing-byte, canonical-encoding and limit rules hold.

use proptest::collection::vec;
use proptest::prelude::*;
use umbra_protocol::content::{self, ContentError};
use umbra_protocol::wire::{self, Username, WireError};

mod wire_strategies;

use wire_strategies::*;

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(input in bytes(512)) {
        let _ = wire::decode_client(&input);
        let _ = wire::decode_relay(&input);
        let _ = content::decode(&input);
        let _ = wire::peek_request_id(&input);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_version_never_panic(body in bytes(512)) {
        let mut framed = vec![wire::WIRE_VERSION];
        framed.extend(&body);
        let _ = wire::decode_client(&framed);
        let _ = wire::decode_relay(&framed);
        let mut framed = vec![content::CONTENT_VERSION];
        framed.extend(&body);
        let _ = content::decode(&framed);
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let encoded = wire::encode_client(&frame).expect("small frames encode");
        prop_assert_eq!(encoded.first().copied(), Some(wire::WIRE_VERSION));
        prop_assert_eq!(wire::decode_client(&encoded).expect("own encoding decodes"), frame.clone());
        prop_assert_eq!(wire::peek_request_id(&encoded), Some(frame.request_id));
    }

    #[test]
    fn relay_frames_round_trip(frame in relay_frame()) {
        let encoded = wire::encode_relay(&frame).expect("small frames encode");
        prop_assert_eq!(encoded.first().copied(), Some(wire::WIRE_VERSION));
        prop_assert_eq!(wire::decode_relay(&encoded).expect("own encoding decodes"), frame);
    }

    #[test]
    fn content_round_trips(value in content_value()) {
        let encoded = content::encode(&value).expect("valid content encodes");
        prop_assert_eq!(encoded.first().copied(), Some(content::CONTENT_VERSION));
        prop_assert_eq!(content::decode(&encoded).expect("own encoding decodes"), value);
    }

    #[test]
    fn mutated_frames_decode_or_fail_cleanly(
        frame in client_frame(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut encoded = wire::encode_client(&frame).expect("small frames encode");
        let at = position.index(encoded.len());
        encoded[at] = byte;
        // Either a frame whose re-encoding is exactly the input, or an error.
        if let Ok(decoded) = wire::decode_client(&encoded) {
            prop_assert_eq!(wire::encode_client(&decoded).expect("re-encodes"), encoded);
        }
    }

    #[test]
    fn unsupported_versions_are_rejected_with_the_range(frame in client_frame(), version in any::<u8>()) {
        prop_assume!(version != wire::WIRE_VERSION);
        let mut encoded = wire::encode_client(&frame).expect("small frames encode");
        encoded[0] = version;
        let expected_range = (wire::MIN_SUPPORTED_VERSION, wire::WIRE_VERSION);
        match wire::decode_client(&encoded) {
            Err(WireError::UnsupportedVersion { got, min, max }) => {
                prop_assert_eq!(got, version);
                prop_assert_eq!((min, max), expected_range);
            }
            // A 3-byte frame starting with 0 is the version-rejection notice.
            Err(WireError::PeerRejectedVersion { .. }) => {
                prop_assert_eq!(version, 0);
                prop_assert_eq!(encoded.len(), 3);
            }
            other => prop_assert!(false, "expected UnsupportedVersion, got {:?}", other),
        }
        prop_assert_eq!(wire::peek_request_id(&encoded), None);
    }

    #[test]
    fn unsupported_content_versions_are_rejected(value in content_value(), version in any::<u8>()) {
        prop_assume!(version != content::CONTENT_VERSION);
        let mut encoded = content::encode(&value).expect("valid content encodes");
        encoded[0] = version;
        prop_assert_eq!(
            content::decode(&encoded),
            Err(ContentError::Frame(WireError::UnsupportedVersion {
                got: version,
                min: content::MIN_SUPPORTED_CONTENT_VERSION,
                max: content::CONTENT_VERSION,
            }))
        );
    }

    #[test]
    fn trailing_bytes_are_rejected(frame in relay_frame(), extra in vec(any::<u8>(), 1..16)) {
        let mut encoded = wire::encode_relay(&frame).expect("small frames encode");
        encoded.extend(&extra);
        prop_assert_eq!(
            wire::decode_relay(&encoded),
            Err(WireError::TrailingBytes { count: extra.len() })
        );
    }

    #[test]
    fn content_trailing_bytes_are_rejected(value in content_value(), extra in vec(any::<u8>(), 1..16)) {
        let mut encoded = content::encode(&value).expect("valid content encodes");
        encoded.extend(&extra);
        prop_assert_eq!(
            content::decode(&encoded),
            Err(ContentError::Frame(WireError::TrailingBytes { count: extra.len() }))
        );
    }

    #[test]
    fn username_parse_enforces_every_rule(input in "\\PC{0,40}") {
        match Username::parse(&input) {
            Ok(name) => {
                let s = name.as_str();
                prop_assert!((3..=32).contains(&s.len()));
                prop_assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
                prop_assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'));
                prop_assert_eq!(s, input.to_ascii_lowercase());
            }
            Err(_) => {
                let folded = input.to_ascii_lowercase();
                let valid = (3..=32).contains(&folded.chars().count())
                    && folded.starts_with(|c: char| c.is_ascii_lowercase())
                    && folded.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
                prop_assert!(!valid, "{:?} was rejected but follows the rules", input);
            }
        }
    }

    #[test]
    fn username_folding_is_case_insensitive(name in "[a-zA-Z][a-zA-Z0-9_.]{2,31}") {
        let folded = Username::parse(&name).expect("valid name");
        prop_assert_eq!(Username::parse(&name.to_ascii_uppercase()).expect("valid name"), folded.clone());
        prop_assert_eq!(folded.as_str(), name.to_ascii_lowercase());
    }
}
