//! The session token each registered connection acts under: what a token
//! re-check (a revocation announced by any node) asks the store about, and
//! the password change's switch of a live connection to its new token.
//!
//! Must never: expose a token hash outside the relay (no logs, no Debug of
//! its bytes), or move a connection that no longer holds the address to a
//! new token (its successor keeps its own).

use umbra_wire::{AccountId, Address};

use super::Hub;
use crate::auth::tokens::TokenHash;

/// One authenticated connection, as a token re-check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// The device.
    pub address: Address,
    /// The connection's id on this node.
    pub connection: u64,
    /// The token it authenticated with.
    pub token: TokenHash,
}

impl Hub {
    /// Records that `connection`, registered for `address`, now acts under
    /// `token` (a password change replaced the one it authenticated with),
    /// so token re-checks ask about the new one. Nothing if another
    /// connection holds the address now.
    pub fn retoken(&self, address: Address, connection: u64, token: TokenHash) {
        if let Some(entry) = self.lock().by_address.get_mut(&address) {
            if entry.connection == connection {
                entry.token = token;
            }
        }
    }

    /// The authenticated connections of `account` on this node, or of every
    /// account (`None`), for a token re-check.
    pub fn live(&self, account: Option<AccountId>) -> Vec<Live> {
        self.lock()
            .by_address
            .iter()
            .filter(|(address, _)| account.is_none_or(|a| address.account == a))
            .map(|(address, entry)| Live {
                address: *address,
                connection: entry.connection,
                token: entry.token,
            })
            .collect()
    }
}
