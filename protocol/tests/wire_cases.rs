//! Fixed cases of the wire and content codecs (the properties are in
//! `wire_props.rs`): empty and oversize input, frames at exactly a limit,
//! non-canonical varints, version notices, request ids read from broken
//! frames, username rules, error codes and limit checks, each naming the
//! error it must produce.

use umbra_protocol::content::{self, Content, ContentError, FileKey, FilePointer, MessageId};
use umbra_protocol::group::GroupChangeError;
use umbra_protocol::keys::PublicKey;
use umbra_protocol::wire::{
    self, AccountId, Address, ClientFrame, DeviceId, ErrorCode, LimitError, OutgoingEnvelope,
    PreKeyWire, RelayFrame, Request, Response, SessionToken, Username, UsernameError, WireError,
};

mod wire_strategies;

use wire_strategies::*;

// ---------- fixed cases ----------

#[test]
fn empty_input_is_a_named_error() {
    assert_eq!(wire::decode_client(&[]), Err(WireError::Empty));
    assert_eq!(wire::decode_relay(&[]), Err(WireError::Empty));
    assert_eq!(
        content::decode(&[]),
        Err(ContentError::Frame(WireError::Empty))
    );
}

#[test]
fn oversize_input_is_rejected_before_parsing() {
    // A frame that would be valid apart from its size: the length check
    // must win, so the relay never parses it.
    let envelope = vec![0u8; wire::MAX_FRAME_BYTES];
    let frame = ClientFrame {
        request_id: 1,
        request: Request::Send {
            messages: vec![OutgoingEnvelope {
                to: Address::primary(AccountId::from_bytes([1; 16])),
                envelope,
            }],
        },
    };
    let mut raw = vec![wire::WIRE_VERSION];
    raw.extend(postcard::to_allocvec(&frame).expect("postcard encodes"));
    assert!(raw.len() > wire::MAX_FRAME_BYTES);
    assert_eq!(
        wire::decode_client(&raw),
        Err(WireError::TooLarge {
            len: raw.len(),
            max: wire::MAX_FRAME_BYTES
        })
    );
    assert_eq!(
        wire::encode_client(&frame),
        Err(WireError::TooLarge {
            len: raw.len(),
            max: wire::MAX_FRAME_BYTES
        })
    );
    assert_eq!(
        WireError::TooLarge { len: 0, max: 0 }.code(),
        ErrorCode::FrameTooLarge
    );

    let junk = vec![0xffu8; content::MAX_CONTENT_BYTES + 1];
    assert_eq!(
        content::decode(&junk),
        Err(ContentError::Frame(WireError::TooLarge {
            len: junk.len(),
            max: content::MAX_CONTENT_BYTES
        }))
    );
}

