//! A group's state and the authorization rules that move it
//! (docs/PROTOCOL.md §8.7, §8.9).
//!
//! A [`GroupState`] is what every member agrees on: the group id, the
//! version, the head (hash of the last change), the name, the policy, the
//! members (accounts, ascending) with, for admins, the version at which each
//! became one (its seniority), and the rotation point (the version of the
//! last change that removed anyone; every sender key in use must be at
//! least that new). [`GroupState::apply`] checks a change against this
//! state, as its parent, and returns the next state.
//!
//! Seniority exists because fork choice (§8.10) ranks concurrent changes
//! by their author's standing, and a hash is cheap to grind: an admin may
//! remove only admins junior to it, so a removed admin never outranks the
//! admin who removed it.
//!
//! Must never: apply a change whose parent is not this state's head,
//! accept a change its author may not make, let an admin remove a senior
//! one, leave a group with members but no admin, give two admins the same
//! seniority, or hold more than `MAX_GROUP_MEMBERS` members.

use serde::{Deserialize, Serialize};

use crate::consts::MAX_GROUP_MEMBERS;
use crate::content::MAX_GROUP_NAME_BYTES;
use crate::wire::{self, AccountId, Username};

use super::change::{ChangeHash, GroupAction, GroupChange, NewMember};
use super::change_error::GroupChangeError;
use super::GroupId;

/// The snapshot format version (a welcome's state, §8.11).
pub const GROUP_STATE_VERSION: u8 = 0x01;
/// Largest encoded snapshot. A member is at most 61 bytes (account 1 + 16,
/// username 1 + 32, `admin_since` 1 + a varint of up to 10) and the rest at
/// most 220, so any state that keeps the invariants is at most 62 684 bytes
/// and encodes, whatever its version (`to_bytes` cannot fail). A welcome
/// still fits one content (65 535 bytes): after an Add of 64 members (at
/// most 3 360 bytes) those 64 are not admins (51 bytes each), so the
/// snapshot is at most 62 044 bytes, and with the Add and the content and
/// payload headers at most about 65 470.
pub const MAX_GROUP_STATE_BYTES: usize = 62 * 1024;

/// Rules fixed when the group is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPolicy {
    /// Whether members who are not admins may rename the group.
    pub members_may_rename: bool,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's account (authoritative).
    pub account: AccountId,
    /// The username the adder gave (a display hint).
    pub username: Username,
    /// `None` for a member who is not an admin; for an admin, the version
    /// of the change that made it one (0 for the creator): its seniority.
    /// Lower is more senior; no two admins of a state share one, because a
    /// change makes at most one admin.
    pub admin_since: Option<u64>,
}

impl Member {
    /// Whether it may add, remove (members and junior admins) and promote.
    pub const fn is_admin(&self) -> bool {
        self.admin_since.is_some()
    }
}

/// Everything members agree on about a group. Field order is the snapshot
/// encoding (§8.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    group: GroupId,
    version: u64,
    head: ChangeHash,
    name: String,
    policy: GroupPolicy,
    members: Vec<Member>,
    rotation_point: u64,
}

impl GroupState {
    /// The state a Create produces (version 0). Checks structure and that
    /// the author is listed; the signature is the caller's to check.
    pub fn from_create(change: &GroupChange) -> Result<Self, GroupChangeError> {
        let GroupAction::Create {
            name,
            policy,
            members,
        } = change.action()
        else {
            return Err(GroupChangeError::BadVersionForAction {
                action: change.action().name(),
                version: change.version(),
            });
        };
        let state = Self {
            group: *change.group(),
            version: 0,
            head: *change.hash(),
            name: name.clone(),
            policy: *policy,
            members: members
                .iter()
                .map(|m| Member {
                    account: m.account,
                    username: m.username.clone(),
                    admin_since: (m.account == change.author()).then_some(0),
                })
                .collect(),
            rotation_point: 0,
        };
        state.check_invariants()?;
        Ok(state)
    }

