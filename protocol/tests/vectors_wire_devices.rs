//! The device frames of docs/PROTOCOL.md §15.4–15.6 (request tags 19–28,
//! response tags 14–18, error code 26) checked against the spec: bytes
//! built by hand from the §9.7 and §9.8 rows, the §9.9 limits at their
//! edges on both sides, the refusals, the auth column, and the redacted
//! `Debug`. Their vectors are appended to `docs/test-vectors/wire.json` by
//! `vectors_wire.rs` from `device_frames/`; `spec_wire.rs` re-encodes them
//! from its own tables.
//!
//! Must never: build an expected byte string with umbra's encoders.

mod common;
mod device_frames;
mod material;

use umbra_protocol::wire::{
    self, AccountId, ClientFrame, DeviceId, DeviceInfo, ErrorCode, LimitError, LinkEnrolled,
    LinkMessage, LinkTicketId, RelayFrame, Request, Response, SessionToken, WireError,
};

const TICKET: [u8; 16] = [0x7a; 16];
const ACCOUNT: [u8; 16] = [0xc1; 16];
const TOKEN: [u8; 32] = [0x5e; 32];

fn request(request_id: u64, request: Request) -> Vec<u8> {
    wire::encode_client(&ClientFrame {
        request_id,
        request,
    })
    .expect("encodes")
}

fn response(request_id: u64, response: Response) -> Vec<u8> {
    wire::encode_relay(&RelayFrame::Response {
        request_id,
        response,
    })
    .expect("encodes")
}

/// `prefix || 10 || ticket || suffix`: a ticket is a 16-byte fixed array,
/// so a byte string of length 16 (§9.2).
fn with_ticket(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    [prefix, &[0x10], &TICKET, suffix].concat()
}

fn ticket() -> LinkTicketId {
    LinkTicketId::from_bytes(TICKET)
}

#[test]
fn requests_are_the_bytes_of_their_9_7_rows() {
    let account = AccountId::from_bytes(ACCOUNT);
    let list = vec![0xd1; 94];
    let cases: Vec<(Request, Vec<u8>)> = vec![
        (
            Request::PublishDeviceList { list: list.clone() },
            [&[1, 7, 19, 94][..], &list].concat(),
        ),
        (
            Request::FetchDeviceList { account },
            [&[1, 7, 20, 16][..], &ACCOUNT].concat(),
        ),
        // The spec's example: ListDevices with request id 7.
        (Request::ListDevices, vec![0x01, 0x07, 0x15]),
        (
            Request::RemoveDevice {
                device: DeviceId(300),
            },
            vec![1, 7, 22, 0xac, 0x02],
        ),
        (
            Request::FetchDeviceBundle {
                account,
                device: DeviceId(2),
            },
            [&[1, 7, 23, 16][..], &ACCOUNT, &[2]].concat(),
        ),
        (Request::LinkCreate, vec![1, 7, 24]),
        (
            Request::LinkJoin { ticket: ticket() },
            with_ticket(&[1, 7, 25], &[]),
        ),
        (
            Request::LinkPost {
                ticket: ticket(),
                payload: vec![0xee; 3],
            },
            with_ticket(&[1, 7, 26], &[3, 0xee, 0xee, 0xee]),
        ),
        (
            Request::LinkFetch {
                ticket: ticket(),
                after: 128,
            },
            with_ticket(&[1, 7, 27], &[0x80, 0x01]),
        ),
        (
            Request::LinkEnrol { ticket: ticket() },
            with_ticket(&[1, 7, 28], &[]),
        ),
    ];
    assert_eq!(cases.len(), 10, "one case per tag 19 to 28");
    for (value, expected) in cases {
        let kind = value.kind();
        assert_eq!(request(7, value.clone()), expected, "{kind}");
        let decoded = wire::decode_client(&expected).expect("decodes");
        assert_eq!(decoded.request, value, "{kind}");
    }
}

