//! Local history search: the messages of every conversation and group this
//! device holds whose text contains a query, compared case-insensitively,
//! newest first, at most a limit of them.
//!
//! Records are sealed one by one (store/vault.rs), so the search opens them
//! here, in the client: rows are visited newest first, one plaintext at a
//! time, and only the best `limit` matches are kept, so memory is bounded
//! by the limit (plus one conversation's sealed rows, which the backend
//! lists at once). A row whose sequence cannot beat the matches already
//! kept is not opened at all.
//!
//! Must never: ask the relay (the search is local only), write a record,
//! take the state lock, or keep more than `limit` matches.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use umbra_protocol::wire::AccountId;

use crate::conversation::{Direction, HistoryEntry};
use crate::groups::history::public_group_entry;
use crate::groups::GroupId;
use crate::records;
use crate::{Client, Error};

/// The most matches one search may ask for.
pub const MAX_SEARCH_LIMIT: usize = 10_000;

/// Where a found message was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchConversation {
    /// A conversation with one contact.
    Contact {
        /// The contact's account.
        account: AccountId,
        /// How the contact is shown now (untrusted: sanitise before display).
        name: String,
    },
    /// A group.
    Group {
        /// The group.
        id: GroupId,
        /// Its name now (untrusted: sanitise before display).
        name: String,
    },
}

/// One message a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The conversation or group it belongs to.
    pub conversation: SearchConversation,
    /// Who wrote it, as shown (our own username for ours).
    pub from: String,
    /// The message (direction, id, body, times, status).
    pub entry: HistoryEntry,
    /// Its place in the one history sequence of this store (arrival order
    /// across all conversations and groups).
    seq: u64,
}

impl PartialOrd for SearchHit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SearchHit {
    /// By arrival: the history sequence is global and unique.
    fn cmp(&self, other: &Self) -> Ordering {
        self.seq.cmp(&other.seq)
    }
}

/// Folds `text` for a case-insensitive comparison: every character that
/// has a one-to-one lower-case mapping takes it (Unicode's simple case
/// mappings, so `Ä` matches `ä` and `Σ` matches `σ`), and the final sigma
/// `ς` folds to `σ` as Unicode's case folding does. A character whose
/// lower case is longer (`İ`) stays itself, so lengths never change.
pub fn fold_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == 'ς' {
                return 'σ';
            }
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        })
        .collect()
}

/// The best `limit` matches seen so far (a min-heap on arrival, so the
/// oldest kept one is dropped first).
struct Best {
    limit: usize,
    heap: BinaryHeap<Reverse<SearchHit>>,
}

impl Best {
    /// Whether a row with sequence `seq` could still be kept.
    fn could_keep(&self, seq: u64) -> bool {
        self.heap.len() < self.limit || self.heap.peek().is_some_and(|Reverse(h)| h.seq < seq)
    }

    fn keep(&mut self, hit: SearchHit) {
        self.heap.push(Reverse(hit));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }
}

/// The sequence number at the end of an ordered slot.
fn slot_seq(slot: &[u8]) -> u64 {
    slot.len()
        .checked_sub(8)
        .and_then(|start| slot.get(start..))
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Local history search.
impl Client {
    /// The newest `limit` messages (1:1 and group, sent and received) whose
    /// text contains `query` after [`fold_case`], newest first. Only the
    /// local store is read. An empty query (after trimming) matches
    /// nothing, and `limit` is capped at [`MAX_SEARCH_LIMIT`]; interfaces
    /// refuse both before they get here, with their own message.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, Error> {
        let limit = limit.min(MAX_SEARCH_LIMIT);
        if query.trim().is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let engine = &self.inner;
        let needle = fold_case(query);
        let me = self.whoami().username.to_string();
        let mut best = Best {
            limit,
            heap: BinaryHeap::new(),
        };
        for conv in engine.timeline.summaries().await? {
            let name = match engine.contact_by_account(&conv.account).await? {
                Some(contact) => engine.names.display_name(&contact).await?,
                None => conv.username.clone(),
            };
            let conversation = SearchConversation::Contact {
                account: AccountId::from_bytes(conv.account),
                name: name.clone(),
            };
            engine
                .timeline
                .scan_newest_first(&conv.account, |slot, open| {
                    let seq = slot_seq(slot);
                    if !best.could_keep(seq) {
                        // Older rows of this conversation cannot be kept either.
                        return Ok(false);
                    }
                    let entry = open()?;
                    if fold_case(&entry.body).contains(&needle) {
                        let from = match entry.direction {
                            Direction::Incoming => name.clone(),
                            Direction::Outgoing => me.clone(),
                        };
                        best.keep(SearchHit {
                            conversation: conversation.clone(),
                            from,
                            entry,
                            seq,
                        });
                    }
                    Ok(true)
                })
                .await?;
        }
        for group in engine.groups.all().await? {
            let id = group.id();
            let conversation = SearchConversation::Group {
                id,
                name: group.name(),
            };
            let prefix = records::group::history_of(&engine.vault, &id);
            engine
                .vault
                .scan_all_newest_first(&prefix, |slot, open| {
                    let seq = slot_seq(slot);
                    if !best.could_keep(seq) {
                        return Ok(false);
                    }
                    let found = public_group_entry(open()?);
                    if fold_case(&found.entry.body).contains(&needle) {
                        best.keep(SearchHit {
                            conversation: conversation.clone(),
                            from: found.from,
                            entry: found.entry,
                            seq,
                        });
                    }
                    Ok(true)
                })
                .await?;
        }
        // into_sorted_vec of Reverse: ascending Reverse = newest first.
        Ok(best
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(hit)| hit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_one_to_one_and_unicode_aware() {
        assert_eq!(fold_case("HeLLo Wörld ÄÖÜ"), "hello wörld äöü");
        assert_eq!(fold_case("ΣΟΦΟΣ σοφος"), "σοφοσ σοφοσ");
        assert_eq!(fold_case("ПРИВЕТ"), "привет");
        // İ lower-cases to two characters: kept, so lengths never change.
        assert_eq!(fold_case("İx").chars().count(), 2);
        // Full folding (ß = ss) is not done: one character folds to one.
        assert!(!fold_case("Straße").contains(&fold_case("STRASSE")));
    }

    #[test]
    fn the_best_keeps_only_the_newest_limit() {
        let hit = |seq| SearchHit {
            conversation: SearchConversation::Group {
                id: GroupId([0; 32]),
                name: "g".into(),
            },
            from: "a".into(),
            entry: HistoryEntry {
                id: crate::MessageId([0; 16]),
                direction: Direction::Incoming,
                body: String::new(),
                sent_at_ms: 0,
                received_at_ms: 0,
                status: crate::DeliveryStatus::Read,
                reported: true,
                about: Default::default(),
            },
            seq,
        };
        let mut best = Best {
            limit: 2,
            heap: BinaryHeap::new(),
        };
        for seq in [5, 1, 9, 3] {
            if best.could_keep(seq) {
                best.keep(hit(seq));
            }
        }
        assert!(!best.could_keep(4));
        let seqs: Vec<u64> = best
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(h)| h.seq)
            .collect();
        assert_eq!(seqs, vec![9, 5]);
    }
}