    /// Checks `change` against this state as its parent (§8.9) and returns
    /// the state it produces. Does not check the signature.
    pub fn apply(&self, change: &GroupChange) -> Result<Self, GroupChangeError> {
        if change.group() != &self.group {
            return Err(GroupChangeError::WrongGroup {
                expected: self.group,
                got: *change.group(),
            });
        }
        if change.parent() != &self.head {
            return Err(GroupChangeError::WrongParent {
                expected: self.head,
                got: *change.parent(),
            });
        }
        let expected = self.version + 1;
        if change.version() != expected {
            return Err(GroupChangeError::WrongVersion {
                expected,
                got: change.version(),
            });
        }
        let author = change.author();
        let author_since = match self.member(&author) {
            Some(member) => member.admin_since,
            None => return Err(GroupChangeError::AuthorNotMember(author)),
        };
        let author_is_admin = author_since.is_some();
        let refuse = |action: &'static str| GroupChangeError::NotAuthorized { author, action };
        let mut next = self.clone();
        next.version = change.version();
        next.head = *change.hash();
        match change.action() {
            GroupAction::Create { .. } => {
                return Err(GroupChangeError::BadVersionForAction {
                    action: "create",
                    version: change.version(),
                })
            }
            GroupAction::Add { members } => {
                if !author_is_admin {
                    return Err(refuse("add"));
                }
                next.add_members(members)?;
            }
            GroupAction::Remove { accounts } => {
                if !author_is_admin {
                    return Err(refuse("remove"));
                }
                for account in accounts {
                    let Some(target) = self.member(account) else {
                        return Err(GroupChangeError::NotMember(*account));
                    };
                    // Only a junior admin may be removed (a larger
                    // admin_since): otherwise a removed admin could
                    // outrank its remover in fork choice (§8.10).
                    if target.admin_since.is_some() && target.admin_since <= author_since {
                        return Err(refuse("remove"));
                    }
                }
                next.members.retain(|m| !accounts.contains(&m.account));
                next.rotation_point = next.version;
            }
            GroupAction::Leave => {
                next.members.retain(|m| m.account != author);
                next.rotation_point = next.version;
                // No orphaned group: the lowest remaining account takes over.
                if !next.members.is_empty() && !next.members.iter().any(Member::is_admin) {
                    next.members[0].admin_since = Some(next.version);
                }
            }
            GroupAction::Rename { name } => {
                if !author_is_admin && !self.policy.members_may_rename {
                    return Err(refuse("rename"));
                }
                next.name = name.clone();
            }
            GroupAction::Promote { account } => {
                if !author_is_admin {
                    return Err(refuse("promote"));
                }
                match next.members.iter_mut().find(|m| &m.account == account) {
                    None => return Err(GroupChangeError::NotMember(*account)),
                    Some(m) if m.is_admin() => {
                        return Err(GroupChangeError::AlreadyAdmin(*account))
                    }
                    Some(m) => m.admin_since = Some(change.version()),
                }
            }
        }
        Ok(next)
    }

    fn add_members(&mut self, added: &[NewMember]) -> Result<(), GroupChangeError> {
        for new in added {
            if self.member(&new.account).is_some() {
                return Err(GroupChangeError::AlreadyMember(new.account));
            }
        }
        let count = self.members.len() + added.len();
        if count > MAX_GROUP_MEMBERS {
            return Err(GroupChangeError::TooManyMembers {
                count,
                max: MAX_GROUP_MEMBERS,
            });
        }
        self.members.extend(added.iter().map(|m| Member {
            account: m.account,
            username: m.username.clone(),
            admin_since: None,
        }));
        self.members.sort_by_key(|m| m.account);
        Ok(())
    }

    /// The invariants every state keeps; a decoded snapshot must too.
    fn check_invariants(&self) -> Result<(), GroupChangeError> {
        validate_group_name(&self.name)?;
        if self.members.len() > MAX_GROUP_MEMBERS {
            return Err(GroupChangeError::TooManyMembers {
                count: self.members.len(),
                max: MAX_GROUP_MEMBERS,
            });
        }
        if self
            .members
            .windows(2)
            .any(|w| w[0].account >= w[1].account)
        {
            return Err(GroupChangeError::NotAscending { field: "members" });
        }
        if !self.members.is_empty() && !self.members.iter().any(Member::is_admin) {
            return Err(GroupChangeError::InvalidState("members but no admin"));
        }
        let mut seniority: Vec<u64> = self.members.iter().filter_map(|m| m.admin_since).collect();
        if seniority.iter().any(|&since| since > self.version) {
            return Err(GroupChangeError::InvalidState(
                "an admin's seniority after the version",
            ));
        }
        seniority.sort_unstable();
        if seniority.windows(2).any(|w| w[0] == w[1]) {
            return Err(GroupChangeError::InvalidState(
                "two admins with the same seniority",
            ));
        }
        if self.rotation_point > self.version {
            return Err(GroupChangeError::InvalidState(
                "rotation point after the version",
            ));
        }
        Ok(())
    }

