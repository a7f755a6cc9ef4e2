//! Pairwise sessions as stored: the current one and a few previous ones per
//! contact, each dated.
//!
//! When both sides start a session at the same moment, each receives the
//! other's pre-key message and each ends up with two sessions. Like Signal,
//! we keep the previous sessions (up to [`MAX_PREVIOUS_SESSIONS`], and none
//! archived longer than [`ARCHIVED_SESSION_MAX_AGE`]) and try them when the
//! current one cannot decrypt; the one that works becomes current, so both
//! sides converge on one session.
//!
//! A session we started stays "unanswered" (its messages carry the X3DH
//! header) until the peer's first reply. One unanswered for
//! [`MAX_UNACKNOWLEDGED_SESSION_AGE`] is replaced by a fresh one on the next
//! send: the peer has most likely lost the prekeys it was made for.
//!
//! Must never: lose the current session on a failed decryption (each attempt
//! works on a clone), or keep an unbounded number of old sessions, or old
//! sessions past their age.

use serde::{Deserialize, Serialize};
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseSession, PreKeyStore};
use umbra_protocol::prekeys::PreKeyRef;

use crate::consts::{
    ARCHIVED_SESSION_MAX_AGE, MAX_PREVIOUS_SESSIONS, MAX_UNACKNOWLEDGED_SESSION_AGE,
    SKIPPED_KEY_MAX_AGE,
};

/// A replaced session, kept for late messages of its run.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedSession {
    pub(crate) session: PairwiseSession,
    /// When it stopped being current (Unix seconds).
    pub(crate) archived_at: u64,
}

/// Every session with one contact (kind `Session`).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) current: PairwiseSession,
    /// When `current` became current (Unix seconds): for a session we
    /// started, when we started it.
    pub(crate) current_since: u64,
    /// Newest first.
    pub(crate) previous: Vec<ArchivedSession>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("current_since", &self.current_since)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    pub(crate) fn new(current: PairwiseSession, now: u64) -> Self {
        let mut record = Self {
            current,
            current_since: now,
            previous: Vec::new(),
        };
        // Dates the keys a first message may have skipped.
        record.expire(now);
        record
    }

    /// Makes `session` current, keeping the old current one as previous.
    pub(crate) fn promote_new(&mut self, session: PairwiseSession, now: u64) {
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

    /// Drops archived sessions beyond the count or older than the age limit,
    /// and skipped message keys older than theirs (dating new ones).
    pub(crate) fn expire(&mut self, now: u64) {
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
    /// send starts a new one instead.
    pub(crate) fn unanswered_too_long(&self, now: u64) -> bool {
        self.current.awaiting_reply()
            && now.saturating_sub(self.current_since) >= MAX_UNACKNOWLEDGED_SESSION_AGE.as_secs()
    }

    /// Decrypts with the current session, else with a previous one (which
    /// then becomes current). On failure nothing changes.
    ///
    /// The error is [`PairwiseError::WrongSession`] only if *every* session
    /// said so, i.e. the message belongs to none of them and a pre-key
    /// message may start a new one. If any session recognised the message
    /// but refused it (a replayed pre-key message of an old run gives
    /// `DuplicateMessage` from that run's session), that refusal is returned:
    /// rebuilding the run from the prekeys would resurrect a stale session.
    pub(crate) fn decrypt(
        &mut self,
        inbound: &InboundEnvelope,
        now: u64,
    ) -> Result<Vec<u8>, PairwiseError> {
        self.expire(now);
        let plain = self.decrypt_any(inbound, now)?;
        // Dates the keys this message skipped.
        self.expire(now);
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
}

/// The prekey secrets a pre-key message named, loaded from the store ahead
/// of [`PairwiseSession::accept`].
#[derive(Default)]
pub(crate) struct LoadedPreKeys {
    pub(crate) signed: Option<(u32, SecretKey)>,
    pub(crate) extra: Option<(PreKeyRef, SecretKey)>,
}

impl PreKeyStore for LoadedPreKeys {
    fn signed_prekey(&self, id: u32) -> Option<SecretKey> {
        self.signed
            .as_ref()
            .filter(|(held, _)| *held == id)
            .map(|(_, k)| k.clone())
    }

    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey> {
        self.extra
            .as_ref()
            .filter(|(held, _)| *held == prekey)
            .map(|(_, k)| k.clone())
    }
}
