//! In-process relay tests of the device list and the device directory
//! (docs/PROTOCOL.md 15.4, 15.5), over real WebSockets, on SQLite and on
//! PostgreSQL (which must be reachable under CI=true): publishing and
//! fetching the signed list, refusing a list the relay cannot verify
//! (forged, another account's, undecodable, from a device with no identity),
//! refusing a stale version with code 26, a version above 2^63 − 1,
//! and a list naming a device that
//! is not current, listing devices with their last use, and sending to
//! and fetching bundles of current devices only (`FetchBundle` speaking for
//! the lowest current one once device 1 is removed); one identity per
//! account (11.8 step 0, 15.1): a linked device publishing another
//! identity is refused with `IdentityInUse` and stores nothing, two
//! devices racing on two nodes leave one identity, and the identity is
//! reset only while the account has no other current device, published
//! or not.
//!
//! Must never: pass with a relay that stores a list its publisher's
//! identity did not sign, lets an older or equal version replace the
//! stored one, queues an envelope for a device that is not current, or
//! lets two current devices of one account publish two identities.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, signed_in};
use devices::{
    link_device, nodes, publish_identity, publish_keys, publish_keys_request, signed_list, Backend,
};
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
    a_linked_device_publishes_only_the_account_identity,
    two_devices_racing_with_two_identities_leave_one,
    the_identity_is_reset_only_while_no_other_device_is_current,
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

/// The identity `name` resolves to (what its lowest current device
/// publishes).
async fn resolved_identity(c: &mut common::Client, name: &str) -> Option<Vec<u8>> {
    let response = c
        .ask(Request::ResolveUsername {
            username: common::name(name),
        })
        .await;
    let Response::Resolved { identity, .. } = response else {
        panic!("{name} does not resolve: {response:?}");
    };
    identity
}

/// The identity in the bundle of `account`'s `device`, or the error code.
async fn bundle_identity(
    c: &mut common::Client,
    account: AccountId,
    device: DeviceId,
) -> Result<Vec<u8>, Option<ErrorCode>> {
    match c.ask(Request::FetchDeviceBundle { account, device }).await {
        Response::Bundle(bundle) => Ok(bundle.identity),
        other => Err(error_code(&other)),
    }
}

fn bytes(identity: &IdentityKeyPair) -> Vec<u8> {
    identity.public().to_bytes().to_vec()
}

/// 11.8 step 0, 15.1: a linked device (on the other node where there is
/// one) that publishes an identity of its own is refused with
/// `IdentityInUse` and stores nothing, so it cannot publish a list signed
/// by it either; the account's identity is accepted; and then neither
/// device may move to another identity alone.
async fn a_linked_device_publishes_only_the_account_identity(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, _, _) = signed_in(&nodes.a, "bob").await;
    let identity = publish_identity(&mut alice).await;
    let linked_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut second, second_address, _) = link_device(&mut alice, linked_relay).await;
    let device = second_address.device;
    let own = IdentityKeyPair::generate(&mut rand::rngs::OsRng);

    let response = second.ask(publish_keys_request(&own)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::IdentityInUse));
    assert_eq!(
        bundle_identity(&mut bob, alice_id, device).await,
        Err(Some(ErrorCode::NoPreKeys)),
        "nothing of the refused identity was stored"
    );
    let response = second
        .ask(Request::PublishDeviceList {
            list: signed_list(&own, alice_id, 1, &[1, device.0]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::NoPreKeys));

    publish_keys(&mut second, &identity).await;
    assert_eq!(
        bundle_identity(&mut bob, alice_id, device).await,
        Ok(bytes(&identity))
    );
    let response = second.ask(publish_keys_request(&own)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::IdentityInUse));
    let response = alice.ask(publish_keys_request(&own)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::IdentityInUse));
    for d in [DeviceId::PRIMARY, device] {
        assert_eq!(
            bundle_identity(&mut bob, alice_id, d).await,
            Ok(bytes(&identity)),
            "device {d:?} keeps the account identity"
        );
    }
    assert_eq!(
        resolved_identity(&mut bob, "alice").await,
        Some(bytes(&identity))
    );
    let response = second
        .ask(Request::PublishDeviceList {
            list: signed_list(&own, alice_id, 1, &[1, device.0]),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadSignature));
}

