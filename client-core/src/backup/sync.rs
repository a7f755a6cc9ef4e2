//! Writing the account backup (docs/PROTOCOL.md §12.15): a background
//! worker that, a moment after anything a backup holds may have changed,
//! builds the contents from the store, and uploads them sealed when they
//! differ from what the relay last acknowledged; the compare-and-swap
//! conflict (`409`: merge with the relay's copy, seal with one more than
//! its `seq`); and re-sealing under a new export key (a password change).
//!
//! Crash safety: the acknowledged `seq` and the digest of the acknowledged
//! contents are committed to the store only after the relay's `204`; a
//! crash before that leaves the old state, so the next start uploads again
//! (the same `seq` with other bytes is a `409`, answered by a merge with
//! what the relay holds, which is then our own earlier upload).
//!
//! Must never: hold the state lock across a request, upload contents that
//! did not change, retry without a bound and a back-off, or overwrite a
//! backup it could not open unless it was sealed under another password.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::backup::{self as format, BackupContents, BackupError, BackupHeader};

use super::http::{Answer, BackupEndpoint};
use super::{backup_error, digest, BackupState, ExportKey};
use crate::engine::{lock, Engine};
use crate::failure::BackupFailure;
use crate::store::Txn;
use crate::Error;

/// How long the worker waits after a change for more changes, so a burst
/// (a group with many members, a restore) is one upload.
pub(crate) const BACKUP_DEBOUNCE: Duration = Duration::from_secs(2);
/// How often the worker looks again with no change signalled (a change it
/// was not told about, e.g. one committed while its signal was in flight).
pub(crate) const BACKUP_RECHECK: Duration = Duration::from_secs(300);
/// The first retry delay after a failed upload; doubled up to
/// [`BACKUP_MAX_BACKOFF`].
pub(crate) const BACKUP_FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest retry delay.
pub(crate) const BACKUP_MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Conflicts answered by a merge before an upload gives up for now.
const MAX_CONFLICT_ROUNDS: usize = 4;
/// Bounds one HTTP request to the relay.
const BACKUP_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a shutdown waits for a pending backup to reach the relay.
pub(crate) const BACKUP_FLUSH_TIMEOUT: Duration = Duration::from_secs(15);
/// The same, when the client was not connected at shutdown.
pub(crate) const BACKUP_FLUSH_OFFLINE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uploaded {
    /// The relay holds backup `seq` now.
    Stored { seq: u64 },
    /// Nothing changed since the last acknowledged backup.
    Unchanged,
    /// Nothing to do yet: no token or no export key in this store.
    NotReady,
}

impl Engine {
    fn backup_endpoint(&self) -> Result<BackupEndpoint, Error> {
        BackupEndpoint::new(
            &self.server_url,
            self.tls_roots.clone(),
            BACKUP_REQUEST_TIMEOUT,
        )
    }

    /// Starts the background worker if it is not running (with the
    /// connection: it needs the relay).
    pub(crate) fn start_backup_worker(self: &Arc<Self>) {
        let mut slot = lock(&self.backup.worker);
        if slot.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(self);
        *slot = Some(tokio::spawn(worker(weak)));
    }

