//! Password-only restore (docs/PROTOCOL.md §12.15): a login in an empty
//! data directory fetches the account's backup, opens it with the export
//! key the login produced, and becomes the account again: the same
//! identity key (so contacts' pinned identities and safety numbers do not
//! change), the contacts with their trust (a verified contact stays
//! verified), the groups; new prekeys; no session of any kind.
//!
//! Then the session resets. Contacts still hold sessions with the lost
//! device and their next message on one cannot be opened here. So right
//! after restoring, the client starts a fresh X3DH session with every
//! contact whose published identity is the pinned one and sends it a
//! `SessionReset` (content tag 14) over it: the contact's client takes the
//! pre-key message as "the peer started over" and sends on the new session
//! from then on. A message that still arrives on a session this device
//! does not have, from a contact's pinned identity, asks for the same reset
//! (`ask_session_reset`, at most once per contact and
//! [`RESET_INTERVAL`]). A blocked contact gets no reset, from either
//! path (`crate::blocking`); after an unblock, a later message of it on
//! the lost session asks for one.
//!
//! Must never: restore session state, repin or lower a contact's trust,
//! send a reset to a contact whose published identity is not the pinned
//! one or to a blocked contact, or leave a half-restored store (the
//! restore is one transaction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use umbra_protocol::backup::{self as format, BackupContents, BackupHeader};
use umbra_protocol::content::Content;
use umbra_protocol::identity::IdentityPublic;
use umbra_protocol::wire::{AccountId, Username};

use super::http::{Answer, BackupEndpoint};
use super::{backup_error, BackupState, ExportKey};
use crate::engine::{lock, Engine, QueuedContent};
use crate::failure::BackupFailure;
use crate::records::{self, Prefix};
use crate::store::Txn;
use crate::trust::ContactRecord;
use crate::{Error, MessageId};

/// How often one contact may be sent a reset asked for by an undecryptable
/// message (a burst of old-session messages asks once).
pub(crate) const RESET_INTERVAL: Duration = Duration::from_secs(600);

/// Resets asked for by undecryptable messages: when each contact was last
/// sent one, and those waiting for the worker (in memory: a restart may ask
/// once more, which is harmless).
#[derive(Default)]
pub(crate) struct ResetLimiter {
    last: Mutex<HashMap<[u8; 16], Instant>>,
    pending: Mutex<Vec<([u8; 16], IdentityPublic)>>,
}

impl ResetLimiter {
    /// Asks for a reset to `account`, whose message sealed by `identity`
    /// came on a session we do not have; `false` if one went to it less
    /// than [`RESET_INTERVAL`] ago.
    pub(crate) fn request(
        &self,
        account: [u8; 16],
        identity: IdentityPublic,
        now: Instant,
    ) -> bool {
        let mut last = lock(&self.last);
        if last
            .get(&account)
            .is_some_and(|at| now.duration_since(*at) < RESET_INTERVAL)
        {
            return false;
        }
        if last.len() >= MAX_TRACKED_RESETS {
            last.retain(|_, at| now.duration_since(*at) < RESET_INTERVAL);
        }
        last.insert(account, now);
        let mut pending = lock(&self.pending);
        if pending.len() < MAX_TRACKED_RESETS {
            pending.push((account, identity));
        }
        true
    }

    fn take(&self) -> Vec<([u8; 16], IdentityPublic)> {
        std::mem::take(&mut *lock(&self.pending))
    }
}

/// Most contacts a limiter tracks at once (forgets the expired beyond).
const MAX_TRACKED_RESETS: usize = 4096;

/// Fetches and opens the account's backup with the export key of the
/// login that just succeeded. `None`: the relay holds no backup (an
/// account registered before backups, or one whose backup was deleted).
pub(crate) async fn fetch(
    endpoint: &BackupEndpoint,
    token: &umbra_protocol::wire::SessionToken,
    export_key: &ExportKey,
    account: &AccountId,
) -> Result<Option<(u64, BackupContents)>, Error> {
    match endpoint.get(token).await? {
        Answer::NotFound => Ok(None),
        Answer::Ok { body, .. } => {
            let key = export_key.backup_key(account);
            // A fresh device remembers no seq: it accepts what it is
            // served (§13.8 says what a relay can do with that).
            let opened = format::open(&key, &body, None).map_err(backup_error)?;
            Ok(Some((opened.seq, opened.contents)))
        }
        Answer::Refused { status, reason } => {
            Err(Error::Backup(BackupFailure::Refused { status, reason }))
        }
        Answer::Conflict { .. } => Err(Error::Backup(BackupFailure::BadAnswer("409 to a GET"))),
    }
}

/// The `seq` of the backup the relay holds, read from its outside alone
/// (no key needed), for a login that starts over with a new identity and
/// so replaces it. `None`: no backup.
pub(crate) async fn stored_seq(
    endpoint: &BackupEndpoint,
    token: &umbra_protocol::wire::SessionToken,
) -> Result<Option<u64>, Error> {
    match endpoint.get(token).await? {
        Answer::NotFound => Ok(None),
        Answer::Ok { body, .. } => {
            let header = BackupHeader::parse(&body)
                .map_err(|e| backup_error(format::BackupError::Frame(e)))?;
            // Unauthenticated: 2^64-1 would wedge every later upload.
            super::sync::raise_floor(None, Some(header.seq))
        }
        Answer::Refused { status, reason } => {
            Err(Error::Backup(BackupFailure::Refused { status, reason }))
        }
        Answer::Conflict { .. } => Err(Error::Backup(BackupFailure::BadAnswer("409 to a GET"))),
    }
}

