//! Example device frames (docs/PROTOCOL.md §15.4–15.6: request tags 19–28,
//! response tags 16–18 and 14–15), shared by `vectors_wire.rs`, which
//! appends them to `docs/test-vectors/wire.json`, and
//! `vectors_wire_devices.rs`, which checks them against the spec.
//!
//! They draw from seeds of their own (0x2c for requests, 0x2d for
//! responses), so adding them left every earlier vector's bytes as they were.
//! The device lists they carry are the signed lists of
//! `docs/test-vectors/device_list.json` (versions 1 and 2), so the examples
//! show real §15.2 lists rather than random bytes.
//!
//! Must never: draw from the material of the earlier examples.

use crate::material::Material;
use umbra_protocol::wire::{
    ClientFrame, DeviceId, DeviceInfo, LinkEnrolled, LinkMessage, RelayFrame, Request, Response,
    SessionToken,
};

/// The request id of the first example request; the others follow it.
#[allow(dead_code)] // read by vectors_wire_devices.rs only
pub const FIRST_REQUEST_ID: u64 = 300;

/// The signed list number `index` of `docs/test-vectors/device_list.json`.
fn signed_list(index: usize) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/test-vectors/device_list.json"
    );
    let text = std::fs::read_to_string(path).expect("device_list.json is committed");
    let file: serde_json::Value = serde_json::from_str(&text).expect("device_list.json is JSON");
    let hex = file["lists"][index]["hex"]
        .as_str()
        .expect("each list has its hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// One example of each request of tags 19 to 28, in tag order, with
/// request ids from [`FIRST_REQUEST_ID`].
pub fn client_examples() -> Vec<ClientFrame> {
    let mut m = Material::new(0x2c);
    let ticket = m.ticket();
    let requests = vec![
        // Version 1, device 1 only: 94 bytes.
        Request::PublishDeviceList {
            list: signed_list(0),
        },
        Request::FetchDeviceList {
            account: m.account(),
        },
        Request::ListDevices,
        Request::RemoveDevice {
            device: DeviceId(2),
        },
        Request::FetchDeviceBundle {
            account: m.account(),
            device: DeviceId(300),
        },
        Request::LinkCreate,
        Request::LinkJoin { ticket },
        Request::LinkPost {
            ticket,
            payload: m.vec(73),
        },
        Request::LinkFetch { ticket, after: 1 },
        Request::LinkEnrol { ticket },
    ];
    requests
        .into_iter()
        .zip(FIRST_REQUEST_ID..)
        .map(|(request, request_id)| ClientFrame {
            request_id,
            request,
        })
        .collect()
}

/// One example of each response of tags 14 to 18 (`DeviceList` twice, with
/// and without a list; `LinkMessages` twice, before and after enrolment),
/// with request ids from [`FIRST_REQUEST_ID`].
pub fn relay_examples() -> Vec<RelayFrame> {
    let mut m = Material::new(0x2d);
    let ticket = m.ticket();
    let responses = vec![
        // Version 2, devices 1 and 2: 98 bytes.
        Response::DeviceList {
            list: Some(signed_list(1)),
        },
        Response::DeviceList { list: None },
        Response::Devices {
            devices: vec![
                DeviceInfo {
                    device: DeviceId(1),
                    created_at: 1_795_000_000,
                    last_seen_at: 1_796_997_600,
                },
                DeviceInfo {
                    device: DeviceId(3),
                    created_at: 1_796_000_000,
                    last_seen_at: 0,
                },
            ],
        },
        Response::LinkTicket {
            ticket,
            expires_at: 1_797_000_300,
        },
        Response::LinkMessages {
            messages: vec![LinkMessage(m.vec(73))],
            enrolled: None,
        },
        Response::LinkMessages {
            messages: vec![LinkMessage(m.vec(40))],
            enrolled: Some(LinkEnrolled {
                account: m.account(),
                device: DeviceId(4),
                token: SessionToken::from_bytes(m.bytes()),
                expires_at: 1_799_592_000,
            }),
        },
        Response::DeviceEnrolled {
            device: DeviceId(4),
        },
    ];
    responses
        .into_iter()
        .zip(FIRST_REQUEST_ID..)
        .map(|(response, request_id)| RelayFrame::Response {
            request_id,
            response,
        })
        .collect()
}

/// The name a device response has in wire.json: its kind, with the second
/// example of a kind told apart as `vectors_wire.rs` does for `Resolved`.
pub fn response_name(response: &Response) -> Option<&'static str> {
    match response {
        Response::DeviceList { list: None } => Some("DeviceList/None"),
        Response::LinkMessages {
            enrolled: Some(_), ..
        } => Some("LinkMessages/Enrolled"),
        _ => None,
    }
}

/// Device frames every decoder must refuse, each with why (all `Malformed`).
pub fn invalid_client_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("unknown request tag 29", vec![1, 1, 29]),
        (
            "link ticket of 15 bytes (LinkJoin)",
            [vec![1, 1, 25, 15], vec![0xaa; 15]].concat(),
        ),
        (
            "link ticket of 17 bytes (LinkEnrol)",
            [vec![1, 1, 28, 17], vec![0xaa; 17]].concat(),
        ),
        (
            "LinkFetch cut before its after field",
            [vec![1, 1, 27, 16], vec![0xaa; 16]].concat(),
        ),
        (
            "device id over u32 (RemoveDevice)",
            vec![1, 1, 22, 0x80, 0x80, 0x80, 0x80, 0x10],
        ),
    ]
}
