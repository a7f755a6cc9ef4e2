//! Taking a conflict's merge into this store (docs/PROTOCOL.md §12.15):
//! when an upload meets `409` the relay holds a newer copy (another data
//! directory of the account wrote it). The merged contents are written into
//! the local store in the same step as they are sealed, so that what this
//! store holds is what the relay holds: the next upload, built from the
//! store, then carries the other copy's contacts and groups too instead of
//! sealing them away again (two directories would otherwise erase each
//! other's contacts, verifications and groups, one upload at a time).
//!
//! Must never: repin a contact's identity, lower a contact's trust, replace
//! a group's log by one of a lower or equal version, drop anything this
//! store holds, or write outside the state lock.

use std::collections::HashMap;

use umbra_protocol::backup::{BackupContents, BackupTrust};
use umbra_protocol::group::GroupLog;

use super::merge::{merge, version};
use super::{from_backup_contact, to_backup_contact};
use crate::engine::Engine;
use crate::groups::manager::{Group, Membership};
use crate::store::Txn;
use crate::Error;

impl Engine {
    /// Merges `theirs` (the relay's copy, opened) into this store and
    /// returns the contents built from the store afterwards, with the
    /// settings and extension sections of the merge (this client keeps
    /// none locally, so they travel only in the backup), and the digest of
    /// the part the store holds.
    pub(crate) async fn adopt_backup(
        &self,
        theirs: BackupContents,
    ) -> Result<(BackupContents, [u8; 32]), Error> {
        let _guard = self.op_lock.lock().await;
        let me = self.me().account;
        let contacts: HashMap<[u8; 16], _> = self
            .names
            .all()
            .await?
            .into_iter()
            .map(|c| (c.account, c))
            .collect();
        let groups = self.groups.all().await?;
        let local = self
            .backup
            .contents(me, &self.identity, &groups, self.clock.now_secs())
            .await?;
        let merged = merge(local, theirs);

        let mut txn = Txn::new();
        let mut events = Vec::new();
        for contact in &merged.contacts {
            let record = match contacts.get(contact.account.as_bytes()) {
                None => from_backup_contact(contact),
                // The merge keeps ours unless theirs is the same pinned
                // identity with a stricter decision: only trust can differ.
                Some(current) if to_backup_contact(current)?.trust != contact.trust => {
                    let raised = from_backup_contact(contact);
                    let mut record = current.clone();
                    if record.pinned != raised.pinned || !raises(&current.trust, &contact.trust) {
                        continue;
                    }
                    record.trust = raised.trust;
                    record.pending = raised.pending;
                    record
                }
                Some(_) => continue,
            };
            if let Some(event) = self.names.put_contact(&mut txn, &record).await? {
                events.push(event);
            }
        }
        for backed in &merged.groups {
            let current = groups.iter().find(|g| g.id() == backed.id);
            if current.is_some_and(|g| Some(g.state().version()) >= version(backed)) {
                continue;
            }
            let Ok(log) = GroupLog::from_pickle(&backed.log) else {
                continue;
            };
            if log.state().group() != &backed.id {
                continue;
            }
            let member = log.state().members().iter().any(|m| m.account == me);
            let group = match current {
                None => {
                    let mut group = Group::new(log);
                    if !member {
                        group.membership = Membership::Left;
                    }
                    group
                }
                Some(current) => Group {
                    log,
                    membership: match current.membership {
                        _ if member => Membership::Active,
                        Membership::Active => Membership::Left,
                        other => other,
                    },
                    recent_sent: current.recent_sent.clone(),
                    superseded: current.superseded.clone(),
                },
            };
            self.groups.put(&mut txn, &group)?;
        }
        self.vault.commit(txn).await?;
        for event in events {
            self.emit(event);
        }

        let groups = self.groups.all().await?;
        let mut stored = self
            .backup
            .contents(me, &self.identity, &groups, self.clock.now_secs())
            .await?;
        let local_digest = super::digest(&mut stored)?;
        stored.settings = merged.settings.clone();
        stored.extensions = merged.extensions.clone();
        Ok((stored, local_digest))
    }
}

/// Whether `theirs` is a stricter decision than `ours` (§12.15's order:
/// `Changed` over `Verified` over `Unverified`).
fn raises(ours: &crate::contact::TrustLevel, theirs: &BackupTrust) -> bool {
    use crate::contact::TrustLevel;
    let ours = match ours {
        TrustLevel::Verified => 1,
        TrustLevel::Changed => 2,
        _ => 0,
    };
    super::merge::rank(theirs) > ours
}
