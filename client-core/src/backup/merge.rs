//! Merging two backups of one account: ours (built from this store now)
//! and the relay's newer copy (a `409` on upload: another data directory of
//! the account, or this one before a crash, wrote in between). The rule is
//! docs/PROTOCOL.md §12.15:
//!
//! - contacts: the union by account. For one in both, the same pinned
//!   identity keeps the stricter decision (`Changed` with its pending key
//!   over `Verified` over `Unverified`: a verification or a key change
//!   awaiting the user is never dropped); a different pinned identity keeps
//!   ours (this device's decision is the latest the user made here, and
//!   taking theirs would silently repin a key);
//! - groups: the union by id; for one in both, the log whose state has the
//!   higher version (ties: ours);
//! - settings and extension sections: the union, ours on a clash;
//! - identity, account, history: ours.
//!
//! Must never: lower a contact's trust, repin a contact's identity, or drop
//! a contact or group that only one side has.

use std::collections::BTreeMap;

use umbra_protocol::backup::{
    BackupContact, BackupContents, BackupGroup, BackupTrust, MAX_EXTENSIONS,
};
use umbra_protocol::group::GroupLog;

/// How strict a decision is: a higher rank wins the merge.
pub(crate) fn rank(trust: &BackupTrust) -> u8 {
    match trust {
        BackupTrust::Unverified => 0,
        BackupTrust::Verified => 1,
        BackupTrust::Changed { .. } => 2,
    }
}

fn merge_contact(ours: BackupContact, theirs: BackupContact) -> BackupContact {
    if ours.identity != theirs.identity || rank(&ours.trust) >= rank(&theirs.trust) {
        return ours;
    }
    BackupContact {
        trust: theirs.trust,
        ..ours
    }
}

pub(crate) fn version(group: &BackupGroup) -> Option<u64> {
    GroupLog::from_pickle(&group.log)
        .ok()
        .map(|log| log.state().version())
}

/// `ours` merged with `theirs` (see the module docs).
pub(crate) fn merge(mut ours: BackupContents, theirs: BackupContents) -> BackupContents {
    let mut contacts: BTreeMap<_, BackupContact> = theirs
        .contacts
        .into_iter()
        .map(|c| (c.account, c))
        .collect();
    for contact in std::mem::take(&mut ours.contacts) {
        let merged = match contacts.remove(&contact.account) {
            Some(other) => merge_contact(contact, other),
            None => contact,
        };
        contacts.insert(merged.account, merged);
    }
    ours.contacts = contacts.into_values().collect();

    let mut groups: BTreeMap<_, BackupGroup> =
        theirs.groups.into_iter().map(|g| (g.id, g)).collect();
    for group in std::mem::take(&mut ours.groups) {
        let keep_theirs = groups
            .get(&group.id)
            .is_some_and(|other| version(other) > version(&group));
        if !keep_theirs {
            groups.insert(group.id, group);
        }
    }
    ours.groups = groups.into_values().collect();

    for (name, value) in theirs.settings {
        ours.settings.entry(name).or_insert(value);
    }
    let mut extensions: BTreeMap<u32, _> = theirs
        .extensions
        .iter()
        .map(|e| (e.tag, e.clone()))
        .collect();
    for e in &ours.extensions {
        extensions.insert(e.tag, e.clone());
    }
    // Both sides kept at most MAX_EXTENSIONS; the union keeps the lowest tags.
    ours.extensions = extensions.into_values().take(MAX_EXTENSIONS).collect();
    ours
}