    /// Stops the worker and uploads a pending change now (shutdown), within
    /// [`BACKUP_FLUSH_TIMEOUT`]; a failure is logged and left to the next
    /// start, which finds the contents still unacknowledged.
    pub(crate) async fn stop_backup_worker(&self) {
        let worker = lock(&self.backup.worker).take();
        if let Some(worker) = worker {
            worker.abort();
            let _ = worker.await;
        }
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        // Also after a command that never connected (a local `verify`):
        // unchanged contents cost no request; a relay that was not reached
        // gets less of the caller's time.
        let connected = *self.conn_state.borrow() == crate::ConnectionState::Connected;
        let limit = if connected {
            BACKUP_FLUSH_TIMEOUT
        } else {
            BACKUP_FLUSH_OFFLINE_TIMEOUT
        };
        match tokio::time::timeout(limit, self.upload_backup()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "account backup not written at shutdown"),
            Err(_) => tracing::warn!("account backup not written at shutdown: timed out"),
        }
    }

    /// The contents a backup written now holds (§12.15).
    pub(crate) async fn backup_contents(&self) -> Result<BackupContents, Error> {
        let groups = self.groups.all().await?;
        self.backup
            .contents(
                self.me().account,
                &self.identity,
                &groups,
                self.clock.now_secs(),
            )
            .await
    }

    /// Uploads the backup if its contents changed since the relay last
    /// acknowledged one (serialised with every other upload).
    pub(crate) async fn upload_backup(&self) -> Result<Uploaded, Error> {
        let _uploading = self.backup.upload_lock.lock().await;
        let Some(state) = self.backup.state().await? else {
            return Ok(Uploaded::NotReady);
        };
        let Some(token) = self.token().await? else {
            return Ok(Uploaded::NotReady);
        };
        let mut contents = self.backup_contents().await?;
        let digest = digest(&mut contents)?;
        if state.acked_digest == Some(digest) {
            return Ok(Uploaded::Unchanged);
        }
        self.store_backup(state, contents, &token.session_token())
            .await
    }

    /// Re-seals the account backup under `new_export_key` (a password
    /// change: the old key no longer opens what a login with the new
    /// password derives) and makes it the key of every later backup. The
    /// relay's copy, sealed under the old key, is replaced whatever its
    /// `seq`: it cannot be opened any more, and this device's contents are
    /// the account's latest. The store holds the new key (and no
    /// acknowledged digest) before anything is sent, so on an error the
    /// backup upkeep re-seals under it later; on return the relay holds the
    /// re-sealed backup.
    pub(crate) async fn reseal_backup(&self, new_export_key: ExportKey) -> Result<u64, Error> {
        let _uploading = self.backup.upload_lock.lock().await;
        let token = self
            .token()
            .await?
            .ok_or_else(|| Error::NotLoggedIn {
                reason: "no session token in this data directory".into(),
            })?
            .session_token();
        let acked_seq = self.backup.state().await?.and_then(|s| s.acked_seq);
        let state = BackupState {
            export_key: new_export_key,
            acked_seq,
            acked_digest: None,
        };
        // The store's key before any network I/O: the relay's record is
        // already the new password's, so a PUT lost here (or a crash) must
        // leave the upkeep re-sealing under the new key, not the old one.
        // With it, the pending key of this change goes: it is current now.
        {
            let _guard = self.op_lock.lock().await;
            let mut txn = Txn::new();
            self.backup.put_state(&mut txn, &state)?;
            self.backup.drop_pending(&mut txn);
            self.vault.commit(txn).await?;
        }
        let contents = self.backup_contents().await?;
        match self.store_backup(state, contents, &token).await? {
            Uploaded::Stored { seq } => Ok(seq),
            // store_backup only returns Stored or an error.
            _ => Err(Error::Backup(BackupFailure::NoExportKey)),
        }
    }

    /// Seals `contents` with one more than the newest `seq` known and puts
    /// it; on `409` merges the relay's copy into this store and tries again
    /// with what the store then holds (§12.15: local contents equal what is
    /// sealed, so the next upload does not undo the merge).
    async fn store_backup(
        &self,
        mut state: BackupState,
        mut contents: BackupContents,
        token: &umbra_protocol::wire::SessionToken,
    ) -> Result<Uploaded, Error> {
        let endpoint = self.backup_endpoint()?;
        let key = state.export_key.backup_key(&self.me().account);
        // The digest of what this store holds (without the settings and
        // extension sections a merge carries only in the backup).
        let mut local_digest = digest(&mut contents)?;
        for _ in 0..MAX_CONFLICT_ROUNDS {
            let seq = next_seq(state.acked_seq)?;
            let sealed = format::seal(&contents, &key, seq, &mut OsRng).map_err(backup_error)?;
            match endpoint.put(token, &sealed).await? {
                Answer::Ok { seq: stored, .. } => {
                    if stored.is_some_and(|stored| stored != seq) {
                        return Err(Error::Backup(BackupFailure::BadAnswer(
                            "a 204 naming another seq than the one put",
                        )));
                    }
                    state.acked_seq = Some(seq);
                    state.acked_digest = Some(local_digest);
                    let _guard = self.op_lock.lock().await;
                    let mut txn = Txn::new();
                    self.backup.put_state(&mut txn, &state)?;
                    self.vault.commit(txn).await?;
                    return Ok(Uploaded::Stored { seq });
                }
                Answer::Conflict { seq: stored } => {
                    let theirs = match endpoint.get(token).await? {
                        Answer::Ok { body, .. } => body,
                        // Deleted in between: the next round stores ours,
                        // above the seq the (unauthenticated) answer named
                        // and never below the one we know.
                        Answer::NotFound => {
                            state.acked_seq = raise_floor(state.acked_seq, stored)?;
                            continue;
                        }
                        other => return Err(refused(other)),
                    };
                    // Never older than what the relay acknowledged to us: a
                    // relay serving a stale copy here is refused (§13.7).
                    match format::open(&key, &theirs, state.acked_seq) {
                        Ok(opened) => {
                            state.acked_seq = raise_floor(state.acked_seq, Some(opened.seq))?;
                            (contents, local_digest) = self.adopt_backup(opened.contents).await?;
                        }
                        // Sealed under an earlier password: nothing in it
                        // can be read, and ours is the account's latest. The
                        // header is unauthenticated (so is the key check
                        // that said WrongKey): its seq may only raise ours.
                        Err(BackupError::WrongKey) => {
                            let header = BackupHeader::parse(&theirs)
                                .map_err(|e| backup_error(BackupError::Frame(e)))?;
                            state.acked_seq = raise_floor(state.acked_seq, Some(header.seq))?;
                        }
                        Err(e) => return Err(backup_error(e)),
                    }
                }
                other => return Err(refused(other)),
            }
        }
        Err(Error::Backup(BackupFailure::Refused {
            status: 409,
            reason: "the backup changed on the relay during every merge".into(),
        }))
    }
}

