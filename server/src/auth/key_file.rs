//! The OPAQUE server key file: the relay's `ServerSetup` (OPRF seed and
//! AKE key pair) in a file of its own, mode 0600, never in the database.
//!
//! Why a file: with the seed beside the password records, a database dump
//! alone was enough to run an offline dictionary attack on every account.
//! Kept apart, a dump without the file is not (backups must now carry both;
//! docs/OPERATIONS.md says how).
//!
//! Start-up, in order ([`load_or_create`]):
//! 1. the file exists: it must be a regular file readable by the relay's
//!    user only, hold the magic header and a setup that parses;
//! 2. it does not, but the database still holds the setup of an older
//!    install: that setup is written to the file (0600, fsync, no-clobber
//!    link) and only then deleted from the database, once;
//! 3. neither: a fresh setup from `OsRng` is written.
//!
//! The database keeps a labelled SHA-256 fingerprint of the file (not a
//! secret: the file's 128+ bytes are uniformly random). A node whose file is
//! missing, wrong or from another relay refuses to start instead of failing
//! every login with `AuthFailed`.
//!
//! Must never: write the setup to the database or a log, accept a file
//! others may read or write, overwrite an existing key file, or delete the
//! database's copy before the file is durable.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::opaque::OpaqueServer;
use crate::store::{AccountStore, StoreError};

/// The key file's name inside the data directory when `--opaque-key-file`
/// is not given.
pub const DEFAULT_FILE_NAME: &str = "opaque-server-key";

/// The first bytes of a key file: format and version, so a wrong file is
/// named as such rather than as a corrupt setup.
pub const MAGIC: &[u8] = b"umbra-relay opaque server setup v1\n";

/// Domain label of the fingerprint the database keeps.
pub const FINGERPRINT_LABEL: &[u8] = b"umbra/v1/relay/opaque-key-fingerprint";

/// What the database keeps about the server setup.
#[async_trait]
pub trait ServerKeyRecord: Send + Sync {
    /// The setup an older relay kept in the database, if it is still there.
    async fn legacy_server_setup(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;

    /// Deletes the database's copy of the setup (after it was moved to the file).
    async fn delete_legacy_server_setup(&self) -> Result<(), StoreError>;

    /// Records `fingerprint` if none is recorded yet; returns the recorded one.
    async fn bind_server_key_fingerprint(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<[u8; 32], StoreError>;
}

#[async_trait]
impl<T: AccountStore + ?Sized> ServerKeyRecord for T {
    async fn legacy_server_setup(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        AccountStore::legacy_server_setup(self).await
    }

    async fn delete_legacy_server_setup(&self) -> Result<(), StoreError> {
        AccountStore::delete_legacy_server_setup(self).await
    }

    async fn bind_server_key_fingerprint(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<[u8; 32], StoreError> {
        AccountStore::bind_server_key_fingerprint(self, fingerprint).await
    }
}

/// Why the key file could not be used. Each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading, writing or inspecting the file failed.
    #[error("OPAQUE key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "OPAQUE key file {path} has mode {mode:o}; it must be readable by the relay's user only \
         (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file.
    #[error("OPAQUE key file {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Wrong header, or a setup that does not parse.
    #[error("OPAQUE key file {path} is malformed ({what}); restore it from backup")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// The file does not belong to the accounts in this database.
    #[error(
        "OPAQUE key file {path} is not the one this database's accounts were registered with; \
         use the key file of the relay that created them (copy it from another node or restore \
         it from backup)"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
    },
    /// The database holds a different setup from an older install.
    #[error(
        "the database still holds an OPAQUE setup from an older relay that differs from key file \
         {path}; move {path} aside to migrate the database's setup into it"
    )]
    LegacyConflict {
        /// The file.
        path: PathBuf,
    },
    /// The store failed.
    #[error("the store failed while checking the OPAQUE key: {0}")]
    Store(#[from] StoreError),
}

/// The fingerprint of a serialized setup.
pub fn fingerprint(setup: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_LABEL);
    h.update(setup);
    h.finalize().into()
}

/// Loads the key file at `path`, migrating the database's setup into it or
/// creating it on first start, and checks it against the database.
pub async fn load_or_create<S: ServerKeyRecord + ?Sized>(
    path: &Path,
    store: &S,
) -> Result<OpaqueServer, KeyFileError> {
    let legacy = store.legacy_server_setup().await?;
    let (setup, created) = match read(path)? {
        Some(setup) => {
            if let Some(old) = &legacy {
                if old.as_slice() != setup.as_slice() {
                    return Err(KeyFileError::LegacyConflict {
                        path: path.to_path_buf(),
                    });
                }
            }
            (setup, false)
        }
        None => {
            let setup = match &legacy {
                Some(old) => {
                    // Checked before it is written, so a corrupt row never
                    // becomes a key file.
                    OpaqueServer::from_bytes(old).map_err(|_| KeyFileError::Malformed {
                        path: path.to_path_buf(),
                        what: "the database's old setup does not parse",
                    })?;
                    old.clone()
                }
                None => OpaqueServer::generate(&mut OsRng).to_bytes(),
            };
            write_new(path, &setup)?;
            (setup, legacy.is_none())
        }
    };
    let ours = fingerprint(&setup);
    let bound = store.bind_server_key_fingerprint(&ours).await?;
    if bound != ours {
        if created {
            // A file made a moment ago for a database that already has a
            // key: remove it, so the message "copy the right file here"
            // stays true on the next start.
            let _ = fs::remove_file(path);
        }
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
        });
    }
    if legacy.is_some() {
        store.delete_legacy_server_setup().await?;
        tracing::info!("moved the OPAQUE server setup out of the database into the key file");
    }
    OpaqueServer::from_bytes(&setup).map_err(|_| KeyFileError::Malformed {
        path: path.to_path_buf(),
        what: "the setup does not parse",
    })
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The setup in the file, `None` if there is no file.
fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, KeyFileError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_mode(path, &meta)?;
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error(path))?);
    let setup = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| KeyFileError::Malformed {
            path: path.to_path_buf(),
            what: "it does not start with the umbra-relay key header",
        })?;
    OpaqueServer::from_bytes(setup).map_err(|_| KeyFileError::Malformed {
        path: path.to_path_buf(),
        what: "the setup does not parse",
    })?;
    Ok(Some(Zeroizing::new(setup.to_vec())))
}

fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), KeyFileError> {
    match crate::secret_file::too_open(meta) {
        Some(mode) => Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

/// Writes a new key file durably without ever replacing an existing one
/// (`secret_file::write_new`). A file that appeared meanwhile is an error
/// here: the caller read none a moment ago.
fn write_new(path: &Path, setup: &[u8]) -> Result<(), KeyFileError> {
    match crate::secret_file::write_new(path, MAGIC, setup) {
        Ok(true) => Ok(()),
        Ok(false) => Err(io_error(path)(io::ErrorKind::AlreadyExists.into())),
        Err((path, source)) => Err(KeyFileError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The database side, in memory.
    #[derive(Default)]
    struct Record {
        legacy: Mutex<Option<Vec<u8>>>,
        fingerprint: Mutex<Option<[u8; 32]>>,
    }

    #[async_trait]
    impl ServerKeyRecord for Record {
        async fn legacy_server_setup(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
            Ok(self.legacy.lock().unwrap().clone().map(Zeroizing::new))
        }
        async fn delete_legacy_server_setup(&self) -> Result<(), StoreError> {
            *self.legacy.lock().unwrap() = None;
            Ok(())
        }
        async fn bind_server_key_fingerprint(
            &self,
            fingerprint: &[u8; 32],
        ) -> Result<[u8; 32], StoreError> {
            Ok(*self.fingerprint.lock().unwrap().get_or_insert(*fingerprint))
        }
    }

    fn same(a: &OpaqueServer, b: &OpaqueServer) -> bool {
        a.to_bytes().as_slice() == b.to_bytes().as_slice()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn first_start_creates_a_0600_file_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(DEFAULT_FILE_NAME);
        let db = Record::default();
        let first = load_or_create(&path, &db).await.expect("created");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert!(fs::read(&path).unwrap().starts_with(MAGIC));
        let again = load_or_create(&path, &db).await.expect("reloaded");
        assert!(same(&first, &again), "a restart keeps the setup");
        assert!(
            db.legacy.lock().unwrap().is_none(),
            "nothing in the database"
        );
    }

    #[tokio::test]
    async fn an_old_databases_setup_moves_to_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let old = OpaqueServer::generate(&mut OsRng);
        let db = Record::default();
        *db.legacy.lock().unwrap() = Some(old.to_bytes().to_vec());
        let loaded = load_or_create(&path, &db).await.expect("migrated");
        assert!(same(&loaded, &old), "old password records keep working");
        assert!(
            db.legacy.lock().unwrap().is_none(),
            "deleted from the database"
        );
        let file = fs::read(&path).unwrap();
        assert_eq!(&file[MAGIC.len()..], old.to_bytes().as_slice());
        // A crash after writing the file but before deleting the row: the
        // next start finds both, equal, and finishes the move.
        *db.legacy.lock().unwrap() = Some(old.to_bytes().to_vec());
        let loaded = load_or_create(&path, &db).await.expect("move finished");
        assert!(same(&loaded, &old));
        assert!(db.legacy.lock().unwrap().is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let db = Record::default();
        load_or_create(&path, &db).await.expect("created");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_or_create(&path, &db).await.expect_err("0640 refused");
        assert!(
            matches!(err, KeyFileError::Permissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[tokio::test]
    async fn malformed_wrong_and_missing_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let db = Record::default();
        load_or_create(&path, &db).await.expect("created");

        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs::write(&path, &bytes).unwrap();
        let err = load_or_create(&path, &db).await.expect_err("truncated");
        assert!(matches!(err, KeyFileError::Malformed { .. }), "{err}");

        fs::write(&path, b"not a key").unwrap();
        let err = load_or_create(&path, &db).await.expect_err("no header");
        assert!(err.to_string().contains("header"), "{err}");

        // Another relay's (valid) key file: the database's accounts were not
        // registered with it.
        fs::remove_file(&path).unwrap();
        let other = tempfile::tempdir().unwrap();
        let other_path = other.path().join(DEFAULT_FILE_NAME);
        load_or_create(&other_path, &Record::default())
            .await
            .unwrap();
        fs::copy(&other_path, &path).unwrap();
        let err = load_or_create(&path, &db)
            .await
            .expect_err("foreign key file");
        assert!(matches!(err, KeyFileError::Mismatch { .. }), "{err}");

        // The file lost: a new one is not silently made for old accounts.
        fs::remove_file(&path).unwrap();
        let err = load_or_create(&path, &db).await.expect_err("missing file");
        assert!(matches!(err, KeyFileError::Mismatch { .. }), "{err}");
        assert!(!path.exists(), "the stand-in file is removed again");
    }

    #[tokio::test]
    async fn a_legacy_setup_that_differs_from_the_file_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let db = Record::default();
        load_or_create(&path, &db).await.expect("created");
        *db.legacy.lock().unwrap() = Some(OpaqueServer::generate(&mut OsRng).to_bytes().to_vec());
        let err = load_or_create(&path, &db).await.expect_err("conflict");
        assert!(matches!(err, KeyFileError::LegacyConflict { .. }), "{err}");
        assert!(db.legacy.lock().unwrap().is_some(), "nothing deleted");
    }
}
