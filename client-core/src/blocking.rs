//! Blocking an account, as Signal does: from the block on, nothing the
//! account sends reaches the user and this client sends it nothing of its
//! own accord. The list is stored sealed in the client store (kind
//! `Blocked`, docs/PROTOCOL.md §12.9) and never leaves the device: the
//! relay and the blocked account learn nothing from it, except what the
//! silence shows (docs/THREAT_MODEL.md, "Blocking").
//!
//! What is dropped, and what deliberately is not:
//! - 1:1 from a blocked account (texts, replies, reactions, edits,
//!   deletes, files, receipts, profile changes, conversation deletes,
//!   typing notices, session resets): decrypted, then discarded. The
//!   session still advances and is stored (a pre-key message still sets up
//!   its session), so an unblock needs no new session and the next message
//!   opens as usual. The envelope is marked seen and acknowledged at the
//!   relay, so it never comes again; no event, no history, no contact
//!   change, no delivery receipt. Only a message sealed by the identity
//!   pinned for the blocked contact is decrypted and stored: one claiming
//!   its address under another identity (anyone can seal one) is dropped
//!   the same way but stores no session and uses up no one-time prekey,
//!   and no directory request is made for a blocked sender (no identity
//!   check, no rename).
//! - Group messages of a blocked member (texts, replies, reactions, edits,
//!   deletes): decrypted and discarded (the member's sender-key chain
//!   advances, so later messages open after an unblock), acknowledged, not
//!   shown, no delivery receipt. One that cannot be decrypted (no key) is
//!   dropped as well instead of asking the member for its key, and one
//!   that is refused (not sealed by its pinned identity, for a group we
//!   left or do not know, from a non-member, unopenable or undecodable)
//!   is acknowledged without the event that would name it, and not held.
//! - Group upkeep a blocked member sends pairwise (a change of the group,
//!   its sender key, a sync request or answer) is processed: membership
//!   is decided by the hash chain every member applies (§8), and skipping
//!   a blocked admin's Add or Remove would fork this client's group state
//!   from everyone else's. Whatever this client would answer over that
//!   session (a sync answer, a receipt) is not sent.
//! - A group welcome from a blocked account is dropped: it would make a
//!   new group with the blocked account in it, which is its to make, not
//!   upkeep of a group the user already shares.
//! - Outbound: `send` (texts, replies, reactions, edits, deletes, files)
//!   to a blocked account is refused with [`Error::Blocked`]; read
//!   receipts and typing notices (1:1 and group) are silently not sent to
//!   it. Our group messages still reach a blocked member: the group's
//!   members decide who reads it, not one member's block (as in Signal).
//!   No `SessionReset` goes to it (after a restore, or asked by a message
//!   on a session this device lacks), and its bundle is not fetched for
//!   one; the ask is dropped, and after an unblock a later message on
//!   that session asks again (`backup/restore.rs`).
//!
//! Must never: let a blocked account's 1:1 or group message reach an event
//! or the history, send it a receipt, typing notice or session reset, store
//! a session sealed by another identity than its pinned one, leave a dropped
//! envelope unacknowledged, or skip the decryption that keeps its session.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use umbra_protocol::content::Content;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Username};

use crate::engine::Engine;
use crate::store::Txn;
use crate::{records, Error, PeerRef};

#[cfg(test)]
mod tests;

/// A blocked account, as [`crate::Client::blocked`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockedContact {
    /// The blocked account.
    pub account: AccountId,
    /// Its username (the contact's current one; the one it had when it
    /// was blocked if it is no contact any more).
    pub username: String,
    /// How the user knows it (`name`, or `name#xxxxxxxx` for a newcomer
    /// on a known name), as `contacts` shows it.
    pub display_name: String,
}

/// The block list as stored. An enum, so its variant index is a format
/// number (as `StoredSettings`).
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredBlocked {
    /// Format 0: the blocked accounts, ascending by account id, each with
    /// its username when it was blocked.
    V1 { accounts: Vec<([u8; 16], String)> },
}

impl Default for StoredBlocked {
    /// Nobody blocked (what a store without the record means).
    fn default() -> Self {
        StoredBlocked::V1 {
            accounts: Vec::new(),
        }
    }
}

impl StoredBlocked {
    fn accounts(&self) -> &[([u8; 16], String)] {
        let StoredBlocked::V1 { accounts } = self;
        accounts
    }
}

