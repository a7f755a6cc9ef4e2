//! The relay's key-transparency key file: the directory key (Ed25519 seed,
//! signs every epoch head) and the VRF secret key (turns labels into leaf
//! indices), docs/PROTOCOL.md 16.2 and 16.7, in a file of their own beside
//! the OPAQUE key file, mode 0600, never in the database.
//!
//! Every node sharing a database must use the same file (as with the OPAQUE
//! key file): a head signed with another key, or a label indexed under
//! another VRF key, would be a fork clients alarm on. By default it sits in
//! the OPAQUE key file's directory, so nodes that share that file's
//! directory share this one too; nodes that were given copies need a copy
//! of this file as well. The database records the two public keys (not
//! secret) on first start; a node whose file holds others refuses to start.
//!
//! Format (version 1): [`MAGIC`] || directory seed (32) || VRF scalar (32).
//!
//! Must never: write either secret to the database or a log (the keys'
//! `Debug` is redacted), keep a copy of them outside [`KtKeys`] (the VRF
//! crate's secret key is `Copy`; `VrfSecretKey` rebuilds it per use),
//! accept a file others may read, or overwrite an existing file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use umbra_wire::kt::{DirectoryPublicKey, DirectorySigningKey, VrfPublicKey, VrfSecretKey};
use zeroize::Zeroizing;

use crate::store::{KtStore, StoreError};

/// The file's name inside the data directory when `--kt-key-file` is not given.
pub const DEFAULT_FILE_NAME: &str = "kt-directory-key";

/// The first bytes of the file: format and version.
pub const MAGIC: &[u8] = b"umbra-relay key transparency keys v1\n";

const BODY_LEN: usize = 64;

/// The relay's two KT secrets, each zeroized on drop, in one place.
#[derive(Debug)]
pub struct KtKeys {
    directory: DirectorySigningKey,
    vrf: VrfSecretKey,
}

impl KtKeys {
    /// Fresh keys from `OsRng`.
    pub fn generate() -> Self {
        Self {
            directory: DirectorySigningKey::generate(&mut OsRng),
            vrf: VrfSecretKey::generate(&mut OsRng),
        }
    }

    /// The directory signing key.
    pub fn directory(&self) -> &DirectorySigningKey {
        &self.directory
    }

    /// The VRF secret key.
    pub fn vrf(&self) -> &VrfSecretKey {
        &self.vrf
    }

    /// The public halves clients pin.
    pub fn public(&self) -> (DirectoryPublicKey, VrfPublicKey) {
        (self.directory.public_key(), self.vrf.public_key())
    }

    /// Directory key || VRF key, as the database records them.
    pub fn public_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.directory.public_key().to_bytes());
        out[32..].copy_from_slice(&self.vrf.public_key().to_bytes());
        out
    }

    fn to_body(&self) -> Zeroizing<Vec<u8>> {
        let mut body = Zeroizing::new(Vec::with_capacity(BODY_LEN));
        body.extend_from_slice(self.directory.to_seed().as_slice());
        body.extend_from_slice(self.vrf.to_bytes().as_slice());
        body
    }

    fn from_body(body: &[u8]) -> Option<Self> {
        if body.len() != BODY_LEN {
            return None;
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&body[..32]);
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&body[32..]);
        Some(Self {
            directory: DirectorySigningKey::from_seed(&seed),
            vrf: VrfSecretKey::from_bytes(&scalar).ok()?,
        })
    }
}

/// Why the key file could not be used. Each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KtKeyFileError {
    /// Reading, writing or inspecting the file failed.
    #[error("key-transparency key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "key-transparency key file {path} has mode {mode:o}; it must be readable by the \
         relay's user only (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, a wrong header, or keys that do not parse.
    #[error("key-transparency key file {path} is malformed ({what}); restore it from backup")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// The database's directory was published under other keys.
    #[error(
        "key-transparency key file {path} is not the one this database's directory was \
         published with; copy the file from another node or restore it from backup (new keys \
         would be a fork every client refuses)"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
    },
    /// The store failed.
    #[error("the store failed while checking the key-transparency keys: {0}")]
    Store(#[from] StoreError),
}

