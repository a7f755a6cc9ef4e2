//! Which devices a sealed group message is read from (docs/PROTOCOL.md
//! §8.14, §15.3 rule 3): any device of the member's held list, since each
//! has its own sender key; one the list lacks is refused after one list
//! fetch, as a pairwise message from it is.
//!
//! Must never: read a group message from a device the sender's signed
//! list does not name, or fetch a list for an identity other than the
//! pinned one.

use std::sync::Arc;

use umbra_protocol::pairwise::InboundEnvelope;

use super::{precheck, Failure, Rejected};
use crate::engine::Engine;
use crate::DecryptFailure;

/// Refuses a sealed group message from a device that the held list of its
/// account lacks (`UnlistedDevice`), after the one list fetch
/// [`precheck::plan`] made for it when the pinned identity sealed it; a
/// blocked account's is dropped without an event (crate::blocking). One
/// from an account that is no contact, or under another identity, goes on
/// to the group checks, which refuse or keep it by their own rules.
pub(super) async fn listed(
    engine: &Arc<Engine>,
    checked: &precheck::Checked,
    inbound: &InboundEnvelope,
) -> Result<(), Failure> {
    let sender = inbound.sender_address();
    if engine
        .devices
        .held(&sender.account)
        .await?
        .allows(sender.device)
    {
        return Ok(());
    }
    if engine.is_blocked(sender.account.as_bytes()).await? {
        return Err(Failure::Blocked);
    }
    let Some(contact) = engine.contact_by_account(sender.account.as_bytes()).await? else {
        return Ok(());
    };
    let pinned: bool = subtle::ConstantTimeEq::ct_eq(
        &contact.pinned.to_bytes()[..],
        &inbound.sender().to_bytes()[..],
    )
    .into();
    if !pinned {
        return Ok(());
    }
    checked.list_fetched(sender.account)?;
    if engine
        .devices
        .held(&sender.account)
        .await?
        .allows(sender.device)
    {
        return Ok(());
    }
    Err(Failure::Rejected(Rejected {
        from: Some(engine.names.display_name(&contact).await?),
        reason: DecryptFailure::UnlistedDevice(sender.device),
    }))
}