/// Content a blocked account sends pairwise that is still processed: group
/// upkeep every member must apply alike (see the module doc).
pub(crate) fn passes_block(content: &Content) -> bool {
    matches!(
        content,
        Content::GroupControl { .. }
            | Content::SenderKeyDistribution { .. }
            | Content::GroupSync { .. }
    )
}

impl Engine {
    async fn stored_blocked(&self) -> Result<StoredBlocked, Error> {
        Ok(self
            .vault
            .load(&records::blocked::slot())
            .await?
            .unwrap_or_default())
    }

    /// Whether `account` is blocked.
    pub(crate) async fn is_blocked(&self, account: &[u8; 16]) -> Result<bool, Error> {
        let stored = self.stored_blocked().await?;
        Ok(stored
            .accounts()
            .binary_search_by(|(a, _)| a.cmp(account))
            .is_ok())
    }

    /// Whether `identity` is the one pinned for the contact `account`
    /// (`false` if it is no contact): the only identity whose messages
    /// claiming a blocked account are decrypted and stored.
    pub(crate) async fn pinned_for(
        &self,
        account: &[u8; 16],
        identity: &IdentityPublic,
    ) -> Result<bool, Error> {
        Ok(match self.contact_by_account(account).await? {
            Some(contact) => contact.pinned.ct_eq(identity).into(),
            None => false,
        })
    }

    /// The blocked account ids (one store read for a loop over members).
    pub(crate) async fn blocked_accounts(&self) -> Result<Vec<[u8; 16]>, Error> {
        let stored = self.stored_blocked().await?;
        Ok(stored.accounts().iter().map(|(a, _)| *a).collect())
    }

    /// Blocks the contact `peer` names (durable on return). Blocking one
    /// already blocked changes nothing.
    pub(crate) async fn block(&self, peer: &PeerRef) -> Result<BlockedContact, Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let contact = self.known_contact(peer).await?;
        let mut accounts = self.stored_blocked().await?.accounts().to_vec();
        if let Err(at) = accounts.binary_search_by(|(a, _)| a.cmp(&contact.account)) {
            accounts.insert(at, (contact.account, contact.username.clone()));
            self.save_blocked(accounts).await?;
        }
        Ok(BlockedContact {
            account: AccountId::from_bytes(contact.account),
            display_name: self.names.display_name(&contact).await?,
            username: contact.username,
        })
    }

    /// Unblocks the account `peer` names; `false` if it was not blocked. A
    /// label or account that is no contact any more is matched against the
    /// names stored with the block list, so it can still be unblocked.
    pub(crate) async fn unblock(&self, peer: &PeerRef) -> Result<bool, Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let mut accounts = self.stored_blocked().await?.accounts().to_vec();
        let account = match self.known_contact(peer).await {
            Ok(contact) => contact.account,
            Err(e) => match accounts
                .iter()
                .find(|(a, name)| peer.names_exactly(name, a))
            {
                Some((account, _)) => *account,
                None => return Err(e),
            },
        };
        let Ok(at) = accounts.binary_search_by(|(a, _)| a.cmp(&account)) else {
            return Ok(false);
        };
        accounts.remove(at);
        self.save_blocked(accounts).await?;
        Ok(true)
    }

    /// Every blocked account, by display name.
    pub(crate) async fn blocked(&self) -> Result<Vec<BlockedContact>, Error> {
        let stored = self.stored_blocked().await?;
        let mut out = Vec::new();
        for (account, name) in stored.accounts() {
            let (username, display_name) = match self.contact_by_account(account).await? {
                Some(contact) => (
                    contact.username.clone(),
                    self.names.display_name(&contact).await?,
                ),
                None => (name.clone(), name.clone()),
            };
            out.push(BlockedContact {
                account: AccountId::from_bytes(*account),
                username,
                display_name,
            });
        }
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        Ok(out)
    }

    /// Refuses a send to `username`'s account while it is blocked.
    pub(crate) async fn refuse_if_blocked(
        &self,
        account: &[u8; 16],
        username: &Username,
    ) -> Result<(), Error> {
        if self.is_blocked(account).await? {
            return Err(Error::Blocked {
                username: username.clone(),
            });
        }
        Ok(())
    }

    async fn save_blocked(&self, accounts: Vec<([u8; 16], String)>) -> Result<(), Error> {
        let mut txn = Txn::new();
        let stored = StoredBlocked::V1 { accounts };
        self.vault
            .save(&mut txn, records::blocked::slot(), &stored)?;
        self.vault.commit(txn).await?;
        Ok(())
    }
}