/// The `seq` the next backup is sealed with: one more than the newest
/// known. `u64::MAX` cannot be followed (every later upload would be a
/// `409`), so it is refused where it is learnt ([`raise_floor`]).
fn next_seq(acked: Option<u64>) -> Result<u64, Error> {
    match acked {
        None => Ok(1),
        Some(seq) => seq
            .checked_add(1)
            .ok_or(Error::Backup(BackupFailure::BadAnswer(
                "a backup seq that cannot be followed",
            ))),
    }
}

/// The acknowledged `seq` after the relay named `learnt`: only ever higher
/// (a relay must not lower the rollback floor and get an older copy merged),
/// and never `u64::MAX`, which would wedge every later upload.
pub(crate) fn raise_floor(acked: Option<u64>, learnt: Option<u64>) -> Result<Option<u64>, Error> {
    if learnt == Some(u64::MAX) {
        return Err(Error::Backup(BackupFailure::BadAnswer(
            "a backup seq of 2^64-1, which no later backup can follow",
        )));
    }
    Ok(acked.max(learnt))
}

fn refused(answer: Answer) -> Error {
    match answer {
        Answer::Refused { status, reason } => {
            Error::Backup(BackupFailure::Refused { status, reason })
        }
        Answer::NotFound => Error::Backup(BackupFailure::Refused {
            status: 404,
            reason: "no backup".into(),
        }),
        Answer::Conflict { .. } => Error::Backup(BackupFailure::Refused {
            status: 409,
            reason: "conflict".into(),
        }),
        Answer::Ok { .. } => Error::Backup(BackupFailure::BadAnswer("an unexpected success")),
    }
}

/// The worker: waits for a change (or [`BACKUP_RECHECK`]), lets a burst
/// settle for [`BACKUP_DEBOUNCE`], uploads, and on failure retries with a
/// doubling back-off. Ends when the engine is gone or closed.
async fn worker(engine: Weak<Engine>) {
    let mut backoff = BACKUP_FIRST_BACKOFF;
    loop {
        let Some(strong) = engine.upgrade() else {
            return;
        };
        if strong.closed.load(Ordering::SeqCst) {
            return;
        }
        if !strong.backup.dirty.load(Ordering::SeqCst) {
            // Not holding the engine while waiting: dropping the last
            // client handle must end the worker.
            let wake = strong.backup.wake.clone();
            drop(strong);
            let _ = tokio::time::timeout(BACKUP_RECHECK, wake.notified()).await;
        } else {
            drop(strong);
        }
        if let Some(strong) = engine.upgrade() {
            strong.send_asked_resets().await;
        }
        tokio::time::sleep(BACKUP_DEBOUNCE).await;
        let Some(strong) = engine.upgrade() else {
            return;
        };
        strong.backup.dirty.store(false, Ordering::SeqCst);
        match strong.upload_backup().await {
            Ok(done) => {
                if let Uploaded::Stored { seq } = done {
                    tracing::debug!(seq, "account backup stored");
                }
                backoff = BACKUP_FIRST_BACKOFF;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "account backup failed");
                strong.backup.dirty.store(true, Ordering::SeqCst);
                drop(strong);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKUP_MAX_BACKOFF);
            }
        }
    }
}