#[test]
fn responses_are_the_bytes_of_their_9_8_rows() {
    let cases: Vec<(Response, Vec<u8>)> = vec![
        // The spec's example: no list published, answering request 7.
        (Response::DeviceList { list: None }, vec![1, 0, 7, 14, 0]),
        (
            Response::DeviceList {
                list: Some(vec![0xd2; 98]),
            },
            [&[1, 0, 7, 14, 1, 98][..], &[0xd2; 98]].concat(),
        ),
        (
            Response::Devices {
                devices: vec![
                    DeviceInfo {
                        device: DeviceId(1),
                        created_at: 300,
                        last_seen_at: 3600,
                    },
                    DeviceInfo {
                        device: DeviceId(3),
                        created_at: 1,
                        last_seen_at: 0,
                    },
                ],
            },
            // 3600 = 0x0e10: varint 90 1c.
            vec![1, 0, 7, 15, 2, 1, 0xac, 0x02, 0x90, 0x1c, 3, 1, 0],
        ),
        (
            Response::LinkTicket {
                ticket: ticket(),
                expires_at: 5,
            },
            with_ticket(&[1, 0, 7, 16], &[5]),
        ),
        (
            Response::LinkMessages {
                messages: vec![LinkMessage(vec![0xaa]), LinkMessage(vec![])],
                enrolled: None,
            },
            vec![1, 0, 7, 17, 2, 1, 0xaa, 0, 0],
        ),
        (
            Response::LinkMessages {
                messages: vec![],
                enrolled: Some(LinkEnrolled {
                    account: AccountId::from_bytes(ACCOUNT),
                    device: DeviceId(2),
                    token: SessionToken::from_bytes(TOKEN),
                    expires_at: 9,
                }),
            },
            [
                &[1, 0, 7, 17, 0, 1, 16][..],
                &ACCOUNT,
                &[2, 32],
                &TOKEN,
                &[9],
            ]
            .concat(),
        ),
        (
            Response::DeviceEnrolled {
                device: DeviceId(2),
            },
            vec![1, 0, 7, 18, 2],
        ),
    ];
    for (value, expected) in cases {
        let kind = value.kind();
        assert_eq!(response(7, value.clone()), expected, "{kind}");
        match wire::decode_relay(&expected).expect("decodes") {
            RelayFrame::Response {
                request_id: 7,
                response,
            } => assert_eq!(response, value, "{kind}"),
            other => panic!("{kind}: decoded as {other:?}"),
        }
    }
}

#[test]
fn stale_device_list_is_code_26_neither_retryable_nor_fatal() {
    // Closing { code 26, "" }, by hand: version, tag 5, varint 26, empty string.
    let frame = wire::decode_relay(&[1, 5, 26, 0]).expect("26 is a known code");
    let RelayFrame::Closing { code, .. } = frame else {
        panic!("decoded as {frame:?}");
    };
    assert_eq!(code, ErrorCode::StaleDeviceList);
    assert_eq!((code.as_u16(), code.name()), (26, "StaleDeviceList"));
    assert!(!code.is_retryable() && !code.is_fatal());
    assert!(matches!(
        wire::decode_relay(&[1, 5, 27, 0]),
        Err(WireError::Malformed(_))
    ));
}

fn limit(result: Result<(), LimitError>) -> Option<(&'static str, usize, usize, ErrorCode)> {
    match result {
        Ok(()) => None,
        Err(error @ LimitError::FieldTooLarge { field, len, max }) => {
            Some((field, len, max, error.code()))
        }
        Err(other) => panic!("unexpected limit error {other:?}"),
    }
}

#[test]
fn request_limits_hold_at_their_edges() {
    let publish = |len| Request::PublishDeviceList { list: vec![1; len] };
    let post = |len| Request::LinkPost {
        ticket: ticket(),
        payload: vec![1; len],
    };
    assert_eq!(limit(publish(122).check_limits()), None);
    assert_eq!(
        limit(publish(123).check_limits()),
        Some(("list", 123, 122, ErrorCode::LimitExceeded))
    );
    assert_eq!(
        limit(post(0).check_limits()),
        None,
        "an empty post is allowed"
    );
    assert_eq!(limit(post(32_768).check_limits()), None);
    assert_eq!(
        limit(post(32_769).check_limits()),
        Some(("payload", 32_769, 32_768, ErrorCode::LimitExceeded))
    );
    // The largest post fits a frame with room to spare.
    let bytes = request(u64::MAX, post(32_768));
    assert!(bytes.len() < wire::MAX_FRAME_BYTES, "{}", bytes.len());
    for frame in device_frames::client_examples() {
        assert_eq!(limit(frame.request.check_limits()), None, "example");
    }
}

