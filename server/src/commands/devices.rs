//! The devices of an account (docs/PROTOCOL.md 15.4, 15.5): publishing and
//! fetching the signed device list, listing the account's devices, removing
//! one, and fetching the bundle of a named device.
//!
//! The relay checks a published list's signature only so that a buggy
//! client cannot publish a list every sender would ignore; senders verify
//! the list themselves (15.3), so nothing here protects anyone from the
//! relay.
//!
//! Must never: store a list that does not verify strictly under the
//! publishing device's identity or that names another account, let a
//! device remove itself, leave a removed device's connection open on any
//! node, or say which devices of another account exist beyond what its
//! published list says.

use umbra_wire::device_list::DeviceList;
use umbra_wire::identity::IdentityPublic;
use umbra_wire::{AccountId, AccountRef, Address, DeviceId, DeviceInfo, ErrorCode, Response};

use super::directory::BundleKind;
use super::{Handled, Refusal};
use crate::app::AppState;
use crate::auth::tokens::unix_now;

/// The `Closing` reason a removed device's connection gets (15.5).
pub const DEVICE_REMOVED_REASON: &str = "this device was removed from the account";

pub(super) fn unknown_device() -> Refusal {
    Refusal::new(
        ErrorCode::UnknownRecipient,
        "no such current device of the account",
    )
}

/// `PublishDeviceList { list }`, in 15.4's order; the length limit was
/// checked with the frame (`check_limits`).
pub(super) async fn publish_list(state: &AppState, me: Address, bytes: &[u8]) -> Handled {
    // Not fatal: the frame was read, only the list inside it is wrong (9.6).
    let list = DeviceList::decode(bytes)
        .map_err(|e| Refusal::new(ErrorCode::BadFrame, format!("device list: {e}")))?;
    if *list.account() != me.account {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            "the device list names another account",
        ));
    }
    let identity = state.store.published_identity(me).await?.ok_or_else(|| {
        Refusal::new(
            ErrorCode::NoPreKeys,
            "this device has published no identity to sign the list with",
        )
    })?;
    // The stored identity passed `verify_published_keys` when published, so
    // a failure to parse it is the store's fault, not the client's.
    let identity = IdentityPublic::from_bytes(&identity)
        .map_err(|e| Refusal::internal(format!("stored identity does not parse: {e}")))?;
    list.verify(&identity).map_err(|_| {
        Refusal::new(
            ErrorCode::BadSignature,
            "the device list's signature does not verify under this device's identity",
        )
    })?;
    // Current devices and the version are checked in the store's one
    // transaction (UnknownRecipient, StaleDeviceList).
    state.store.put_device_list(&list, unix_now()).await?;
    Ok(Response::Ok)
}

/// `FetchDeviceList { account }`: a plain directory read.
pub(super) async fn fetch_list(state: &AppState, me: Address, account: AccountId) -> Handled {
    state.rate_limits.check_username_resolve(me.account)?;
    // Every account has a current device (none can remove itself), so an
    // empty list of devices means no such account.
    if state.store.list_devices(account).await?.is_empty() {
        return Err(Refusal::new(ErrorCode::UnknownRecipient, "no such account"));
    }
    let list = state.store.device_list(account).await?.map(|l| l.bytes);
    Ok(Response::DeviceList { list })
}

/// `ListDevices`: the current devices of the connection's own account.
pub(super) async fn list(state: &AppState, me: Address) -> Handled {
    let devices = state
        .store
        .list_devices(me.account)
        .await?
        .into_iter()
        .map(|d| DeviceInfo {
            device: d.device,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
        })
        .collect();
    Ok(Response::Devices { devices })
}

/// `RemoveDevice { device }`: the store deletes the device's tokens, keys
/// and queue in one transaction, then its connections close on every node.
pub(super) async fn remove(state: &AppState, me: Address, device: DeviceId) -> Handled {
    if device == me.device {
        return Err(Refusal::new(
            ErrorCode::UnknownRecipient,
            "a device cannot remove itself",
        ));
    }
    let target = Address {
        account: me.account,
        device,
    };
    // Its own task, as a logout everywhere is: a request cut off by the
    // deadline while the removal still commits must close the removed
    // device's connections all the same.
    let task_state = state.clone();
    let removal = tokio::spawn(async move {
        let state = &task_state;
        let removed = state.store.remove_device(me, target, unix_now()).await;
        let maybe_done = matches!(
            &removed,
            Ok(_) | Err(crate::store::StoreError::CommitOutcomeUnknown { .. })
        );
        if maybe_done {
            crate::wakeups::device_removed(state, target, DEVICE_REMOVED_REASON).await;
        }
        removed
    });
    match removal.await {
        // This device was removed by another meanwhile (its token is
        // gone and its connection about to close): it removes nothing.
        Ok(Err(crate::store::StoreError::UnknownDevice { device })) if device == me.device.0 => {
            return Err(Refusal::new(ErrorCode::TokenExpired, DEVICE_REMOVED_REASON));
        }
        Ok(removed) => {
            let removed = removed?;
            tracing::info!(
                tokens = removed.tokens,
                messages = removed.messages,
                "device removed"
            );
        }
        Err(panicked) => {
            return Err(Refusal::outcome_unknown(format!(
                "the removal task ended: {panicked}"
            )))
        }
    }
    Ok(Response::Ok)
}

/// `FetchDeviceBundle { account, device }`: `FetchBundle` for one named
/// current device.
pub(super) async fn fetch_bundle(
    state: &AppState,
    me: Address,
    account: AccountId,
    device: DeviceId,
) -> Handled {
    super::directory::fetch(
        state,
        me,
        AccountRef::Account(account),
        Some(device),
        BundleKind::Classical,
    )
    .await
}
