//! In-process relay tests of `LoginEnrol` (docs/PROTOCOL.md 15.6,
//! password-only restore as a new device), over real WebSockets, on SQLite
//! and on PostgreSQL (two nodes sharing the database; it must be reachable
//! under CI=true): a password login turned into a new device gets a fresh
//! id and a token bound to it (the login's device-1 token is gone, device
//! 1's own connection is untouched), ids are never reused after a removal,
//! the request is refused without a fresh login on the same connection
//! (none, spent, replaced, failed, after `Authenticate`, after a logout
//! everywhere), and an account at `MAX_DEVICES_PER_ACCOUNT` is refused with
//! `LimitExceeded` saying how to make room, the refused login's token
//! revoked at once on every node.
//!
//! Must never: pass with a relay that enrols a device without a password
//! proof on that very connection, enrols twice from one login, issues a
//! token for device 1 or for another device than the one enrolled, or
//! exceeds the device limit.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, login, register, signed_in, Client, TestRelay};
use devices::{authenticate, nodes, Backend};
use umbra_wire::{
    AccountId, Address, DeviceId, DeviceInfo, ErrorCode, LinkEnrolled, Request, Response,
    SessionToken, MAX_DEVICES_PER_ACCOUNT,
};

on_both_stores!(
    a_fresh_login_becomes_a_new_device_with_its_own_token,
    enrolment_needs_a_fresh_login_on_the_same_connection,
    the_ninth_device_is_refused_with_advice,
);

/// A password login of `user` on a new connection to `relay` and its
/// `LoginEnrol`: the connection (unauthenticated), the login's token and
/// the answer.
async fn login_and_enrol(relay: &TestRelay, user: &str) -> (Client, SessionToken, Response) {
    let mut c = Client::connect(relay).await;
    let (result, _) = login(&mut c, user, b"pw").await;
    let (token, _) = result.expect("logged in");
    let answer = c.ask(Request::LoginEnrol).await;
    (c, token, answer)
}

fn enrolled(answer: Response) -> LinkEnrolled {
    match answer {
        Response::LoginEnrolled(enrolled) => enrolled,
        other => panic!("LoginEnrol did not enrol: {other:?}"),
    }
}

fn ids(devices: &[DeviceInfo]) -> Vec<u32> {
    devices.iter().map(|d| d.device.0).collect()
}

async fn list(c: &mut Client) -> Vec<u32> {
    match c.ask(Request::ListDevices).await {
        Response::Devices { devices } => ids(&devices),
        other => panic!("ListDevices: {other:?}"),
    }
}