    /// The snapshot encoding: `GROUP_STATE_VERSION || postcard(state)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A state that exists keeps its invariants, which bound its size
        // under the limit, and plain structs always serialize.
        #[allow(clippy::expect_used)]
        wire::encode_versioned(GROUP_STATE_VERSION, self, MAX_GROUP_STATE_BYTES)
            .expect("a valid state fits its limit")
    }

    /// Parses a snapshot and checks every state invariant.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupChangeError> {
        let state: Self = wire::decode_versioned(
            bytes,
            MAX_GROUP_STATE_BYTES,
            GROUP_STATE_VERSION..=GROUP_STATE_VERSION,
        )?;
        state.check_invariants()?;
        Ok(state)
    }

    /// The group.
    pub const fn group(&self) -> &GroupId {
        &self.group
    }

    /// The version: 0 after the Create, +1 per change.
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The hash of the change that produced this state.
    pub const fn head(&self) -> &ChangeHash {
        &self.head
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy fixed at Create.
    pub const fn policy(&self) -> GroupPolicy {
        self.policy
    }

    /// The members, ascending by account.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// One member, if `account` is one.
    pub fn member(&self, account: &AccountId) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.account.cmp(account))
            .ok()
            .map(|i| &self.members[i])
    }

    /// Whether `account` is a member.
    pub fn is_member(&self, account: &AccountId) -> bool {
        self.member(account).is_some()
    }

    /// Whether `account` is an admin.
    pub fn is_admin(&self, account: &AccountId) -> bool {
        self.member(account).is_some_and(Member::is_admin)
    }

    /// The version at which `account` became an admin (its seniority;
    /// lower is more senior), if it is one.
    pub fn admin_since(&self, account: &AccountId) -> Option<u64> {
        self.member(account).and_then(|m| m.admin_since)
    }

    /// The version of the last change that removed anyone (Remove or
    /// Leave; 0 if none): a sender key of an older epoch must be rotated
    /// before its owner sends again (§8.12).
    pub const fn rotation_point(&self) -> u64 {
        self.rotation_point
    }
}

/// A group name: 1 to `MAX_GROUP_NAME_BYTES` bytes of UTF-8, no control
/// character (it is shown in terminals, like a text body).
pub(crate) fn validate_group_name(name: &str) -> Result<(), GroupChangeError> {
    if name.is_empty() || name.len() > MAX_GROUP_NAME_BYTES {
        return Err(GroupChangeError::InvalidName {
            len: name.len(),
            max: MAX_GROUP_NAME_BYTES,
        });
    }
    match name.char_indices().find(|(_, c)| c.is_control()) {
        Some((position, _)) => Err(GroupChangeError::NameControlCharacter { position }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest state the invariants allow: every member an admin with
    /// a ten-byte seniority, every string at its longest.
    #[test]
    fn the_largest_valid_state_encodes_within_the_limit() {
        let members: Vec<Member> = (0..MAX_GROUP_MEMBERS)
            .map(|i| {
                let mut account = [0u8; 16];
                account[8..].copy_from_slice(&(i as u64).to_be_bytes());
                Member {
                    account: AccountId::from_bytes(account),
                    username: Username::parse(&format!("m{i:031}")).unwrap(),
                    admin_since: Some(u64::MAX - i as u64),
                }
            })
            .collect();
        let state = GroupState {
            group: GroupId([1; 32]),
            version: u64::MAX,
            head: ChangeHash([2; 32]),
            name: "n".repeat(MAX_GROUP_NAME_BYTES),
            policy: GroupPolicy {
                members_may_rename: true,
            },
            members,
            rotation_point: u64::MAX,
        };
        state.check_invariants().unwrap();
        let bytes = state.to_bytes();
        assert_eq!(bytes.len(), 62_684);
        assert!(bytes.len() <= MAX_GROUP_STATE_BYTES);
        assert_eq!(GroupState::from_bytes(&bytes).unwrap(), state);
    }

    #[test]
    fn a_snapshot_with_a_seniority_tie_or_from_the_future_is_refused() {
        let member = |b: u8, admin_since| Member {
            account: AccountId::from_bytes([b; 16]),
            username: Username::parse("mem").unwrap(),
            admin_since,
        };
        let mut state = GroupState {
            group: GroupId([1; 32]),
            version: 5,
            head: ChangeHash([2; 32]),
            name: "g".into(),
            policy: GroupPolicy {
                members_may_rename: false,
            },
            members: vec![member(1, Some(0)), member(2, Some(3)), member(3, None)],
            rotation_point: 0,
        };
        assert!(GroupState::from_bytes(&state.to_bytes()).is_ok());
        state.members[1].admin_since = Some(0);
        assert_eq!(
            GroupState::from_bytes(&state.to_bytes()).unwrap_err(),
            GroupChangeError::InvalidState("two admins with the same seniority")
        );
        state.members[1].admin_since = Some(6);
        assert_eq!(
            GroupState::from_bytes(&state.to_bytes()).unwrap_err(),
            GroupChangeError::InvalidState("an admin's seniority after the version")
        );
    }
}
