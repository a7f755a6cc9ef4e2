//! In-process relay tests of the device list and the device directory
//! (docs/PROTOCOL.md 15.4, 15.5), over real WebSockets, on SQLite and on
//! PostgreSQL (which must be reachable under CI=true): publishing and
//! fetching the signed list, refusing a list the relay cannot verify
//! (forged, another account's, undecodable, from a device with no identity),
//! refusing a stale version with code 26, a version above 2^63 − 1,
//! and a list naming a device that
//! is not current, listing devices with their last use, and sending to
//! and fetching bundles of current devices only (`FetchBundle` speaking for
//! the lowest current one once device 1 is removed).
//!
//! Must never: pass with a relay that stores a list its publisher's
//! identity did not sign, lets an older or equal version replace the
//! stored one, or queues an envelope for a device that is not current.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, signed_in};
use devices::{link_device, nodes, publish_identity, publish_keys, signed_list, Backend};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_wire::{
    AccountId, AccountRef, Address, DeviceId, ErrorCode, OutgoingEnvelope, Request, Response,
    SendOutcome,
};

on_both_stores!(
    a_published_list_is_fetched_byte_for_byte,
    a_list_the_relay_cannot_verify_is_refused,
    a_stale_version_is_refused_with_code_26,
    a_version_above_i64_max_is_refused,
    devices_are_listed_with_their_last_use,
    a_send_reaches_only_current_devices,
    bundles_come_from_current_devices_only,
);

async fn a_published_list_is_fetched_byte_for_byte(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, _, _) = signed_in(&nodes.a, "bob").await;
    // None published yet.
    let response = bob
        .ask(Request::FetchDeviceList { account: alice_id })
        .await;
    assert_eq!(response, Response::DeviceList { list: None });
    let identity = publish_identity(&mut alice).await;
    let list = signed_list(&identity, alice_id, 1, &[1]);
    let response = alice
        .ask(Request::PublishDeviceList { list: list.clone() })
        .await;
    assert_eq!(response, Response::Ok);
    let response = bob
        .ask(Request::FetchDeviceList { account: alice_id })
        .await;
    assert_eq!(response, Response::DeviceList { list: Some(list) });
    // No such account.
    let nobody = AccountId::from_bytes([0x5a; 16]);
    let response = bob.ask(Request::FetchDeviceList { account: nobody }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));
}

async fn a_list_the_relay_cannot_verify_is_refused(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (_bob, bob_id, _) = signed_in(&nodes.a, "bob").await;
    let genuine = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    // No identity published yet: nothing to check a signature under.
    let response = alice
        .ask(Request::PublishDeviceList {
            list: signed_list(&genuine, alice_id, 1, &[1]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::NoPreKeys));
    let identity = publish_identity(&mut alice).await;
    // Signed by a key that is not the account's: a forged list.
    let forged = signed_list(&genuine, alice_id, 1, &[1]);
    let response = alice.ask(Request::PublishDeviceList { list: forged }).await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadSignature));
    // A genuine signature over changed bytes (the version raised).
    let mut tampered = signed_list(&identity, alice_id, 1, &[1]);
    tampered[24] = 2;
    let response = alice
        .ask(Request::PublishDeviceList { list: tampered })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadSignature));
    // Another account's list, well signed: refused before the signature.
    let response = alice
        .ask(Request::PublishDeviceList {
            list: signed_list(&identity, bob_id, 1, &[1]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadFrame));
    // Undecodable: BadFrame, not fatal.
    let response = alice
        .ask(Request::PublishDeviceList { list: vec![1; 94] })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadFrame));
    assert_eq!(alice.ask(Request::Ping).await, Response::Pong);
    // Nothing was stored by any of them.
    let response = alice
        .ask(Request::FetchDeviceList { account: alice_id })
        .await;
    assert_eq!(response, Response::DeviceList { list: None });
}

