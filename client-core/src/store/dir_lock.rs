//! One writer per data directory: an exclusive OS lock on
//! `umbra-client.lock`, held for as long as anything in the process uses the
//! store there.
//!
//! Why: the in-process `op_lock` serialises state changes of one client, but
//! two processes on the same directory (four `umbra send` started at once, a
//! `umbra chat` plus a script) would each read the same ratchet state, derive
//! the same message key and nonce, and encrypt different plaintexts under
//! them — keystream reuse, and sessions that break for good. An advisory
//! `flock(2)` lock closes that: the second process waits (bounded), then
//! fails with [`StoreError::Locked`]. The kernel drops the lock when the
//! process exits, however it exits, so a crash never leaves the directory
//! locked.
//!
//! Must never: hand out a second lock for a directory while one is held
//! (flock locks belong to the open file description, so even a second open
//! in the same process conflicts), wait without a bound, or delete the lock
//! file (a process that opened the old file would then lock a different
//! inode than the next one).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::StoreError;

/// File name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "umbra-client.lock";

/// How long [`ClientConfig`](crate::ClientConfig) lets a client wait for the
/// lock by default before giving up.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// After this long waiting, [`DataDirLock::acquire`] tells its caller (so a
/// CLI can say why it is not doing anything yet).
pub const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How often a waiting process tries the lock again.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The held lock of one data directory; released when dropped (or when the
/// process ends).
pub struct DataDirLock {
    // Held only for its open file description: the lock lives as long as it.
    _file: File,
    dir: PathBuf,
}

impl std::fmt::Debug for DataDirLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDirLock")
            .field("dir", &self.dir)
            .finish()
    }
}

impl DataDirLock {
    /// Takes the lock of `dir` if no other holder has it right now, without
    /// waiting: `Ok(None)` means someone else holds it. Creates the
    /// directory (0700) and the lock file (0600) if needed.
    pub fn try_acquire(dir: &Path) -> Result<Option<Self>, StoreError> {
        super::sqlite::secure_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        if try_lock(&file)? {
            Ok(Some(Self {
                _file: file,
                dir: dir.to_owned(),
            }))
        } else {
            Ok(None)
        }
    }

    /// Takes the lock of `dir`, waiting up to `wait` for another holder to
    /// let go. Calls `on_waiting` once if it has waited
    /// [`LOCK_NOTICE_AFTER`] and is still waiting. Fails with
    /// [`StoreError::Locked`] when the wait runs out.
    pub async fn acquire<F: FnOnce() + Send>(
        dir: &Path,
        wait: Duration,
        on_waiting: F,
    ) -> Result<Self, StoreError> {
        let started = tokio::time::Instant::now();
        let mut notice = Some(on_waiting);
        loop {
            if let Some(lock) = Self::try_acquire(dir)? {
                return Ok(lock);
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(StoreError::Locked {
                    dir: dir.to_owned(),
                    waited_secs: wait.as_secs(),
                });
            }
            if waited >= LOCK_NOTICE_AFTER {
                if let Some(tell) = notice.take() {
                    tell();
                }
            }
            tokio::time::sleep(RETRY_EVERY.min(wait - waited)).await;
        }
    }

    /// The directory this lock guards.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?)
}

#[cfg(unix)]
fn try_lock(file: &File) -> Result<bool, StoreError> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(StoreError::Io(e.into())),
    }
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

/// No advisory lock off Unix yet: docs/THREAT_MODEL.md lists this limit.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> Result<bool, StoreError> {
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::try_acquire(dir.path()).unwrap().unwrap();
        assert!(
            DataDirLock::try_acquire(dir.path()).unwrap().is_none(),
            "two holders of one data dir"
        );
        drop(first);
        assert!(DataDirLock::try_acquire(dir.path()).unwrap().is_some());
    }

    #[tokio::test]
    async fn waiting_is_bounded_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DataDirLock::try_acquire(dir.path()).unwrap().unwrap();
        let told = std::sync::atomic::AtomicBool::new(false);
        let err = DataDirLock::acquire(dir.path(), Duration::from_millis(1200), || {
            told.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(told.load(std::sync::atomic::Ordering::SeqCst));
    }
}
