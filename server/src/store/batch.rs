//! One group-commit transaction's input and output: the submissions it
//! holds (each a request's messages or acknowledgement, and the session
//! token it was made under) and what each got.
//!
//! The token of every part is re-checked INSIDE the transaction that
//! commits it, before anything of the batch is written, and the token rows
//! stay locked until the commit (PostgreSQL: `FOR KEY SHARE`, which a
//! revocation's `DELETE` waits for; SQLite: the write lock `BEGIN
//! IMMEDIATE` took). So a revocation either commits before the check, and
//! the part is refused with nothing of it stored, or after the commit: it
//! can never commit in between and let a revoked sender's envelopes in.
//!
//! Must never: let a refused part's messages or acks reach the store, or
//! decide a verdict on anything but the token row read in the transaction.

use umbra_wire::Address;

use super::{EnqueueOutcome, NewMessage, Seq, TokenHash, TokenInfo, UnixSeconds};

/// The bound of a [`commit_parts`](super::MessageQueue::commit_parts) made
/// outside the group committer (`enqueue_batch`, `enqueue_and_ack`): none
/// of its own, the database's timeouts (PostgreSQL's statement timeout,
/// SQLite's busy timeout) bound it, as they bound every other store call.
pub const NO_WRITE_BOUND: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The session token a submission is made under: its hash and the device
/// it must still belong to.
#[derive(Clone, Copy)]
pub struct SubmittedUnder {
    /// The token's hash.
    pub token: TokenHash,
    /// The authenticated device.
    pub owner: Address,
}

/// One submission of a batch, borrowed for the transaction.
#[derive(Clone, Copy)]
pub struct BatchPart<'a> {
    /// Messages to queue, in order.
    pub messages: &'a [NewMessage],
    /// An acknowledgement: the recipient and the seqs to delete.
    pub ack: Option<&'a (Address, Vec<Seq>)>,
    /// The token to re-check, if the part was made under one.
    pub under: Option<SubmittedUnder>,
}

/// What one part got from a committed transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum PartOutcome {
    /// Its messages' outcomes, in order, and how many messages its ack
    /// deleted.
    Committed {
        /// One per message.
        outcomes: Vec<EnqueueOutcome>,
        /// Deleted by its ack (0 without one).
        acked: u64,
    },
    /// Its token was revoked (`expired: false`) or has expired: nothing of
    /// it was stored.
    TokenRefused {
        /// The token still exists for this device but its expiry passed.
        expired: bool,
    },
}

/// The hashes of the parts made under a token, in part order (one per such
/// part): what the transaction looks up and locks.
pub(crate) fn token_hashes(parts: &[BatchPart<'_>]) -> Vec<TokenHash> {
    parts
        .iter()
        .filter_map(|p| p.under)
        .map(|u| u.token)
        .collect()
}

/// Each part's refusal, if its token (`infos`, one per [`token_hashes`]
/// entry) does not let it commit at `now`: `None` for a part that may.
pub(crate) fn refusals(
    parts: &[BatchPart<'_>],
    infos: &[Option<TokenInfo>],
    now: UnixSeconds,
) -> Vec<Option<PartOutcome>> {
    let mut infos = infos.iter();
    parts
        .iter()
        .map(|part| {
            let under = part.under?;
            match infos.next().copied().flatten() {
                Some(info) if info.owner == under.owner && now < info.expires_at => None,
                info => Some(PartOutcome::TokenRefused {
                    expired: info.is_some_and(|info| info.owner == under.owner),
                }),
            }
        })
        .collect()
}

/// The messages and acks of the parts not refused, in part order.
pub(crate) fn admitted<'a>(
    parts: &[BatchPart<'a>],
    refused: &[Option<PartOutcome>],
) -> (Vec<&'a NewMessage>, Vec<&'a (Address, Vec<Seq>)>) {
    let mut messages = Vec::new();
    let mut acks = Vec::new();
    for (part, refusal) in parts.iter().zip(refused) {
        if refusal.is_none() {
            messages.extend(part.messages.iter());
            acks.extend(part.ack);
        }
    }
    (messages, acks)
}

/// Deals the combined transaction's outcomes (`outcomes` for the admitted
/// messages, `deleted` per admitted ack) back to the parts.
pub(crate) fn deal(
    parts: &[BatchPart<'_>],
    refused: Vec<Option<PartOutcome>>,
    outcomes: Vec<EnqueueOutcome>,
    deleted: Vec<u64>,
) -> Vec<PartOutcome> {
    let mut outcomes = outcomes.into_iter();
    let mut deleted = deleted.into_iter();
    parts
        .iter()
        .zip(refused)
        .map(|(part, refusal)| {
            refusal.unwrap_or_else(|| PartOutcome::Committed {
                outcomes: outcomes.by_ref().take(part.messages.len()).collect(),
                acked: part.ack.and_then(|_| deleted.next()).unwrap_or(0),
            })
        })
        .collect()
}