async fn a_stale_version_is_refused_with_code_26(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let identity = publish_identity(&mut alice).await;
    let v2 = signed_list(&identity, alice_id, 2, &[1]);
    let response = alice
        .ask(Request::PublishDeviceList { list: v2.clone() })
        .await;
    assert_eq!(response, Response::Ok);
    for version in [2, 1] {
        let response = alice
            .ask(Request::PublishDeviceList {
                list: signed_list(&identity, alice_id, version, &[1]),
            })
            .await;
        assert_eq!(
            error_code(&response),
            Some(ErrorCode::StaleDeviceList),
            "version {version}"
        );
        assert_eq!(ErrorCode::StaleDeviceList as u16, 26);
    }
    // A device that is not current (never enrolled).
    let response = alice
        .ask(Request::PublishDeviceList {
            list: signed_list(&identity, alice_id, 3, &[1, 5]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));
    // The v2 list stays.
    let response = alice
        .ask(Request::FetchDeviceList { account: alice_id })
        .await;
    assert_eq!(response, Response::DeviceList { list: Some(v2) });
    // A linked device may be listed, under a higher version.
    let (_second, second, _) = link_device(&mut alice, &nodes.a).await;
    let response = alice
        .ask(Request::PublishDeviceList {
            list: signed_list(&identity, alice_id, 3, &[1, second.device.0]),
        })
        .await;
    assert_eq!(response, Response::Ok);
}

async fn devices_are_listed_with_their_last_use(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, _, _) = signed_in(&nodes.a, "alice").await;
    let (_second, second, _) = link_device(&mut alice, &nodes.a).await;
    let Response::Devices { devices } = alice.ask(Request::ListDevices).await else {
        panic!("ListDevices answered otherwise");
    };
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.device).collect();
    assert_eq!(ids, vec![DeviceId::PRIMARY, second.device]);
    assert_eq!(second.device, DeviceId(2));
    for d in &devices {
        // Both authenticated just now: a whole hour, not zero.
        assert!(d.last_seen_at > 0, "{d:?}");
        assert_eq!(d.last_seen_at % 3600, 0, "{d:?}");
    }
}

async fn a_send_reaches_only_current_devices(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, _, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, bob_id, _) = signed_in(&nodes.a, "bob").await;
    let (_bob2, bob2, _) = link_device(&mut bob, &nodes.a).await;
    let to = |device| OutgoingEnvelope {
        to: Address {
            account: bob_id,
            device: DeviceId(device),
        },
        envelope: vec![7; 40],
    };
    let response = alice
        .ask(Request::Send {
            messages: vec![to(1), to(bob2.device.0), to(7)],
        })
        .await;
    let Response::SendResult { results } = response else {
        panic!("Send answered {response:?}");
    };
    assert!(
        matches!(results[0], SendOutcome::Accepted { .. }),
        "{results:?}"
    );
    assert!(
        matches!(results[1], SendOutcome::Accepted { .. }),
        "{results:?}"
    );
    assert_eq!(
        results[2],
        SendOutcome::Rejected {
            code: ErrorCode::UnknownRecipient
        }
    );
}

async fn bundles_come_from_current_devices_only(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, _, _) = signed_in(&nodes.a, "bob").await;
    let identity = publish_identity(&mut alice).await;
    let (mut second, second_address, _) = link_device(&mut alice, &nodes.a).await;
    let fetch_device = |device| Request::FetchDeviceBundle {
        account: alice_id,
        device: DeviceId(device),
    };
    // Enrolled, no keys yet.
    let response = bob.ask(fetch_device(2)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::NoPreKeys));
    publish_keys(&mut second, &identity).await;
    let Response::Bundle(bundle) = bob.ask(fetch_device(2)).await else {
        panic!("no bundle of device 2");
    };
    assert_eq!((bundle.account, bundle.device), (alice_id, DeviceId(2)));
    let response = bob.ask(fetch_device(9)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));
    // FetchBundle speaks for device 1 while it is current...
    let by_account = Request::FetchBundle {
        target: AccountRef::Account(alice_id),
    };
    let Response::Bundle(bundle) = bob.ask(by_account.clone()).await else {
        panic!("no bundle");
    };
    assert_eq!(bundle.device, DeviceId::PRIMARY);
    // ...and for the lowest current device once it is removed.
    let response = second
        .ask(Request::RemoveDevice {
            device: DeviceId::PRIMARY,
        })
        .await;
    assert_eq!(response, Response::Ok);
    let Response::Bundle(bundle) = bob.ask(by_account).await else {
        panic!("no bundle after device 1 went");
    };
    assert_eq!(bundle.device, second_address.device);
    let response = bob.ask(fetch_device(1)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownRecipient));
    let Response::Resolved {
        identity: named, ..
    } = bob
        .ask(Request::ResolveUsername {
            username: common::name("alice"),
        })
        .await
    else {
        panic!("alice does not resolve");
    };
    assert_eq!(named, Some(identity.public().to_bytes().to_vec()));
}

/// A version above 2^63 − 1 (the relay stores BIGINTs) is refused with
/// `LimitExceeded` and nothing is stored (15.4).
async fn a_version_above_i64_max_is_refused(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let identity = publish_identity(&mut alice).await;
    let response = alice
        .ask(Request::PublishDeviceList {
            list: signed_list(&identity, alice_id, 1 << 63, &[1]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::LimitExceeded));
    let response = alice
        .ask(Request::FetchDeviceList { account: alice_id })
        .await;
    assert_eq!(response, Response::DeviceList { list: None });
}
