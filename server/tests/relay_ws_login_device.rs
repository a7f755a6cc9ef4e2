//! In-process relay tests of `LoginDevice` (docs/PROTOCOL.md 15.6, logging
//! in again as an existing device), over real WebSockets, on SQLite and on
//! PostgreSQL (two nodes sharing the database; it must be reachable under
//! CI=true): a device N whose token ended gets a token for device N again
//! from a fresh password login on the same connection, keeping its id, with
//! no device enrolled and the login's device-1 token gone; a removed or a
//! never-assigned device is refused with `UnknownRecipient` saying so, the
//! login's token revoked; and the request needs a fresh login on that
//! connection (none, spent, after `Authenticate`, after a logout
//! everywhere).
//!
//! Must never: pass with a relay that issues a token for a removed device,
//! for a device without a password proof on that very connection, twice
//! from one login, or enrols a device for it.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, login, signed_in, Client, TestRelay};
use devices::{authenticate, nodes, Backend};
use umbra_wire::{Address, DeviceId, ErrorCode, LinkEnrolled, Request, Response, SessionToken};

on_both_stores!(
    a_current_device_logs_in_again_as_itself,
    a_removed_or_unknown_device_is_refused_and_the_login_revoked,
    the_request_needs_a_fresh_login_on_the_same_connection,
);

/// A password login of `user` on a new connection to `relay` and its
/// `LoginDevice { device }`: the connection, the login's token and the
/// answer.
async fn login_as(relay: &TestRelay, user: &str, device: u32) -> (Client, SessionToken, Response) {
    let mut c = Client::connect(relay).await;
    let (result, _) = login(&mut c, user, b"pw").await;
    let (token, _) = result.expect("logged in");
    let answer = c
        .ask(Request::LoginDevice {
            device: DeviceId(device),
        })
        .await;
    (c, token, answer)
}

fn given(answer: Response) -> LinkEnrolled {
    match answer {
        Response::LoginEnrolled(given) => given,
        other => panic!("LoginDevice gave no token: {other:?}"),
    }
}

async fn list(c: &mut Client) -> Vec<u32> {
    match c.ask(Request::ListDevices).await {
        Response::Devices { devices } => devices.iter().map(|d| d.device.0).collect(),
        other => panic!("ListDevices: {other:?}"),
    }
}

/// Whether `token` still authenticates as `device` of `account` on `relay`.
async fn still_valid(relay: &TestRelay, token: &SessionToken, address: Address) -> bool {
    let mut c = Client::connect(relay).await;
    let (answer, _) = c
        .call(Request::Authenticate {
            token: token.clone(),
            device: address.device,
        })
        .await;
    match answer {
        Response::Authenticated { address: got } => got == address,
        other => {
            assert_eq!(error_code(&other), Some(ErrorCode::AuthFailed));
            false
        }
    }
}

/// Device 2 of alice, enrolled with `LoginEnrol`, then logged out: its
/// token is gone, as after `umbra logout` or an expiry.
async fn logged_out_device_2(relay: &TestRelay) {
    let mut c = Client::connect(relay).await;
    let (result, _) = login(&mut c, "alice", b"pw").await;
    result.expect("logged in");
    let enrolled = given(c.ask(Request::LoginEnrol).await);
    assert_eq!(enrolled.device, DeviceId(2));
    let address = Address {
        account: enrolled.account,
        device: DeviceId(2),
    };
    authenticate(&mut c, &enrolled.token, DeviceId(2), address).await;
    assert_eq!(
        c.ask(Request::Logout { everywhere: false }).await,
        Response::Ok
    );
    assert!(!still_valid(relay, &enrolled.token, address).await);
}

