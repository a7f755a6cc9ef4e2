//! Every pairwise session with one peer: the current one and a few archived
//! ones, each dated, with trial decryption over all of them (libsignal's
//! `SessionRecord`).
//!
//! When both sides start a session at the same moment, each receives the
//! other's pre-key message and each ends up with two sessions. Like Signal,
//! the record keeps the previous sessions (up to [`MAX_PREVIOUS_SESSIONS`],
//! none archived for [`ARCHIVED_SESSION_MAX_AGE`] or longer) and tries them
//! when the current one cannot decrypt; the one that works becomes current,
//! so both sides converge on one session.
//!
//! A session we started stays "unanswered" (its messages carry the X3DH
//! header) until the peer's first reply. One unanswered for
//! [`MAX_UNACKNOWLEDGED_SESSION_AGE`] should be replaced by a fresh one
//! ([`SessionRecord::unanswered_too_long`]): the peer has most likely lost
//! the prekeys it was made for.
//!
//! The crate has no clock: every method that ages something takes `now`
//! (Unix seconds) from the caller. The stored form is
//! [`SessionRecordPickle`] (docs/PROTOCOL.md §4.9), never the struct itself.
//!
//! Must never: change anything on a failed decryption (each attempt works on
//! a copy that replaces the record only on success), keep more than
//! [`MAX_PREVIOUS_SESSIONS`] old sessions or one past its age, or show
//! secrets in `Debug`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::consts::{
    ARCHIVED_SESSION_MAX_AGE, MAX_PREVIOUS_SESSIONS, MAX_UNACKNOWLEDGED_SESSION_AGE,
    SKIPPED_KEY_MAX_AGE,
};
use crate::pairwise::{InboundEnvelope, PairwiseError, PairwiseSession, SessionPickle};
use crate::pickle::{self, PickleError, PICKLE_VERSION};

/// A replaced session, kept for late messages of its run.
#[derive(Clone)]
struct ArchivedSession {
    session: PairwiseSession,
    /// When it stopped being current (Unix seconds).
    archived_at: u64,
}

