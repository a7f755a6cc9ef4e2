//! Until this relay serves the device requests of docs/PROTOCOL.md §15
//! (request tags 19–28), it answers each with `Error { BadFrame, "<Kind>
//! is not supported by this relay yet" }` in either auth state and keeps
//! the connection open (§15 status, §9.6): the frame was read, so nothing
//! is out of sync. Replace this file with the real device tests when the
//! relay serves them.
//!
//! Must never: accept a device request without carrying it out, or close
//! the connection over one.

mod common;

use common::{error_code, relay, signed_in, Client};
use umbra_wire::{AccountId, DeviceId, ErrorCode, LinkTicketId, Request, Response};

fn every_device_request() -> Vec<Request> {
    let ticket = LinkTicketId::from_bytes([7; 16]);
    let account = AccountId::from_bytes([9; 16]);
    vec![
        Request::PublishDeviceList { list: vec![1; 94] },
        Request::FetchDeviceList { account },
        Request::ListDevices,
        Request::RemoveDevice {
            device: DeviceId(2),
        },
        Request::FetchDeviceBundle {
            account,
            device: DeviceId(2),
        },
        Request::LinkCreate,
        Request::LinkJoin { ticket },
        Request::LinkPost {
            ticket,
            payload: vec![1; 73],
        },
        Request::LinkFetch { ticket, after: 0 },
        Request::LinkEnrol { ticket },
    ]
}

async fn refused_and_still_open(c: &mut Client) {
    for request in every_device_request() {
        let kind = request.kind();
        let response = c.ask(request).await;
        assert_eq!(error_code(&response), Some(ErrorCode::BadFrame), "{kind}");
        let Response::Error { message, .. } = &response else {
            unreachable!("error_code matched an Error");
        };
        assert_eq!(
            message,
            &format!("{kind} is not supported by this relay yet")
        );
        assert_eq!(c.ask(Request::Ping).await, Response::Pong, "after {kind}");
    }
}

#[tokio::test]
async fn device_requests_are_refused_before_authentication() {
    let relay = relay().await;
    let mut c = Client::connect(&relay).await;
    refused_and_still_open(&mut c).await;
}

#[tokio::test]
async fn device_requests_are_refused_after_authentication() {
    let relay = relay().await;
    let (mut c, _, _) = signed_in(&relay, "erin").await;
    refused_and_still_open(&mut c).await;
}