#[test]
fn response_limits_hold_at_their_edges() {
    let info = |n: u32| DeviceInfo {
        device: DeviceId(n),
        created_at: 0,
        last_seen_at: 0,
    };
    let devices = |n: u32| Response::Devices {
        devices: (1..=n).map(info).collect(),
    };
    let messages = |count: usize, len: usize| Response::LinkMessages {
        messages: vec![LinkMessage(vec![0; len]); count],
        enrolled: Some(LinkEnrolled {
            account: AccountId::from_bytes(ACCOUNT),
            device: DeviceId(u32::MAX),
            token: SessionToken::from_bytes(TOKEN),
            expires_at: u64::MAX,
        }),
    };
    let list = |len| Response::DeviceList {
        list: Some(vec![0; len]),
    };
    assert_eq!(limit(devices(8).check_limits()), None);
    assert_eq!(
        limit(devices(9).check_limits()),
        Some(("devices", 9, 8, ErrorCode::LimitExceeded))
    );
    assert_eq!(limit(messages(4, 32_768).check_limits()), None);
    assert_eq!(
        limit(messages(5, 0).check_limits()),
        Some(("messages", 5, 4, ErrorCode::LimitExceeded))
    );
    assert_eq!(
        limit(messages(1, 32_769).check_limits()),
        Some(("message", 32_769, 32_768, ErrorCode::LimitExceeded))
    );
    assert_eq!(limit(list(122).check_limits()), None);
    assert_eq!(
        limit(list(123).check_limits()),
        Some(("list", 123, 122, ErrorCode::LimitExceeded))
    );
    assert_eq!(
        limit(Response::DeviceList { list: None }.check_limits()),
        None
    );
    // The largest LinkMessages the limits allow fits a frame.
    let bytes = response(u64::MAX, messages(4, 32_768));
    assert!(bytes.len() < wire::MAX_FRAME_BYTES, "{}", bytes.len());
    for frame in device_frames::relay_examples() {
        let RelayFrame::Response { response, .. } = frame else {
            panic!("device examples are responses");
        };
        assert_eq!(limit(response.check_limits()), None, "example");
    }
}

#[test]
fn broken_device_frames_are_malformed() {
    for (what, bytes) in device_frames::invalid_client_frames() {
        let error = wire::decode_client(&bytes).expect_err(what);
        assert!(
            matches!(error, WireError::Malformed(_)),
            "{what}: {error:?}"
        );
        assert_eq!(error.code(), ErrorCode::BadFrame, "{what}");
    }
    let relay_cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown response tag 19", vec![1, 0, 7, 19]),
        ("DeviceList option byte 2", vec![1, 0, 7, 14, 2]),
        (
            "LinkTicket of 15 bytes",
            [&[1, 0, 7, 16, 15][..], &[0; 15], &[5]].concat(),
        ),
        (
            "LinkMessages cut before enrolled",
            vec![1, 0, 7, 17, 1, 1, 0xaa],
        ),
        (
            "LinkEnrolled token of 31 bytes",
            [
                &[1, 0, 7, 17, 0, 1, 16][..],
                &ACCOUNT,
                &[2, 31],
                &[0; 31],
                &[9],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in relay_cases {
        let error = wire::decode_relay(&bytes).expect_err(what);
        assert!(
            matches!(error, WireError::Malformed(_)),
            "{what}: {error:?}"
        );
    }
}

#[test]
fn no_cut_or_changed_device_frame_panics() {
    let mut inputs: Vec<Vec<u8>> = device_frames::client_examples()
        .iter()
        .map(|frame| wire::encode_client(frame).expect("encodes"))
        .collect();
    let relay: Vec<Vec<u8>> = device_frames::relay_examples()
        .iter()
        .map(|frame| wire::encode_relay(frame).expect("encodes"))
        .collect();
    let split = inputs.len();
    inputs.extend(relay);
    for (n, bytes) in inputs.iter().enumerate() {
        let decode = |b: &[u8]| {
            if n < split {
                wire::decode_client(b).map(|_| ())
            } else {
                wire::decode_relay(b).map(|_| ())
            }
        };
        assert_eq!(decode(bytes), Ok(()));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "input {n} cut at {cut}");
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] ^= flip;
                let _ = decode(&changed); // any answer but a panic
            }
        }
    }
}

#[test]
fn auth_rules_are_the_9_7_column() {
    // (kind, auth column of §9.7 / §15)
    let column = [
        ("PublishDeviceList", "yes"),
        ("FetchDeviceList", "yes"),
        ("ListDevices", "yes"),
        ("RemoveDevice", "yes"),
        ("FetchDeviceBundle", "yes"),
        ("LinkCreate", "yes"),
        ("LinkJoin", "pre"),
        ("LinkPost", "any"),
        ("LinkFetch", "any"),
        ("LinkEnrol", "yes"),
    ];
    let examples = device_frames::client_examples();
    assert_eq!(examples.len(), column.len());
    for (frame, (kind, auth)) in examples.iter().zip(column) {
        let request = &frame.request;
        assert_eq!(request.kind(), kind);
        assert!(request.is_device_request(), "{kind}");
        let got = match (
            request.is_pre_authentication(),
            request.is_any_authentication(),
        ) {
            (true, false) => "pre",
            (false, true) => "any",
            (false, false) => "yes",
            (true, true) => panic!("{kind} is both pre and any"),
        };
        assert_eq!(got, auth, "{kind}");
    }
    assert_eq!(
        examples.first().map(|f| f.request_id),
        Some(device_frames::FIRST_REQUEST_ID)
    );
    // No request of the earlier tags, nor the later LoginEnrol (32), is a
    // device request.
    let file = common::committed("wire.json");
    let mut older = 0;
    for entry in file["client_frames"].as_array().expect("frames") {
        let bytes = hex::decode(entry["hex"].as_str().expect("hex")).expect("hex");
        let frame = wire::decode_client(&bytes).expect("vectors decode");
        let tag = postcard::to_allocvec(&frame.request).expect("encodes")[0];
        assert_eq!(
            frame.request.is_device_request(),
            (19..=28).contains(&tag),
            "{tag}"
        );
        older += usize::from(tag < 19);
    }
    assert_eq!(older, 20);
    assert!(Request::Ping.is_any_authentication());
}