async fn a_current_device_logs_in_again_as_itself(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut first, alice, _) = signed_in(&nodes.a, "alice").await;
    logged_out_device_2(&nodes.a).await;
    let other = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut again, login_token, answer) = login_as(other, "alice", 2).await;
    let token = given(answer);
    assert_eq!((token.account, token.device), (alice, DeviceId(2)));
    let device_2 = Address {
        account: alice,
        device: DeviceId(2),
    };
    // The token is device 2's only, and the login's device-1 token is gone.
    assert!(!still_valid(&nodes.a, &token.token, Address::primary(alice)).await);
    assert!(!still_valid(&nodes.a, &login_token, Address::primary(alice)).await);
    authenticate(&mut again, &token.token, DeviceId(2), device_2).await;
    // Nothing was enrolled, and device 1 was not replaced.
    assert_eq!(list(&mut first).await, vec![1, 2]);
    assert_eq!(list(&mut again).await, vec![1, 2]);

    // Device 1 may name itself: the same as a plain login.
    let (_, _, answer) = login_as(&nodes.a, "alice", 1).await;
    let token = given(answer);
    assert_eq!((token.account, token.device), (alice, DeviceId::PRIMARY));
    assert!(still_valid(&nodes.a, &token.token, Address::primary(alice)).await);
}

async fn a_removed_or_unknown_device_is_refused_and_the_login_revoked(
    backend: Backend,
    test: &str,
) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut first, alice, _) = signed_in(&nodes.a, "alice").await;
    logged_out_device_2(&nodes.a).await;
    assert_eq!(
        first
            .ask(Request::RemoveDevice {
                device: DeviceId(2)
            })
            .await,
        Response::Ok
    );
    for device in [2, 7] {
        let (_, login_token, answer) = login_as(&nodes.a, "alice", device).await;
        assert_eq!(error_code(&answer), Some(ErrorCode::UnknownRecipient));
        let Response::Error { message, .. } = &answer else {
            unreachable!()
        };
        assert!(
            message.contains(&format!("device {device} "))
                && message.contains("not a current device"),
            "the refusal names the device and why: {message}"
        );
        // The login's token goes at once, on every node.
        for node in [Some(&nodes.a), nodes.b.as_ref()].into_iter().flatten() {
            assert!(!still_valid(node, &login_token, Address::primary(alice)).await);
        }
    }
    // No tombstone came back, nothing was enrolled.
    assert_eq!(list(&mut first).await, vec![1]);
}

async fn the_request_needs_a_fresh_login_on_the_same_connection(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    signed_in(&nodes.a, "alice").await;
    logged_out_device_2(&nodes.a).await;
    let ask = Request::LoginDevice {
        device: DeviceId(2),
    };
    let refused = |answer: &Response| error_code(answer) == Some(ErrorCode::UnknownExchange);

    let mut c = Client::connect(&nodes.a).await;
    assert!(refused(&c.ask(ask.clone()).await), "no login");
    let (result, _) = login(&mut c, "alice", b"wrong").await;
    assert!(result.is_err());
    assert!(refused(&c.ask(ask.clone()).await), "failed login");

    // One login gives one token; LoginEnrol after it is refused too.
    let (mut once, _, answer) = login_as(&nodes.a, "alice", 2).await;
    given(answer);
    assert!(refused(&once.ask(ask.clone()).await), "spent");
    assert!(refused(&once.ask(Request::LoginEnrol).await), "spent");

    // Not once authenticated.
    let mut authed = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut authed, "alice", b"pw").await;
    let (token, alice) = result.expect("logged in");
    authenticate(
        &mut authed,
        &token,
        DeviceId::PRIMARY,
        Address::primary(alice),
    )
    .await;
    assert_eq!(
        error_code(&authed.ask(ask.clone()).await),
        Some(ErrorCode::AlreadyAuthenticated)
    );

    // A logout everywhere between the login and the request revokes it.
    let mut revoked = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut revoked, "alice", b"pw").await;
    result.expect("logged in");
    assert_eq!(
        authed.ask(Request::Logout { everywhere: true }).await,
        Response::Ok
    );
    assert!(refused(&revoked.ask(ask).await), "revoked");
}