#[test]
fn frames_at_exactly_the_limit_are_accepted() {
    let frame_for = |len: usize| RelayFrame::EphemeralDeliver {
        payload: vec![0xab; len],
    };
    // Overhead: version byte + tag byte + 3-byte varint length.
    let payload_len = wire::MAX_FRAME_BYTES - 5;
    let encoded = wire::encode_relay(&frame_for(payload_len)).expect("fits exactly");
    assert_eq!(encoded.len(), wire::MAX_FRAME_BYTES);
    assert_eq!(wire::decode_relay(&encoded), Ok(frame_for(payload_len)));
    assert!(matches!(
        wire::encode_relay(&frame_for(payload_len + 1)),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn over_long_varints_are_non_canonical() {
    let canonical = wire::encode_client(&sample_client_frame()).expect("encodes");
    assert_eq!(canonical, vec![wire::WIRE_VERSION, 7, 16]);
    // request_id 7 as a two-byte varint: same value, second encoding.
    let padded = vec![wire::WIRE_VERSION, 0x87, 0x00, 16];
    assert_eq!(wire::decode_client(&padded), Err(WireError::NonCanonical));
    assert_eq!(WireError::NonCanonical.code(), ErrorCode::BadFrame);
}

#[test]
fn version_rejection_notice_is_recognised() {
    let notice = wire::version_rejection_notice();
    assert_eq!(notice, [0, wire::MIN_SUPPORTED_VERSION, wire::WIRE_VERSION]);
    assert_eq!(
        wire::decode_relay(&notice),
        Err(WireError::PeerRejectedVersion {
            min: wire::MIN_SUPPORTED_VERSION,
            max: wire::WIRE_VERSION
        })
    );
    assert_eq!(
        wire::decode_client(&[0, 3, 9]),
        Err(WireError::PeerRejectedVersion { min: 3, max: 9 })
    );
    assert!(matches!(
        wire::decode_relay(&[0, 1]),
        Err(WireError::UnsupportedVersion { got: 0, .. })
    ));
}

#[test]
fn request_id_is_readable_from_a_broken_frame() {
    // request_id 300, then an unknown request tag.
    let broken = [wire::WIRE_VERSION, 0xac, 0x02, 0x7f];
    assert!(matches!(
        wire::decode_client(&broken),
        Err(WireError::Malformed(_))
    ));
    assert_eq!(wire::peek_request_id(&broken), Some(300));
    assert_eq!(wire::peek_request_id(&[wire::WIRE_VERSION]), None);
}

#[test]
fn request_id_is_readable_from_a_frame_over_every_limit() {
    // Section 9.10: an oversized frame is answered under its own request id,
    // so the id must be readable however long the frame is.
    let mut oversized = vec![wire::WIRE_VERSION, 11];
    oversized.resize(wire::MAX_FRAME_BYTES * 2, 0);
    assert_eq!(wire::peek_request_id(&oversized), Some(11));
    let mut unsupported = oversized.clone();
    unsupported[0] = 0xee;
    assert_eq!(wire::peek_request_id(&unsupported), None);
}

#[test]
fn non_canonical_usernames_are_malformed_on_the_wire() {
    let frame = ClientFrame {
        request_id: 1,
        request: Request::ResolveUsername {
            username: Username::parse("alice").expect("valid"),
        },
    };
    let mut encoded = wire::encode_client(&frame).expect("encodes");
    let at = encoded
        .windows(5)
        .position(|w| w == b"alice")
        .expect("name is in the frame");
    encoded[at] = b'A';
    assert!(matches!(
        wire::decode_client(&encoded),
        Err(WireError::Malformed(_))
    ));
    encoded[at] = b'9';
    assert!(matches!(
        wire::decode_client(&encoded),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn username_rules_name_the_failure() {
    assert_eq!(
        Username::parse("ab"),
        Err(UsernameError::TooShort { len: 2 })
    );
    assert_eq!(
        Username::parse(&"a".repeat(33)),
        Err(UsernameError::TooLong { len: 33 })
    );
    assert_eq!(
        Username::parse("1abc"),
        Err(UsernameError::MustStartWithLetter)
    );
    assert_eq!(
        Username::parse("_abc"),
        Err(UsernameError::MustStartWithLetter)
    );
    assert_eq!(
        Username::parse("al-ice"),
        Err(UsernameError::InvalidCharacter {
            character: '-',
            position: 2
        })
    );
    assert_eq!(
        Username::parse("alïce"),
        Err(UsernameError::InvalidCharacter {
            character: 'ï',
            position: 2
        })
    );
    assert_eq!(
        Username::parse_canonical("Alice"),
        Err(UsernameError::NotCanonical)
    );
    assert_eq!(
        Username::parse("Alice.Bob_99").map(|u| u.to_string()),
        Ok("alice.bob_99".to_owned())
    );
    assert_eq!(
        Username::parse(&"a".repeat(32)).map(|u| u.as_str().len()),
        Ok(32)
    );
    assert_eq!(Username::parse("abc").map(|u| u.as_str().len()), Ok(3));
}

#[test]
fn error_codes_are_unique_and_round_trip() {
    let mut numbers: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.as_u16()).collect();
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(*code));
    }
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        ErrorCode::ALL.len(),
        "duplicate error code number"
    );
    assert_eq!(ErrorCode::from_u16(0), None);
    assert_eq!(ErrorCode::from_u16(u16::MAX), None);
}

#[test]
fn unknown_error_code_is_a_malformed_frame() {
    let frame = RelayFrame::Closing {
        code: ErrorCode::Internal,
        reason: String::new(),
    };
    let mut encoded = wire::encode_relay(&frame).expect("encodes");
    // [version, tag 5, code varint, empty string]
    assert_eq!(encoded, vec![1, 5, ErrorCode::Internal.as_u16() as u8, 0]);
    encoded[2] = 0x7f;
    assert!(matches!(
        wire::decode_relay(&encoded),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn limit_checks_name_the_violation_and_code() {
    let envelope = OutgoingEnvelope {
        to: Address::primary(AccountId::from_bytes([2; 16])),
        envelope: vec![1, 2, 3],
    };
    let too_many = Request::Send {
        messages: vec![envelope.clone(); wire::MAX_RECIPIENTS_PER_SEND + 1],
    };
    let err = too_many
        .check_limits()
        .expect_err("over the recipient limit");
    assert_eq!(
        err,
        LimitError::TooManyRecipients {
            count: wire::MAX_RECIPIENTS_PER_SEND + 1,
            max: wire::MAX_RECIPIENTS_PER_SEND
        }
    );
    assert_eq!(err.code(), ErrorCode::TooManyRecipients);
    let exactly = Request::Send {
        messages: vec![envelope; wire::MAX_RECIPIENTS_PER_SEND],
    };
    assert_eq!(exactly.check_limits(), Ok(()));
    assert_eq!(
        Request::Send { messages: vec![] }.check_limits(),
        Err(LimitError::EmptySend)
    );

    let key = PreKeyWire {
        id: 1,
        key: PublicKey::from_bytes([9; 32]),
    };
    let upload = Request::UploadPreKeys {
        prekeys: vec![key; wire::ONE_TIME_PREKEYS_PER_UPLOAD_MAX + 1],
    };
    let err = upload.check_limits().expect_err("over the upload limit");
    assert_eq!(err.code(), ErrorCode::TooManyPreKeys);
    let upload = Request::UploadPreKeys {
        prekeys: vec![key; wire::ONE_TIME_PREKEYS_PER_UPLOAD_MAX],
    };
    assert_eq!(upload.check_limits(), Ok(()));

    let ephemeral = Request::Ephemeral {
        to: Address::primary(AccountId::from_bytes([3; 16])),
        payload: vec![0; wire::MAX_EPHEMERAL_BYTES + 1],
    };
    assert_eq!(
        ephemeral.check_limits().map_err(|e| e.code()),
        Err(ErrorCode::LimitExceeded)
    );
    let acks = Request::Ack {
        seqs: vec![1; wire::MAX_ACKS_PER_FRAME + 1],
    };
    assert_eq!(
        acks.check_limits(),
        Err(LimitError::FieldTooLarge {
            field: "seqs",
            len: wire::MAX_ACKS_PER_FRAME + 1,
            max: wire::MAX_ACKS_PER_FRAME
        })
    );
}

#[test]
fn only_registration_and_login_are_pre_authentication() {
    assert!(Request::Authenticate {
        token: SessionToken::from_bytes([0; 32]),
        device: DeviceId::PRIMARY
    }
    .is_pre_authentication());
    assert!(!Request::Send { messages: vec![] }.is_pre_authentication());
    assert!(!Request::DeleteAccount.is_pre_authentication());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let token_bytes = [0x5a; 32];
    let frame = RelayFrame::Response {
        request_id: 3,
        response: Response::LoginDone {
            token: SessionToken::from_bytes(token_bytes),
            account: AccountId::from_bytes([1; 16]),
            expires_at: 10,
        },
    };
    let debug = format!("{frame:?}");
    assert!(debug.contains("redacted"));
    assert!(!debug.contains("90, 90"), "token bytes leaked: {debug}");
    assert!(!debug.contains("5a5a"), "token bytes leaked: {debug}");

    let key = FileKey::from_bytes([0x5a; 32]);
    let debug = format!("{key:?}");
    assert!(!debug.contains("5a") && !debug.contains("90"), "{debug}");
}

#[test]
fn tokens_compare_by_value() {
    assert_eq!(
        SessionToken::from_bytes([1; 32]),
        SessionToken::from_bytes([1; 32])
    );
    let mut other = [1; 32];
    other[31] = 2;
    assert_ne!(
        SessionToken::from_bytes([1; 32]),
        SessionToken::from_bytes(other)
    );
}

#[test]
fn account_id_hex_round_trips() {
    let id = AccountId::from_bytes([0xab; 16]);
    assert_eq!(id.to_hex(), "ab".repeat(16));
    assert_eq!(AccountId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(AccountId::from_hex("ab"), None);
    assert_eq!(AccountId::from_hex(&"zz".repeat(16)), None);
    assert_eq!(AccountId::from_hex(&"é".repeat(16)), None);
    assert_eq!("AB".repeat(16).parse::<AccountId>(), Ok(id));
    assert_eq!("ab".parse::<AccountId>(), Err(wire::InvalidAccountId));
}

// ---------- content limits on decode ----------

fn text_message(body: String) -> Content {
    Content::Text {
        id: MessageId([1; 16]),
        body,
        sent_at_ms: 0,
    }
}

fn file(file_name: &str, content_type: &str, blob_id: Vec<u8>) -> Content {
    Content::FilePointer(FilePointer {
        id: MessageId([1; 16]),
        blob_id,
        key: FileKey::from_bytes([2; 32]),
        digest: [3; 32],
        size: 10,
        file_name: file_name.to_owned(),
        content_type: content_type.to_owned(),
    })
}

/// Asserts that both the encoder and the decoder refuse `value` with `expected`.
fn assert_refused(value: Content, expected: ContentError) {
    assert_eq!(content::encode(&value), Err(expected.clone()));
    assert_eq!(content::decode(&raw_content(&value)), Err(expected));
}

#[test]
fn text_limits_are_enforced_on_both_sides() {
    let at_limit = text_message("x".repeat(content::MAX_TEXT_BYTES));
    let encoded = content::encode(&at_limit).expect("at the limit");
    assert_eq!(content::decode(&encoded), Ok(at_limit));
    assert_refused(
        text_message("x".repeat(content::MAX_TEXT_BYTES + 1)),
        ContentError::TextTooLong {
            len: content::MAX_TEXT_BYTES + 1,
            max: content::MAX_TEXT_BYTES,
        },
    );
    assert_refused(
        text_message("hi \u{1b}[2J".to_owned()),
        ContentError::ControlCharacter {
            field: "text",
            position: 3,
        },
    );
    assert_refused(
        text_message("a\u{9b}b".to_owned()),
        ContentError::ControlCharacter {
            field: "text",
            position: 1,
        },
    );
    let multiline = text_message("line one\r\n\tline two".to_owned());
    assert_eq!(
        content::decode(&content::encode(&multiline).expect("allowed controls")),
        Ok(multiline)
    );
}

#[test]
fn receipt_limits_are_enforced() {
    assert_refused(
        Content::ReadReceipt { ids: vec![] },
        ContentError::EmptyReceipt,
    );
    assert_refused(
        Content::DeliveryReceipt {
            ids: vec![MessageId([0; 16]); content::MAX_IDS_PER_RECEIPT + 1],
        },
        ContentError::TooManyReceiptIds {
            count: content::MAX_IDS_PER_RECEIPT + 1,
            max: content::MAX_IDS_PER_RECEIPT,
        },
    );
    let full = Content::DeliveryReceipt {
        ids: vec![MessageId([0; 16]); content::MAX_IDS_PER_RECEIPT],
    };
    assert!(content::encode(&full).is_ok());
}

#[test]
fn file_pointer_limits_are_enforced() {
    for bad in ["../etc/passwd", "a/b", "a\\b"] {
        assert_refused(
            file(bad, "text/plain", vec![1]),
            ContentError::InvalidFileName {
                reason: "contains a path separator",
            },
        );
    }
    for bad in [".", ".."] {
        assert_refused(
            file(bad, "text/plain", vec![1]),
            ContentError::InvalidFileName {
                reason: "a directory reference",
            },
        );
    }
    assert_refused(
        file("", "text/plain", vec![1]),
        ContentError::InvalidFileName { reason: "empty" },
    );
    assert_refused(
        file("a\0b", "text/plain", vec![1]),
        ContentError::ControlCharacter {
            field: "file name",
            position: 1,
        },
    );
    assert_refused(
        file(
            &"n".repeat(content::MAX_FILE_NAME_BYTES + 1),
            "text/plain",
            vec![1],
        ),
        ContentError::FileNameTooLong {
            len: content::MAX_FILE_NAME_BYTES + 1,
            max: content::MAX_FILE_NAME_BYTES,
        },
    );
    assert_refused(
        file("a.txt", "text/plain; charset=utf-8", vec![1]),
        ContentError::InvalidContentType,
    );
    assert_refused(file("a.txt", "", vec![1]), ContentError::InvalidContentType);
    assert_refused(
        file(
            "a.txt",
            &"t".repeat(content::MAX_CONTENT_TYPE_BYTES + 1),
            vec![1],
        ),
        ContentError::ContentTypeTooLong {
            len: content::MAX_CONTENT_TYPE_BYTES + 1,
            max: content::MAX_CONTENT_TYPE_BYTES,
        },
    );
    assert_refused(
        file("a.txt", "text/plain", vec![]),
        ContentError::InvalidBlobId {
            len: 0,
            max: content::MAX_BLOB_ID_BYTES,
        },
    );
    assert_refused(
        file(
            "a.txt",
            "text/plain",
            vec![0; content::MAX_BLOB_ID_BYTES + 1],
        ),
        ContentError::InvalidBlobId {
            len: content::MAX_BLOB_ID_BYTES + 1,
            max: content::MAX_BLOB_ID_BYTES,
        },
    );
    assert!(content::encode(&file("report 2026.pdf", "application/pdf", vec![7; 16])).is_ok());
}

#[test]
fn group_limits_are_enforced() {
    // A Rename (version 1) with a 129-byte name, encoded by hand from
    // PROTOCOL.md §8.8, with a zero signature: structure is checked when
    // content decodes, before anyone looks at the signature.
    let rename = |name: &str| {
        let mut change = vec![0x01, 0x20];
        change.extend([5; 32]);
        change.extend([0x01, 0x20]);
        change.extend([0; 32]);
        change.push(0x10);
        change.extend([1; 16]);
        change.push(0x04);
        // The name's length as a varint (§9.2): at most two bytes here.
        let len = name.len();
        if len < 0x80 {
            change.push(len as u8);
        } else {
            change.extend([(len as u8 & 0x7f) | 0x80, (len >> 7) as u8]);
        }
        change.extend(name.as_bytes());
        change.extend([0; 64]);
        Content::GroupControl { change }
    };
    assert!(content::encode(&rename(&"x".repeat(content::MAX_GROUP_NAME_BYTES))).is_ok());
    assert_refused(
        rename(&"x".repeat(content::MAX_GROUP_NAME_BYTES + 1)),
        ContentError::Group(GroupChangeError::InvalidName {
            len: content::MAX_GROUP_NAME_BYTES + 1,
            max: content::MAX_GROUP_NAME_BYTES,
        }),
    );
    assert_refused(
        rename("bad\u{1b}name"),
        ContentError::Group(GroupChangeError::NameControlCharacter { position: 3 }),
    );
    assert_refused(
        Content::GroupControl {
            change: vec![1; 10],
        },
        ContentError::Group(GroupChangeError::Truncated { len: 10, min: 66 }),
    );
    // A welcome whose change is the Create, not an Add.
    let samples = group_samples();
    let (Content::GroupControl { change: create }, Content::GroupWelcome { state, .. }) =
        (&samples[0], &samples[2])
    else {
        panic!("samples are a Create and a welcome");
    };
    assert_refused(
        Content::GroupWelcome {
            state: state.clone(),
            change: create.clone(),
        },
        ContentError::Group(GroupChangeError::BadWelcome("the change is not an Add")),
    );
}

#[test]
fn ids_have_one_hex_spelling() {
    use umbra_protocol::content::MessageId;
    use umbra_protocol::wire::AccountId;
    let hex = "0123456789abcdef0123456789ABCDEF";
    let id = AccountId::from_hex(hex).expect("32 hex digits");
    assert_eq!(id.to_hex(), hex.to_lowercase());
    assert!(MessageId::from_hex(hex).is_some());
    // A sign, a space, a short or long string, or a non-ASCII digit is not hex.
    for bad in [
        "+f23456789abcdef0123456789abcdef",
        "+f+f456789abcdef0123456789abcdef",
        " f23456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdef0123456789abcdé",
    ] {
        assert!(
            AccountId::from_hex(bad).is_none(),
            "{bad:?} parsed as an account id"
        );
        assert!(
            MessageId::from_hex(bad).is_none(),
            "{bad:?} parsed as a message id"
        );
    }
}