#[test]
fn debug_shows_no_ticket_token_account_or_post() {
    let enrolled = Response::LinkMessages {
        messages: vec![LinkMessage(vec![0x3c; 8])],
        enrolled: Some(LinkEnrolled {
            account: AccountId::from_bytes(ACCOUNT),
            device: DeviceId(2),
            token: SessionToken::from_bytes(TOKEN),
            expires_at: 9,
        }),
    };
    let texts = [
        format!("{:?}", Request::LinkJoin { ticket: ticket() }),
        format!(
            "{:?}",
            Request::FetchDeviceList {
                account: AccountId::from_bytes(ACCOUNT)
            }
        ),
        format!(
            "{:?}",
            RelayFrame::Response {
                request_id: 7,
                response: enrolled.clone(),
            }
        ),
        format!("{enrolled:?}"),
        format!("{:?}", ticket()),
        format!(
            "{:?}",
            LinkEnrolled {
                account: AccountId::from_bytes(ACCOUNT),
                device: DeviceId(2),
                token: SessionToken::from_bytes(TOKEN),
                expires_at: 9,
            }
        ),
        format!("{:?}", LinkMessage(vec![0x3c; 8])),
    ];
    for text in &texts {
        for secret in [
            "7a7a", "122, 122", "c1c1", "193, 193", "5e5e", "94, 94", "60, 60",
        ] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    assert_eq!(texts[0], "LinkJoin { <redacted> }");
    assert_eq!(format!("{:?}", Request::ListDevices), "ListDevices");
}

#[test]
fn wire_json_ends_with_the_device_examples() {
    let file = common::committed("wire.json");
    // The device examples, then LoginEnrol / LoginEnrolled (§15.6), the
    // three key-transparency frames of each side (§16.9) and LoginDevice
    // (§15.6, a client frame only), appended after.
    let after: [(&str, &[&str]); 2] = [
        (
            "client_frames",
            &[
                "LoginEnrol",
                "KtHead",
                "KtLookup",
                "KtHistory",
                "LoginDevice",
            ],
        ),
        (
            "relay_frames",
            &[
                "Response/LoginEnrolled",
                "Response/KtHead",
                "Response/KtLookup",
                "Response/KtHistory",
            ],
        ),
    ];
    for (list, names) in after {
        let all = file[list].as_array().expect("frames");
        let last: Vec<&str> = all[all.len() - names.len()..]
            .iter()
            .map(|e| e["name"].as_str().expect("name"))
            .collect();
        assert_eq!(last, names);
    }
    let tail = |list: &str, n: usize| -> Vec<(String, Vec<u8>)> {
        let all = file[list].as_array().expect("frames");
        let after = after
            .iter()
            .find(|(l, _)| *l == list)
            .expect("listed")
            .1
            .len();
        all[all.len() - n - after..all.len() - after]
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().expect("name").to_owned(),
                    hex::decode(e["hex"].as_str().expect("hex")).expect("hex"),
                )
            })
            .collect()
    };
    let client = device_frames::client_examples();
    for ((name, bytes), frame) in tail("client_frames", client.len()).into_iter().zip(&client) {
        assert_eq!(name, frame.request.kind());
        assert_eq!(wire::decode_client(&bytes).as_ref(), Ok(frame), "{name}");
    }
    let relay = device_frames::relay_examples();
    for ((name, bytes), frame) in tail("relay_frames", relay.len()).into_iter().zip(&relay) {
        let RelayFrame::Response { response, .. } = frame else {
            panic!("device examples are responses");
        };
        let kind = device_frames::response_name(response).unwrap_or(response.kind());
        assert_eq!(name, format!("Response/{kind}"));
        assert_eq!(wire::decode_relay(&bytes).as_ref(), Ok(frame), "{name}");
    }
}