/// Which of the store's keys a login's export key is (12.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOutcome {
    /// The pending key of a change whose answer was lost: the change took
    /// effect, and the relay's backup is still sealed under the old key.
    PendingTaken,
    /// The current key: the password did not change (a pending change
    /// never took effect).
    Kept,
    /// Neither the current nor a pending key: the password changed
    /// elsewhere (or by a change of ours whose pending key a later,
    /// refused attempt replaced); the relay's backup may be sealed under a
    /// key this store never held.
    Neither,
}

impl Engine {
    /// Writes the backup state (export key, the seq restored from) into a
    /// store that has none or an older one: after every login, so the key
    /// is the current password's. A pending key (a password change whose
    /// answer was lost) is decided here by comparing it with the login's
    /// in constant time, and wiped in the same transaction; unless the
    /// outcome is [`KeyOutcome::Kept`], the caller uploads at once.
    pub(crate) async fn keep_export_key(
        &self,
        export_key: ExportKey,
        restored_seq: Option<u64>,
    ) -> Result<KeyOutcome, Error> {
        let _uploading = self.backup.upload_lock.lock().await;
        let previous = self.backup.state().await?;
        let pending = self.backup.pending().await?;
        let outcome = if pending.as_ref().is_some_and(|p| p.same_as(&export_key)) {
            KeyOutcome::PendingTaken
        } else if previous
            .as_ref()
            .is_some_and(|s| s.export_key.same_as(&export_key))
        {
            KeyOutcome::Kept
        } else {
            KeyOutcome::Neither
        };
        let state = BackupState {
            export_key,
            acked_seq: restored_seq.or(previous.as_ref().and_then(|s| s.acked_seq)),
            // A login may follow a password change elsewhere (or one of
            // ours whose answer was lost): upload once under this key
            // whatever was acknowledged before.
            acked_digest: None,
        };
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.backup.put_state(&mut txn, &state)?;
        if pending.is_some() {
            self.backup.drop_pending(&mut txn);
        }
        self.vault.commit(txn).await?;
        self.backup.touch();
        Ok(outcome)
    }

    /// Starts a fresh session with every restored contact and sends each a
    /// `SessionReset` over it (see the module docs). A contact that cannot
    /// be reached now (no published keys, a changed identity, the relay
    /// away) or is blocked is skipped: a later message of it here (after
    /// an unblock) asks for the reset again.
    pub(crate) async fn reset_all_sessions(self: &Arc<Self>) -> Result<usize, Error> {
        let contacts = self
            .vault
            .load_all(&Prefix::<records::contact::Contacts>::all())
            .await?;
        let mut sent = 0;
        for (_, contact) in contacts {
            match self.reset_session(&contact).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::info!(error = %e, "session reset not sent to a contact"),
            }
        }
        Ok(sent)
    }

    /// A message sealed by `inbound`'s sender came on a session this
    /// device does not have (a contact still on a session with the device
    /// we were restored over): asks the worker for a reset, at most once
    /// per contact and [`RESET_INTERVAL`]. Cheap; no I/O.
    pub(crate) fn ask_session_reset(&self, inbound: &umbra_protocol::pairwise::InboundEnvelope) {
        let account = *inbound.sender_address().account.as_bytes();
        if self
            .session_resets
            .request(account, inbound.sender().clone(), Instant::now())
        {
            self.backup.wake.notify_one();
        }
    }

    /// The resets asked for (the backup worker runs this): each goes only
    /// to a contact whose pinned identity is the one that sealed the
    /// undecryptable message, so a stranger cannot make us send anything.
    pub(crate) async fn send_asked_resets(self: &Arc<Self>) {
        for (account, identity) in self.session_resets.take() {
            let contact = match self.names.contact(&account).await {
                Ok(Some(contact)) => contact,
                _ => continue,
            };
            let pinned: bool = contact.pinned.ct_eq(&identity).into();
            if !pinned {
                continue;
            }
            if let Err(e) = self.reset_session(&contact).await {
                tracing::info!(error = %e, "session reset asked by an undecryptable message not sent");
            }
        }
    }

    /// One reset: a bundle claimed without the lock, then under it a new
    /// session from the bundle (only if it carries the pinned identity)
    /// and the `SessionReset` into the outbox with it.
    async fn reset_session(self: &Arc<Self>, contact: &ContactRecord) -> Result<bool, Error> {
        self.check_open()?;
        // A blocked account is sent nothing of our own accord, and not
        // even asked for its bundle (that claims one of its prekeys and
        // shows the relay our interest). The ask is dropped, not kept: after
        // an unblock, a later message on the lost session asks again.
        if !contact.may_send() || self.is_blocked(&contact.account).await? {
            return Ok(false);
        }
        let account = AccountId::from_bytes(contact.account);
        let name = Username::parse_canonical(&contact.username)?;
        let bundle = self.fetch_bundle(account, &name).await?;
        let _guard = self.op_lock.lock().await;
        let Some(current) = self.names.contact(&contact.account).await? else {
            return Ok(false);
        };
        let pinned: bool = current.pinned.ct_eq(bundle.identity()).into();
        if !current.may_send() || !pinned || self.is_blocked(&current.account).await? {
            // A key change is the user's to decide (the next send says so).
            return Ok(false);
        }
        let mut record = self
            .start_session(&current, &bundle, account, self.clock.now_secs())
            .await?;
        let mut counters = self.counters().await?;
        let mut txn = Txn::new();
        self.encrypt_into_outbox(
            &mut txn,
            &mut counters,
            &current,
            std::slice::from_mut(&mut record),
            QueuedContent {
                content: Content::SessionReset,
                id: MessageId::random(&mut OsRng),
                visible: false,
            },
        )?;
        self.put_counters(&mut txn, &counters)?;
        self.vault.commit(txn).await?;
        self.outbox_wake.notify_one();
        Ok(true)
    }
}