/// Loads the file at `path`, creating it on first start, and checks its
/// public keys against the ones the database recorded.
pub async fn load_or_create<S: KtStore + ?Sized>(
    path: &Path,
    store: &S,
) -> Result<KtKeys, KtKeyFileError> {
    let (keys, created) = match read(path)? {
        Some(keys) => (keys, false),
        None => {
            let keys = KtKeys::generate();
            if write_new(path, &keys.to_body())? {
                (keys, true)
            } else {
                // Another node sharing the directory created it meanwhile.
                let theirs = read(path)?.ok_or_else(|| malformed(path, "it vanished"))?;
                (theirs, false)
            }
        }
    };
    let ours = keys.public_bytes();
    let bound = store.bind_kt_public_keys(&ours).await?;
    if bound != ours {
        if created {
            // Made a moment ago for a database that has keys: remove it, so
            // "copy the right file here" stays true on the next start.
            let _ = fs::remove_file(path);
        }
        return Err(KtKeyFileError::Mismatch {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KtKeyFileError + '_ {
    move |source| KtKeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn malformed(path: &Path, what: &'static str) -> KtKeyFileError {
    KtKeyFileError::Malformed {
        path: path.to_path_buf(),
        what,
    }
}

/// The keys in the file, `None` if there is no file.
fn read(path: &Path) -> Result<Option<KtKeys>, KtKeyFileError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    if !meta.is_file() {
        return Err(malformed(path, "it is not a regular file"));
    }
    check_mode(path, &meta)?;
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error(path))?);
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed(path, "it does not start with the key-transparency header"))?;
    KtKeys::from_body(body)
        .map(Some)
        .ok_or_else(|| malformed(path, "the keys do not parse"))
}

fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), KtKeyFileError> {
    match crate::secret_file::too_open(meta) {
        Some(mode) => Err(KtKeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

/// Writes a new file durably without replacing an existing one
/// (`secret_file::write_new`), as the OPAQUE key file is. `false`: `path`
/// appeared meanwhile (another node made it) and was left alone.
fn write_new(path: &Path, body: &[u8]) -> Result<bool, KtKeyFileError> {
    crate::secret_file::write_new(path, MAGIC, body)
        .map_err(|(path, source)| KtKeyFileError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::TestDb;

    #[tokio::test]
    async fn first_start_creates_the_file_and_every_node_loads_the_same_keys() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let first = load_or_create(&path, &*store).await.expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A second node, with the file copied to it.
        let other = tempfile::tempdir().unwrap();
        let copy = other.path().join(DEFAULT_FILE_NAME);
        fs::copy(&path, &copy).unwrap();
        let second = load_or_create(&copy, &*store).await.expect("loaded");
        assert_eq!(first.public_bytes(), second.public_bytes());
        let shown = format!("{first:?}");
        assert!(shown.contains("redacted"), "{shown}");
        let seed = hex::encode(first.directory().to_seed().as_slice());
        assert!(!shown.contains(&seed), "the seed is never printed");
    }

    #[tokio::test]
    async fn a_missing_foreign_or_readable_file_is_refused() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        load_or_create(&path, &*store).await.expect("created");

        // Lost: new keys are not silently made for a published directory.
        fs::rename(&path, dir.path().join("saved")).unwrap();
        let err = load_or_create(&path, &*store).await.expect_err("lost");
        assert!(matches!(err, KtKeyFileError::Mismatch { .. }), "{err}");
        assert!(!path.exists(), "the stand-in file is removed again");
        fs::rename(dir.path().join("saved"), &path).unwrap();

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create(&path, &*store).await.expect_err("0644");
            assert!(err.to_string().contains("chmod 600"), "{err}");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }

        let mut bytes = fs::read(&path).unwrap();
        bytes.pop();
        fs::write(&path, &bytes).unwrap();
        let err = load_or_create(&path, &*store).await.expect_err("short");
        assert!(matches!(err, KtKeyFileError::Malformed { .. }), "{err}");

        // A zero VRF scalar is not a key.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[7u8; 32]);
        bytes.extend_from_slice(&[0u8; 32]);
        fs::write(&path, &bytes).unwrap();
        let err = load_or_create(&path, &*store).await.expect_err("zero");
        assert!(err.to_string().contains("do not parse"), "{err}");
    }
}
