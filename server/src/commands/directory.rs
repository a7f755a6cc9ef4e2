//! The key directory: publishing identity and prekeys, counting and
//! claiming them, resolving usernames.
//!
//! Must never: store keys whose signatures do not verify (checked in
//! `crate::directory` before the store is touched), publish a new identity
//! beside an old signed prekey, or log who fetched whose bundle.

use umbra_wire::{
    AccountId, AccountRef, Address, ErrorCode, PreKeyWire, Response, SignedPreKeyWire, Username,
};

use super::{Handled, Refusal};
use crate::app::AppState;
use crate::directory::{check_prekey_batch, verify_published_keys};

fn prekey_count_response(state: &AppState, count: u64) -> Response {
    Response::PreKeyCount {
        remaining: u32::try_from(count).unwrap_or(u32::MAX),
        low_water: state.limits.prekey_low_water,
    }
}

fn unknown_username() -> Refusal {
    Refusal::new(ErrorCode::UnknownUsername, "no account has this username")
}

pub(super) async fn publish_keys(
    state: &AppState,
    me: Address,
    identity: &[u8],
    signed_prekey: &SignedPreKeyWire,
    last_resort: Option<&PreKeyWire>,
) -> Handled {
    verify_published_keys(identity, signed_prekey)?;
    // One transaction: a failure leaves the previous keys whole, never a new
    // identity next to an old signed prekey.
    let published = state
        .store
        .put_keys(me, identity, signed_prekey, last_resort)
        .await?;
    if published.identity_replaced {
        tracing::info!(
            discarded = published.one_time_prekeys_discarded,
            "identity replaced; the old identity's one-time prekeys were deleted"
        );
    }
    Ok(Response::Ok)
}

pub(super) async fn upload_prekeys(
    state: &AppState,
    me: Address,
    prekeys: &[PreKeyWire],
) -> Handled {
    check_prekey_batch(prekeys)?;
    let count = state.store.add_one_time_prekeys(me, prekeys).await?;
    Ok(prekey_count_response(state, count))
}

pub(super) async fn prekey_count(state: &AppState, me: Address) -> Handled {
    let count = state.store.one_time_prekey_count(me).await?;
    Ok(prekey_count_response(state, count))
}

pub(super) async fn resolve_username(state: &AppState, me: Address, username: Username) -> Handled {
    state.rate_limits.check_username_resolve(me.account)?;
    let account = state
        .store
        .account_by_username(&username)
        .await?
        .ok_or_else(unknown_username)?
        .account;
    // Lets a client notice a contact's new identity before sending over an
    // old session, without spending a one-time prekey.
    let identity = state
        .store
        .published_identity(first_device(state, account).await?)
        .await?;
    Ok(Response::Resolved {
        username,
        account,
        identity,
    })
}

pub(super) async fn fetch_bundle(state: &AppState, me: Address, target: AccountRef) -> Handled {
    state.rate_limits.check_bundle_fetch(me.account)?;
    let account = match target {
        AccountRef::Account(id) => id,
        AccountRef::Username(name) => {
            state
                .store
                .account_by_username(&name)
                .await?
                .ok_or_else(unknown_username)?
                .account
        }
    };
    let device = first_device(state, account).await?;
    claim_bundle(state, device, "the account has not published keys").await
}

/// The device `FetchBundle` and `Resolved` speak for (PROTOCOL.md 15.5):
/// the account's lowest-numbered current device, which is device 1 unless
/// it was removed. An unknown account gets device 1, whose missing keys
/// answer as before.
async fn first_device(state: &AppState, account: AccountId) -> Result<Address, Refusal> {
    Ok(state
        .store
        .list_devices(account)
        .await?
        .first()
        .map_or(Address::primary(account), |d| Address {
            account,
            device: d.device,
        }))
}

/// Claims `device`'s bundle (one one-time prekey, if any is left) and warns
/// the device when its one-time prekeys run low; `NoPreKeys` with
/// `no_keys` when it has published none.
pub(super) async fn claim_bundle(
    state: &AppState,
    device: Address,
    no_keys: &'static str,
) -> Handled {
    let bundle = state
        .store
        .claim_bundle(device)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::NoPreKeys, no_keys))?;
    if bundle.one_time_prekey.is_some() {
        match state.store.one_time_prekey_count(device).await {
            Ok(left) if left < u64::from(state.limits.prekey_low_water) => {
                state
                    .hub
                    .prekeys_low(device, u32::try_from(left).unwrap_or(u32::MAX));
            }
            Ok(_) => {}
            // The claim succeeded; a failed count only delays the warning.
            Err(error) => tracing::warn!(%error, "cannot count prekeys after a claim"),
        }
    }
    Ok(Response::Bundle(Box::new(bundle)))
}
