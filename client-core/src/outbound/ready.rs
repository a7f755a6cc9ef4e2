//! The send path's shortcut past planning: when a send to a contact needs
//! nothing from the relay, its contact and session are read once, under the
//! state lock, instead of once unlocked (planning) and again locked.
//!
//! Must never: take a path [`Engine::session_for_sending`] would not (any
//! doubt falls back to planning), or ask the relay anything while holding
//! the lock.

use std::time::Instant;

use tokio::sync::MutexGuard;
use umbra_protocol::wire::Username;

use crate::engine::Engine;
use crate::sessions::SessionRecord;
use crate::trust::ContactRecord;
use crate::Error;

/// What [`Engine::session_for_sending`] returns: the state lock, the
/// contact, its session, and whether the session is new.
type Ready<'a> = (MutexGuard<'a, ()>, ContactRecord, Vec<SessionRecord>, bool);

impl Engine {
    /// [`Engine::session_for_sending`] when planning would ask the relay
    /// nothing (`name` is a sendable contact's current name, its identity
    /// check is fresh, every device of its held list has a usable session,
    /// docs/PROTOCOL.md §15.3): read once, under the lock,
    /// instead of once unlocked and again locked. Anything else is `None`:
    /// the caller plans as before (asks the relay, or reports the error).
    pub(super) async fn ready_session_locked(
        &self,
        name: &Username,
    ) -> Result<Option<Ready<'_>>, Error> {
        let guard = self.op_lock.lock().await;
        let Some(binding) = self.names.binding(name.as_str()).await? else {
            return Ok(None);
        };
        if binding.newcomer.is_some() {
            return Ok(None);
        }
        let Some(contact) = self.contact_by_account(&binding.account).await? else {
            return Ok(None);
        };
        if contact.username != name.as_str()
            || !contact.may_send()
            || !self
                .identity_checks
                .is_fresh(&contact.account, Instant::now())
        {
            return Ok(None);
        }
        if !self.sessionless_devices(&contact).await?.is_empty() {
            return Ok(None);
        }
        let records = self.usable_sessions(&contact).await?;
        Ok((!records.is_empty()).then_some((guard, contact, records, false)))
    }
}
