//! Pairwise sessions as stored: the current one and a few previous ones per
//! contact.
//!
//! When both sides start a session at the same moment, each receives the
//! other's pre-key message and each ends up with two sessions. Like Signal,
//! we keep the previous sessions (up to [`MAX_PREVIOUS_SESSIONS`]) and try
//! them when the current one cannot decrypt; the one that works becomes
//! current, so both sides converge on one session.
//!
//! Must never: lose the current session on a failed decryption (each attempt
//! works on a clone), or keep an unbounded number of old sessions.

use serde::{Deserialize, Serialize};
use umbra_protocol::keys::SecretKey;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseError, PairwiseSession, PreKeyStore};
use umbra_protocol::prekeys::PreKeyRef;

/// Old sessions kept per contact.
pub(crate) const MAX_PREVIOUS_SESSIONS: usize = 4;

/// Every session with one contact (kind `Session`, slot = HMAC of the account id).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) current: PairwiseSession,
    pub(crate) previous: Vec<PairwiseSession>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    pub(crate) fn new(current: PairwiseSession) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Makes `session` current, keeping the old current one as previous.
    pub(crate) fn promote_new(&mut self, session: PairwiseSession) {
        let old = std::mem::replace(&mut self.current, session);
        self.previous.insert(0, old);
        self.previous.truncate(MAX_PREVIOUS_SESSIONS);
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
    pub(crate) fn decrypt(&mut self, inbound: &InboundEnvelope) -> Result<Vec<u8>, PairwiseError> {
        let mut error = match self.current.decrypt(inbound) {
            Ok(plain) => return Ok(plain),
            Err(e) => e,
        };
        for index in 0..self.previous.len() {
            let Some(candidate) = self.previous.get_mut(index) else {
                break;
            };
            match candidate.decrypt(inbound) {
                Ok(plain) => {
                    let winner = self.previous.remove(index);
                    self.promote_new(winner);
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
