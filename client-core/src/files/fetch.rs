//! Fetching a file: download and verify its blob into a temporary file in
//! the destination's directory, and move it into place only after the
//! decryptor accepted the whole blob.
//!
//! Must never: leave anything at the destination (or the temporary file
//! anywhere) when the blob is refused or the transfer fails, overwrite an
//! existing file, or save outside the directory the user named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use tokio::io::AsyncWriteExt;

use super::transfer::download;
use super::{parse_local_id, records, FileInfo, Progress, StoredFile};
use crate::engine::Engine;
use crate::failure::FileFailure;
use crate::Error;

/// The temporary file, removed when dropped unless it was moved into place.
struct Partial {
    path: PathBuf,
    armed: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn local<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        Error::File(FileFailure::Local {
            what,
            path: path.to_owned(),
            source,
        })
    }
}

/// Where file `name` goes for a `dest` given by the user: inside `dest`
/// when it is a directory (the current one when none), else `dest` itself.
/// The sanitised name never holds a separator, so it cannot leave the
/// directory.
fn destination(dest: Option<&Path>, name: &str) -> PathBuf {
    match dest {
        None => PathBuf::from(".").join(name),
        Some(dir) if dir.is_dir() => dir.join(name),
        Some(file) => file.to_owned(),
    }
}

impl Engine {
    /// The file with local id `id`.
    pub(crate) async fn file_info(&self, id: &str) -> Result<FileInfo, Error> {
        Ok(self.stored_file(id).await?.info())
    }

    async fn stored_file(&self, id: &str) -> Result<StoredFile, Error> {
        let local = parse_local_id(id)?;
        self.vault
            .load(&records::file::slot(&self.vault, &local))
            .await?
            .ok_or_else(|| Error::File(FileFailure::Unknown(id.chars().take(40).collect())))
    }

    /// Downloads, verifies and decrypts the file `id` to `dest`; returns
    /// where it was saved.
    pub(crate) async fn fetch_file(
        self: &Arc<Self>,
        id: &str,
        dest: Option<&Path>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(PathBuf, FileInfo), Error> {
        self.check_open()?;
        let stored = self.stored_file(id).await?;
        let info = stored.info();
        let target = destination(dest, &info.name);
        if tokio::fs::symlink_metadata(&target).await.is_ok() {
            return Err(Error::File(FileFailure::Exists(target)));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut random = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let partial = Partial {
            path: dir.join(format!(".umbra-{}.part", hex::encode(random))),
            armed: true,
        };
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options
            .open(&partial.path)
            .await
            .map_err(local("creating", &partial.path))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let http = self.blob_http()?;
        download(&http, stored.pointer(), &mut out, &partial.path, progress).await?;
        out.flush().await.map_err(local("writing", &partial.path))?;
        let file = out.into_inner();
        file.sync_all()
            .await
            .map_err(local("writing", &partial.path))?;
        drop(file);
        place(&partial.path, &target)?;
        // The directory entry too, so a crash after returning keeps it.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok((target, info))
    }
}

/// Moves the verified file to `target`, never over an existing file: a
/// hard link fails if `target` exists; where links are not supported, a
/// rename after a fresh check.
fn place(partial: &Path, target: &Path) -> Result<(), Error> {
    match std::fs::hard_link(partial, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::File(FileFailure::Exists(target.to_owned())))
        }
        Err(_) => {
            if std::fs::symlink_metadata(target).is_ok() {
                return Err(Error::File(FileFailure::Exists(target.to_owned())));
            }
            std::fs::rename(partial, target).map_err(local("saving", target))
        }
    }
}
