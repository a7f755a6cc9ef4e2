//! Key transparency (docs/PROTOCOL.md 16.9): the newest signed head with
//! its consistency and inclusion proofs (`KtHead`), and the lookup and
//! history proofs of one label (`KtLookup`, `KtHistory`), each answered
//! from this node's in-memory directory (`crate::kt`) with the head it is
//! proven against.
//!
//! Must never: answer from a directory state the database has not
//! committed (the directory's own rule), let a username label be probed
//! faster than `ResolveUsername` (same budget: a proof says whether a name
//! is held), answer any other proof beyond the account's
//! `kt_proofs_per_minute` (each costs VRF evaluations or log proofs under
//! the node's directory lock), or log which label was asked for.

use umbra_wire::kt::KtLabel;
use umbra_wire::{AccountRef, Address, ErrorCode, Response};

use super::{Handled, Refusal};
use crate::app::AppState;

fn label_of(state: &AppState, me: Address, label: AccountRef) -> Result<KtLabel, Refusal> {
    Ok(match label {
        AccountRef::Account(account) => {
            state.rate_limits.check_kt_proof(me.account)?;
            KtLabel::Account(account)
        }
        AccountRef::Username(name) => {
            state.rate_limits.check_username_resolve(me.account)?;
            KtLabel::Username(name)
        }
    })
}

fn no_epoch() -> Refusal {
    Refusal::internal("kt: no epoch published yet")
}

fn after_newest(what: &str, epoch: u64, newest: u64) -> Refusal {
    Refusal::new(
        ErrorCode::LimitExceeded,
        format!(
            "{what} {epoch} is after the newest epoch this relay has published ({newest}); \
             a remembered head newer than the relay's is a rollback (16.8)"
        ),
    )
}

/// `KtHead { known, entry_of }`.
pub(super) async fn head(
    state: &AppState,
    me: Address,
    known: Option<u64>,
    entry_of: Option<u64>,
) -> Handled {
    state.rate_limits.check_kt_proof(me.account)?;
    let newest = state.kt.latest_epoch().await.ok_or_else(no_epoch)?;
    for (what, epoch) in [("known", known), ("entry_of", entry_of)] {
        if let Some(epoch) = epoch.filter(|e| *e > newest) {
            return Err(after_newest(what, epoch, newest));
        }
    }
    let answer = state
        .kt
        .head_with_proofs(known, entry_of)
        .await
        .map_err(|e| Refusal::internal(format!("kt head proofs: {e}")))?;
    Ok(Response::KtHead {
        head: answer.head.encode(),
        consistency: answer.consistency.map(|p| p.encode()),
        entry: answer.inclusion.as_ref().map(|(e, _)| e.encode().to_vec()),
        inclusion: answer.inclusion.map(|(_, p)| p.encode()),
    })
}

/// `KtLookup { label }`.
pub(super) async fn lookup(state: &AppState, me: Address, label: AccountRef) -> Handled {
    let label = label_of(state, me, label)?;
    let (head, proof) = state.kt.lookup(&label).await.ok_or_else(no_epoch)?;
    Ok(Response::KtLookup {
        head,
        proof: proof.encode(),
    })
}

/// `KtHistory { label, first }`.
pub(super) async fn history(
    state: &AppState,
    me: Address,
    label: AccountRef,
    first: u64,
) -> Handled {
    let unknown = match &label {
        AccountRef::Account(_) => Refusal::new(
            ErrorCode::UnknownRecipient,
            "the directory has never published this account",
        ),
        AccountRef::Username(_) => Refusal::new(
            ErrorCode::UnknownUsername,
            "the directory has never published this username",
        ),
    };
    let label = label_of(state, me, label)?;
    let latest = state.kt.latest_version(&label).await.ok_or(unknown)?;
    if first == 0 || first > latest {
        return Err(Refusal::new(
            ErrorCode::LimitExceeded,
            format!("first must be from 1 to the label's newest version, {latest}"),
        ));
    }
    let (head, proof) = state
        .kt
        .history(&label, first)
        .await
        .ok_or_else(no_epoch)?
        .map_err(|e| match e {
            umbra_wire::kt::KtError::TooMany { limit, .. } => Refusal::new(
                ErrorCode::LimitExceeded,
                format!(
                    "more than {limit} versions from {first}: ask from a later version, \
                     in ranges (16.6)"
                ),
            ),
            other => Refusal::internal(format!("kt history proof: {other}")),
        })?;
    Ok(Response::KtHistory {
        head,
        proof: proof.encode(),
    })
}