/// Every session with one peer.
#[derive(Clone)]
pub struct SessionRecord {
    current: PairwiseSession,
    /// When `current` became current (Unix seconds): for a session we
    /// started, when we started it.
    current_since: u64,
    /// Newest first.
    previous: Vec<ArchivedSession>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("current", &self.current)
            .field("current_since", &self.current_since)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl SessionRecord {
    /// A record whose only session is `current`, current since `now`.
    pub fn new(current: PairwiseSession, now: u64) -> Self {
        let mut record = Self {
            current,
            current_since: now,
            previous: Vec::new(),
        };
        // Dates the keys a first message may have skipped.
        record.expire(now);
        record
    }

    /// The current session (the one sends use).
    pub fn current(&self) -> &PairwiseSession {
        &self.current
    }

    /// The current session, to send with (its own methods are
    /// transactional).
    pub fn current_mut(&mut self) -> &mut PairwiseSession {
        &mut self.current
    }

    /// When the current session became current (Unix seconds).
    pub fn current_since(&self) -> u64 {
        self.current_since
    }

    /// How many archived sessions are kept.
    pub fn archived_count(&self) -> usize {
        self.previous.len()
    }

    /// Makes `session` current, archiving the old current one (newest
    /// first) and applying the count and age limits.
    pub fn promote_new(&mut self, session: PairwiseSession, now: u64) {
        let old = std::mem::replace(&mut self.current, session);
        self.previous.insert(
            0,
            ArchivedSession {
                session: old,
                archived_at: now,
            },
        );
        self.current_since = now;
        self.expire(now);
    }

    /// Drops archived sessions beyond the count or archived
    /// [`ARCHIVED_SESSION_MAX_AGE`] or longer, and skipped message keys
    /// older than [`SKIPPED_KEY_MAX_AGE`] (dating new ones with `now`).
    pub fn expire(&mut self, now: u64) {
        let max_age = ARCHIVED_SESSION_MAX_AGE.as_secs();
        self.previous
            .retain(|a| now.saturating_sub(a.archived_at) < max_age);
        self.previous.truncate(MAX_PREVIOUS_SESSIONS);
        let skipped_age = SKIPPED_KEY_MAX_AGE.as_secs();
        self.current.expire_skipped_keys(now, skipped_age);
        for archived in &mut self.previous {
            archived.session.expire_skipped_keys(now, skipped_age);
        }
    }

    /// Whether the current session is one we started whose pre-key messages
    /// have gone unanswered for [`MAX_UNACKNOWLEDGED_SESSION_AGE`]: the next
    /// send should start a new one instead.
    pub fn unanswered_too_long(&self, now: u64) -> bool {
        self.current.awaiting_reply()
            && now.saturating_sub(self.current_since) >= MAX_UNACKNOWLEDGED_SESSION_AGE.as_secs()
    }

    /// Decrypts with the current session, else with an archived one (newest
    /// first), which then becomes current. Transactional: on failure the
    /// record is exactly as before (not even expired).
    ///
    /// The error is [`PairwiseError::WrongSession`] only if *every* session
    /// said so, i.e. the message belongs to none of them and a pre-key
    /// message may start a new one. If any session recognised the message
    /// but refused it (a replayed pre-key message of an old run gives
    /// `DuplicateMessage` from that run's session), the current session's
    /// refusal, else the first archived one's, is returned: rebuilding the
    /// run from the prekeys would resurrect a stale session.
    pub fn decrypt(
        &mut self,
        inbound: &InboundEnvelope,
        now: u64,
    ) -> Result<Vec<u8>, PairwiseError> {
        let mut next = self.clone();
        next.expire(now);
        let plain = next.decrypt_any(inbound, now)?;
        // Dates the keys this message skipped.
        next.expire(now);
        *self = next;
        Ok(plain)
    }

    fn decrypt_any(
        &mut self,
        inbound: &InboundEnvelope,
        now: u64,
    ) -> Result<Vec<u8>, PairwiseError> {
        let mut error = match self.current.decrypt(inbound) {
            Ok(plain) => return Ok(plain),
            Err(e) => e,
        };
        for index in 0..self.previous.len() {
            let Some(candidate) = self.previous.get_mut(index) else {
                break;
            };
            match candidate.session.decrypt(inbound) {
                Ok(plain) => {
                    let winner = self.previous.remove(index);
                    self.promote_new(winner.session, now);
                    return Ok(plain);
                }
                Err(PairwiseError::WrongSession) => {}
                Err(e) if matches!(error, PairwiseError::WrongSession) => error = e,
                Err(_) => {}
            }
        }
        Err(error)
    }

    /// Opens an ephemeral message (a typing notice) with whichever session
    /// accepts it, current first. Takes `&self`: never changes anything.
    /// The error is the current session's.
    pub fn open_ephemeral(
        &self,
        inbound: &InboundEnvelope,
        now_ms: u64,
    ) -> Result<Vec<u8>, PairwiseError> {
        let error = match self.current.open_ephemeral(inbound, now_ms) {
            Ok(plain) => return Ok(plain),
            Err(e) => e,
        };
        self.previous
            .iter()
            .find_map(|a| a.session.open_ephemeral(inbound, now_ms).ok())
            .ok_or(error)
    }

    /// The record's stored form (every secret of every session in it).
    pub fn pickle(&self) -> SessionRecordPickle {
        SessionRecordPickle {
            current: self.current.pickle(),
            current_since: self.current_since,
            previous: self
                .previous
                .iter()
                .map(|a| ArchivedPickle {
                    session: a.session.pickle(),
                    archived_at: a.archived_at,
                })
                .collect(),
        }
    }

    /// Rebuilds a record from its stored form. More archived sessions than
    /// [`MAX_PREVIOUS_SESSIONS`] is [`PickleError::Invalid`].
    pub fn from_pickle(pickle: &SessionRecordPickle) -> Result<Self, PickleError> {
        if pickle.previous.len() > MAX_PREVIOUS_SESSIONS {
            return Err(PickleError::Invalid("more archived sessions than kept"));
        }
        Ok(SessionRecord {
            current: PairwiseSession::from_pickle(&pickle.current)?,
            current_since: pickle.current_since,
            previous: pickle
                .previous
                .iter()
                .map(|a| {
                    Ok(ArchivedSession {
                        session: PairwiseSession::from_pickle(&a.session)?,
                        archived_at: a.archived_at,
                    })
                })
                .collect::<Result<_, PickleError>>()?,
        })
    }

    /// `pickle().encode()`: the bytes a store keeps.
    pub fn to_pickle_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.pickle().encode()
    }

    /// `from_pickle(&SessionRecordPickle::decode(bytes)?)`.
    pub fn from_pickle_bytes(bytes: &[u8]) -> Result<Self, PickleError> {
        Self::from_pickle(&SessionRecordPickle::decode(bytes)?)
    }
}

/// A session record's stored form (docs/PROTOCOL.md §4.9). Zeroized on
/// drop, never shown in `Debug`.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionRecordPickle {
    current: SessionPickle,
    current_since: u64,
    previous: Vec<ArchivedPickle>,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct ArchivedPickle {
    session: SessionPickle,
    archived_at: u64,
}

impl SessionRecordPickle {
    /// `PICKLE_VERSION || postcard(pickle)`, in a buffer wiped on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        pickle::encode(self)
    }

    /// Reads [`SessionRecordPickle::encode`]'s bytes; an unknown leading
    /// version is [`PickleError::UnknownVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PickleError> {
        pickle::decode(bytes)
    }

    /// The format version [`SessionRecordPickle::encode`] writes.
    pub const VERSION: u8 = PICKLE_VERSION;
}

impl std::fmt::Debug for SessionRecordPickle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecordPickle")
            .field("current_since", &self.current_since)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}
