//! The stored form of a [`GroupLog`] (docs/PROTOCOL.md §8.13): its base,
//! every kept change (side branches included), the pending changes, and
//! the remembered losers, so that a log reloaded after a restart decides
//! every change as the live one did.
//!
//! Must never: load a change its parent refuses, one stored twice, or more
//! remembered losers than [`MAX_REMEMBERED_LOSERS`].

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{GroupLog, Node};
use crate::consts::MAX_REMEMBERED_LOSERS;
use crate::group::change::{ChangeHash, GroupChange};
use crate::group::state::GroupState;
use crate::pickle::{self, PickleError};

impl GroupLog {
    /// The stored form: `PICKLE_VERSION || postcard(LogPickle)` (§8.13).
    /// Not secret, but group names and members are private: the caller
    /// stores it in its sealed store only.
    pub fn to_pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut nodes: Vec<&Node> = self.nodes.values().collect();
        // Parents before children, and one fixed order for the same log.
        nodes.sort_by_key(|n| (n.change.version(), *n.change.hash()));
        pickle::encode(&LogPickle {
            base: self.base.to_bytes(),
            changes: nodes
                .iter()
                .map(|n| serde_bytes::ByteBuf::from(n.change.as_bytes()))
                .collect(),
            pending: self
                .pending
                .iter()
                .map(|c| serde_bytes::ByteBuf::from(c.as_bytes()))
                .collect(),
            losers: self.losers.iter().copied().collect(),
        })
    }

    /// Loads [`to_pickle`](Self::to_pickle)'s bytes, or those of the form
    /// before the losers were stored (it loads with none remembered). Each
    /// change is re-checked against its parent (not its signature: it was
    /// checked before it was stored).
    pub fn from_pickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let stored = match pickle::decode::<LogPickle>(bytes) {
            Ok(stored) => stored,
            Err(e) => match pickle::decode::<LogPickleNoLosers>(bytes) {
                Ok(old) => LogPickle {
                    base: old.base,
                    changes: old.changes,
                    pending: old.pending,
                    losers: Vec::new(),
                },
                Err(_) => return Err(e),
            },
        };
        if stored.losers.len() > MAX_REMEMBERED_LOSERS {
            return Err(PickleError::Invalid("group log remembers too many losers"));
        }
        let base = GroupState::from_bytes(&stored.base)
            .map_err(|_| PickleError::Invalid("group log base state"))?;
        let mut log = Self::from_base(base);
        for bytes in stored.changes.iter().chain(&stored.pending) {
            let change = GroupChange::from_bytes(bytes)
                .map_err(|_| PickleError::Invalid("group log change"))?;
            if log.is_known(change.hash()) {
                return Err(PickleError::Invalid("group log change stored twice"));
            }
            log.insert_checked(change)
                .map_err(|_| PickleError::Invalid("group log change its parent refuses"))?;
        }
        // The stored losers are older than any the reload itself dropped
        // (none, for a log stored after its own pruning): oldest first.
        let mut losers: std::collections::VecDeque<ChangeHash> = stored.losers.into();
        for hash in std::mem::take(&mut log.losers) {
            if !losers.contains(&hash) {
                losers.push_back(hash);
            }
        }
        let excess = losers.len().saturating_sub(MAX_REMEMBERED_LOSERS);
        losers.drain(..excess);
        if losers.iter().any(|h| log.state_after(h).is_some()) {
            return Err(PickleError::Invalid("group log loser also kept"));
        }
        log.losers = losers;
        Ok(log)
    }
}

/// §8.13's `LogPickle`.
#[derive(Serialize, Deserialize)]
struct LogPickle {
    #[serde(with = "serde_bytes")]
    base: Vec<u8>,
    changes: Vec<serde_bytes::ByteBuf>,
    pending: Vec<serde_bytes::ByteBuf>,
    /// The remembered losers, oldest first.
    losers: Vec<ChangeHash>,
}

/// The form before the losers were stored (the same fields, without the
/// last).
#[derive(Deserialize)]
struct LogPickleNoLosers {
    #[serde(with = "serde_bytes")]
    base: Vec<u8>,
    changes: Vec<serde_bytes::ByteBuf>,
    pending: Vec<serde_bytes::ByteBuf>,
}
