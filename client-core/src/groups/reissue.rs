//! Our changes that lost the fork choice (`inbound.rs` lists them in the
//! group record), made again on the winning head where they still apply
//! and still change something (docs/PROTOCOL.md §12.14), by the outbox
//! pump before it sends the fan-outs.
//!
//! Must never: lose a change to a failure that a later try may not meet
//! (offline, a lost connection, a fetch that failed): only the group's own
//! refusal ([`GroupFailure`]) drops one, and the user is told; nor make a
//! change twice (it leaves the list in the commit that makes it again).

use std::sync::Arc;

use umbra_protocol::group::{GroupAction, GroupChange, GroupState};

use crate::engine::Engine;
use crate::store::Txn;
use crate::{Error, Event};

use super::{GroupFailure, GroupId};

/// `action` made again on `state`, trimmed to what still changes something
/// (members not yet added, accounts still members), or why it no longer
/// applies.
fn still_applies(state: &GroupState, action: &GroupAction) -> Result<GroupAction, Error> {
    let nothing = |why| Err(GroupFailure::NothingToChange(why).into());
    match action {
        GroupAction::Add { members } => {
            let members: Vec<_> = members
                .iter()
                .filter(|m| !state.is_member(&m.account))
                .cloned()
                .collect();
            if members.is_empty() {
                return nothing("already members");
            }
            Ok(GroupAction::Add { members })
        }
        GroupAction::Remove { accounts } => {
            let accounts: Vec<_> = accounts
                .iter()
                .filter(|a| state.is_member(a))
                .copied()
                .collect();
            if accounts.is_empty() {
                return nothing("no longer members");
            }
            Ok(GroupAction::Remove { accounts })
        }
        GroupAction::Rename { name } if state.name() == name => nothing("the group has this name"),
        GroupAction::Promote { account } if state.is_admin(account) => nothing("already an admin"),
        GroupAction::Create { .. } => nothing("a group is created once"),
        other => Ok(other.clone()),
    }
}

impl Engine {
    /// Makes our changes that lost the fork choice again on the winning
    /// head, where they still apply (run by the outbox pump before the
    /// fan-outs, which then send what this commits), and tells the user
    /// once a change is decided.
    ///
    /// A change stays listed (in the stored group record, so a restart
    /// retries it too) until it is made again — taken off in the commit
    /// that makes it — or the group refuses it for good (a
    /// [`GroupFailure`]: it no longer applies, we are
    /// no longer a member or an admin). Any other failure (offline, a lost
    /// connection, a bundle fetch that timed out, the store) keeps it, and
    /// the group's later changes behind it, for the pump's next round:
    /// that failure is returned so the pump backs off and retries.
    pub(crate) async fn reissue_superseded(self: &Arc<Self>) -> Result<Option<Error>, Error> {
        // One round at a time: two would both find a change listed.
        let _round = self.groups.reissue_lock.lock().await;
        let mut deferred = None;
        for group in self.groups.all().await? {
            let (id, group_name) = (group.id(), group.name());
            for bytes in &group.superseded {
                let reissued = match GroupChange::from_bytes(bytes) {
                    // Unreadable (it was ours and was stored read): it can
                    // never apply.
                    Err(_) => false,
                    Ok(change) => {
                        let action = change.action().clone();
                        let made = self
                            .issue_commit(
                                &id,
                                move |state| still_applies(state, &action),
                                Some(bytes.as_slice()),
                            )
                            .await;
                        match made {
                            Ok(_) => true,
                            Err(e @ Error::Group(_)) => {
                                tracing::debug!(
                                    error = %crate::error::LogSafe(&e),
                                    "superseded change dropped"
                                );
                                false
                            }
                            Err(e) => {
                                tracing::debug!(
                                    error = %crate::error::LogSafe(&e),
                                    "superseded change kept to retry"
                                );
                                deferred.get_or_insert(e);
                                break;
                            }
                        }
                    }
                };
                if !reissued {
                    self.forget_superseded(&id, bytes).await?;
                }
                self.emit(Event::GroupChangeSuperseded {
                    group: id,
                    group_name: group_name.clone(),
                    reissued,
                });
            }
        }
        Ok(deferred)
    }

    /// Takes `bytes` off `group`'s superseded changes, for good.
    async fn forget_superseded(&self, group: &GroupId, bytes: &[u8]) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let Some(mut group) = self.groups.get(group).await? else {
            return Ok(());
        };
        let before = group.superseded.len();
        group.superseded.retain(|b| b.as_slice() != bytes);
        if group.superseded.len() != before {
            let mut txn = Txn::new();
            self.groups.put(&mut txn, &group)?;
            self.vault.commit(txn).await?;
        }
        Ok(())
    }
}