/// Two devices of one account, on two nodes on PostgreSQL, publishing two
/// identities at once: exactly one is stored, the other refused.
async fn two_devices_racing_with_two_identities_leave_one(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, _, _) = signed_in(&nodes.a, "bob").await;
    let linked_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut second, second_address, _) = link_device(&mut alice, linked_relay).await;
    let one = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let two = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let (first, other) = tokio::join!(
        alice.ask(publish_keys_request(&one)),
        second.ask(publish_keys_request(&two)),
    );
    let stored = [
        bundle_identity(&mut bob, alice_id, DeviceId::PRIMARY).await,
        bundle_identity(&mut bob, alice_id, second_address.device).await,
    ];
    let none = Err(Some(ErrorCode::NoPreKeys));
    match (error_code(&first), error_code(&other)) {
        (None, Some(ErrorCode::IdentityInUse)) => {
            assert_eq!(stored, [Ok(bytes(&one)), none]);
        }
        (Some(ErrorCode::IdentityInUse), None) => {
            assert_eq!(stored, [none, Ok(bytes(&two))]);
        }
        answers => panic!("both or neither stored: {answers:?} ({first:?}, {other:?})"),
    }
}

/// The identity reset (12.15: device 1 logs in with a new identity):
/// allowed while device 1 is the account's only current device, refused
/// with `IdentityInUse` (worded for both sides) while a linked device
/// exists, before it published and after, and allowed again once that
/// device is removed; a device linked after the reset must publish the new
/// identity.
async fn the_identity_is_reset_only_while_no_other_device_is_current(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut alice, alice_id, _) = signed_in(&nodes.a, "alice").await;
    let (mut bob, _, _) = signed_in(&nodes.a, "bob").await;
    let old = publish_identity(&mut alice).await;
    let reset = publish_identity(&mut alice).await;
    assert_eq!(
        resolved_identity(&mut bob, "alice").await,
        Some(bytes(&reset))
    );

    let linked_relay = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut second, second_address, _) = link_device(&mut alice, linked_relay).await;
    // Linked but not published yet, device 2 holds the reset all the same:
    // it was given the current identity and would be refused it after.
    let fresh = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let response = alice.ask(publish_keys_request(&fresh)).await;
    let Response::Error { code, message, .. } = &response else {
        panic!("a reset beside an unpublished device: {response:?}");
    };
    assert_eq!(*code, ErrorCode::IdentityInUse);
    assert!(
        message.contains("remove the account's other devices first")
            && message.contains("link this device again"),
        "worded for both sides: {message}"
    );
    assert_eq!(
        resolved_identity(&mut bob, "alice").await,
        Some(bytes(&reset))
    );
    let response = second.ask(publish_keys_request(&old)).await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::IdentityInUse),
        "the account's replaced identity is not its identity now"
    );
    publish_keys(&mut second, &reset).await;
    let response = alice.ask(publish_keys_request(&fresh)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::IdentityInUse));
    assert_eq!(
        resolved_identity(&mut bob, "alice").await,
        Some(bytes(&reset))
    );

    let response = alice
        .ask(Request::RemoveDevice {
            device: second_address.device,
        })
        .await;
    assert_eq!(response, Response::Ok);
    publish_keys(&mut alice, &fresh).await;
    assert_eq!(
        resolved_identity(&mut bob, "alice").await,
        Some(bytes(&fresh))
    );
    let (mut third, third_address, _) = link_device(&mut alice, linked_relay).await;
    let response = third.ask(publish_keys_request(&reset)).await;
    assert_eq!(error_code(&response), Some(ErrorCode::IdentityInUse));
    publish_keys(&mut third, &fresh).await;
    assert_eq!(
        bundle_identity(&mut bob, alice_id, third_address.device).await,
        Ok(bytes(&fresh))
    );
}