async fn a_fresh_login_becomes_a_new_device_with_its_own_token(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut first, alice, _) = signed_in(&nodes.a, "alice").await;
    // The restore on the other node, if there is one.
    let other = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut restored, login_token, answer) = login_and_enrol(other, "alice").await;
    let enrolled = enrolled(answer);
    assert_eq!(enrolled.account, alice);
    assert_eq!(enrolled.device, DeviceId(2), "the next id of the account");
    // The new token is for the new device only.
    let (wrong, _) = restored
        .call(Request::Authenticate {
            token: enrolled.token.clone(),
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(error_code(&wrong), Some(ErrorCode::AuthFailed));
    let address = Address {
        account: alice,
        device: DeviceId(2),
    };
    authenticate(&mut restored, &enrolled.token, DeviceId(2), address).await;
    // The login's device-1 token was replaced, not kept beside it.
    let mut stale = Client::connect(&nodes.a).await;
    let (refused, _) = stale
        .call(Request::Authenticate {
            token: login_token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(error_code(&refused), Some(ErrorCode::AuthFailed));
    // Device 1 was never replaced: its connection still answers, and both
    // see two current devices.
    assert_eq!(list(&mut first).await, vec![1, 2]);
    assert_eq!(list(&mut restored).await, vec![1, 2]);

    // Ids are never reused: after device 2's removal the next is 3.
    assert_eq!(
        first
            .ask(Request::RemoveDevice {
                device: DeviceId(2)
            })
            .await,
        Response::Ok
    );
    let (_, _, answer) = login_and_enrol(&nodes.a, "alice").await;
    assert_eq!(enrolled_device(answer), DeviceId(3));
    assert_eq!(list(&mut first).await, vec![1, 3]);
}

fn enrolled_device(answer: Response) -> DeviceId {
    enrolled(answer).device
}

async fn enrolment_needs_a_fresh_login_on_the_same_connection(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    signed_in(&nodes.a, "alice").await;
    let refused = |answer: &Response| error_code(answer) == Some(ErrorCode::UnknownExchange);

    // No login on this connection.
    let mut c = Client::connect(&nodes.a).await;
    assert!(refused(&c.ask(Request::LoginEnrol).await), "no login");

    // A failed login proves nothing.
    let (result, _) = login(&mut c, "alice", b"wrong").await;
    assert!(result.is_err());
    assert!(refused(&c.ask(Request::LoginEnrol).await), "failed login");

    // A login on another connection does not count here.
    let mut elsewhere = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut elsewhere, "alice", b"pw").await;
    result.expect("logged in elsewhere");
    assert!(
        refused(&c.ask(Request::LoginEnrol).await),
        "another connection's login"
    );

    // One login enrols once.
    let (mut once, _, answer) = login_and_enrol(&nodes.a, "alice").await;
    enrolled(answer);
    assert!(refused(&once.ask(Request::LoginEnrol).await), "spent");

    // A new start replaces the completed login.
    let mut replaced = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut replaced, "alice", b"pw").await;
    result.expect("logged in");
    let (again, _) = login(&mut replaced, "nobody", b"pw").await;
    assert!(again.is_err());
    assert!(
        refused(&replaced.ask(Request::LoginEnrol).await),
        "replaced"
    );

    // Not once authenticated: LoginEnrol is a pre-authentication request.
    // (This connection replaces the first one as device 1's.)
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
        error_code(&authed.ask(Request::LoginEnrol).await),
        Some(ErrorCode::AlreadyAuthenticated)
    );

    // A logout everywhere between the login and the enrolment revokes the
    // login's token, and with it what it could enrol.
    let mut revoked = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut revoked, "alice", b"pw").await;
    result.expect("logged in");
    assert_eq!(
        authed.ask(Request::Logout { everywhere: true }).await,
        Response::Ok
    );
    assert!(refused(&revoked.ask(Request::LoginEnrol).await), "revoked");

    // Only the one enrolment above happened.
    let mut check = Client::connect(&nodes.a).await;
    let (result, _) = login(&mut check, "alice", b"pw").await;
    let (token, _) = result.expect("logged in");
    authenticate(
        &mut check,
        &token,
        DeviceId::PRIMARY,
        Address::primary(alice),
    )
    .await;
    assert_eq!(list(&mut check).await, vec![1, 2]);
}

async fn the_ninth_device_is_refused_with_advice(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut first, _, _) = signed_in(&nodes.a, "alice").await;
    for expected in 2..=MAX_DEVICES_PER_ACCOUNT as u32 {
        let (_, _, answer) = login_and_enrol(&nodes.a, "alice").await;
        assert_eq!(enrolled_device(answer), DeviceId(expected));
    }
    let (mut ninth, login_token, answer) = login_and_enrol(&nodes.a, "alice").await;
    assert_eq!(error_code(&answer), Some(ErrorCode::LimitExceeded));
    let Response::Error { message, .. } = &answer else {
        unreachable!()
    };
    assert!(
        message.contains("umbra devices remove"),
        "the refusal says how to make room: {message}"
    );
    assert_eq!(list(&mut first).await.len(), MAX_DEVICES_PER_ACCOUNT);
    // The refused login's token is revoked at once, on every node: it was
    // for an enrolment, and device 1 is not taken over with it.
    for node in [Some(&nodes.a), nodes.b.as_ref()].into_iter().flatten() {
        let mut other = Client::connect(node).await;
        let (refused, _) = other
            .call(Request::Authenticate {
                token: login_token.clone(),
                device: DeviceId::PRIMARY,
            })
            .await;
        assert_eq!(error_code(&refused), Some(ErrorCode::AuthFailed));
    }
    let (refused, _) = ninth
        .call(Request::Authenticate {
            token: login_token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(error_code(&refused), Some(ErrorCode::AuthFailed));
    // Device 1 was not replaced: it makes room, and the next login enrols
    // the next id (9: 2..8 were taken).
    assert_eq!(
        first
            .ask(Request::RemoveDevice {
                device: DeviceId(5)
            })
            .await,
        Response::Ok
    );
    let (_, _, answer) = login_and_enrol(&nodes.a, "alice").await;
    assert_eq!(enrolled_device(answer), DeviceId(9));
    // Another account is not affected by alice's limit.
    let mut bob = Client::connect(&nodes.a).await;
    let bob_id: AccountId = register(&mut bob, "bob", b"pw").await.expect("registered");
    let (_, _, answer) = login_and_enrol(&nodes.a, "bob").await;
    let bob_enrolled = enrolled(answer);
    assert_eq!(
        (bob_enrolled.account, bob_enrolled.device),
        (bob_id, DeviceId(2))
    );
}
