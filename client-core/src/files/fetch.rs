//! Fetching a file: download and verify its blob into a temporary file in
//! the destination's directory, and link it into place only after the
//! decryptor accepted the whole blob.
//!
//! On Linux the temporary file is unnamed (`O_TMPFILE`): it never appears
//! in the directory, and a crash, SIGKILL or Ctrl-C leaves nothing, because
//! the kernel frees it with its last descriptor. Where the file system does
//! not support that, a named `.umbra-<hex>.part` is used instead, removed
//! when the fetch ends or is dropped, and any such file older than
//! [`STALE_PART`] is swept by the next fetch into the same directory.
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

/// How old a named temporary file must be before a fetch removes it as
/// left behind by a crash: an hour is far longer than any fetch of the
/// largest blob takes, so a fetch running beside us is never swept.
const STALE_PART: std::time::Duration = std::time::Duration::from_secs(3600);

/// The named temporary file, removed when dropped unless it was moved into
/// place.
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

/// Where the verified bytes are written before they are placed.
enum Temp {
    /// An `O_TMPFILE` in the destination directory, linked in at the end.
    #[cfg(target_os = "linux")]
    Unnamed,
    /// A named `.umbra-<hex>.part`, hard-linked (or renamed) in at the end.
    Named(Partial),
}

/// Whether `name` is one of our named temporary files.
fn is_part_name(name: &str) -> bool {
    name.len() == ".umbra-".len() + 12 + ".part".len()
        && name.starts_with(".umbra-")
        && name.ends_with(".part")
        && name[7..19].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes named temporary files older than [`STALE_PART`] from `dir`: a
/// crash or SIGKILL during an earlier fetch there left them. Best effort.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_part_name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > STALE_PART);
        if meta.is_file() && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Opens the temporary file in `dir`: unnamed where the kernel and file
/// system allow it, else named.
fn open_temp(dir: &Path) -> Result<(std::fs::File, Temp), Error> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((std::fs::File::from(fd), Temp::Unnamed)),
            // The file system (or an old kernel) has no O_TMPFILE.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::ISDIR => {}
            Err(e) => return Err(local("creating a temporary file in", dir)(e.into())),
        }
    }
    sweep_stale(dir);
    let mut random = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let partial = Partial {
        path: dir.join(format!(".umbra-{}.part", hex::encode(random))),
        armed: true,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&partial.path)
        .map_err(local("creating", &partial.path))?;
    Ok((file, Temp::Named(partial)))
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
        let (file, temp) = open_temp(&dir)?;
        // Named in errors: the temporary's name, or the directory it is in.
        let shown = match &temp {
            Temp::Named(partial) => partial.path.clone(),
            #[cfg(target_os = "linux")]
            Temp::Unnamed => dir.clone(),
        };
        let file = tokio::fs::File::from_std(file);
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let http = self.blob_http()?;
        download(&http, stored.pointer(), &mut out, &shown, progress).await?;
        out.flush().await.map_err(local("writing", &shown))?;
        let file = out.into_inner();
        file.sync_all().await.map_err(local("writing", &shown))?;
        let file = file.into_std().await;
        match &temp {
            Temp::Named(partial) => {
                drop(file);
                place(&partial.path, &target)?;
            }
            #[cfg(target_os = "linux")]
            Temp::Unnamed => link_unnamed(&file, &target)?,
        }
        // The directory entry too, so a crash after returning keeps it.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok((target, info))
    }
}

/// Gives the unnamed verified file the name `target`; `linkat` never
/// replaces an existing file, so a file that appeared meanwhile is kept.
/// Through `/proc/self/fd` (which needs no privilege, unlike
/// `AT_EMPTY_PATH`); the latter only where `/proc` is not mounted.
#[cfg(target_os = "linux")]
fn link_unnamed(file: &std::fs::File, target: &Path) -> Result<(), Error> {
    use rustix::fs::{AtFlags, CWD};
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let mut result = rustix::fs::linkat(CWD, &proc_path, CWD, target, AtFlags::SYMLINK_FOLLOW);
    if result == Err(rustix::io::Errno::NOENT) && !Path::new("/proc/self/fd").exists() {
        result = rustix::fs::linkat(file, "", CWD, target, AtFlags::EMPTY_PATH);
    }
    match result {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(Error::File(FileFailure::Exists(target.to_owned()))),
        Err(e) => Err(local("saving", target)(e.into())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_temporary_is_invisible_and_never_replaces_a_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let (mut file, temp) = open_temp(dir.path()).unwrap();
        assert!(
            matches!(temp, Temp::Unnamed),
            "tmpfs/ext4 support O_TMPFILE"
        );
        file.write_all(b"verified").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let target = dir.path().join("a.txt");
        std::fs::write(&target, b"mine").unwrap();
        assert!(matches!(
            link_unnamed(&file, &target),
            Err(Error::File(FileFailure::Exists(_)))
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"mine");
        let other = dir.path().join("b.txt");
        link_unnamed(&file, &other).unwrap();
        assert_eq!(std::fs::read(&other).unwrap(), b"verified");
    }

    #[test]
    fn only_old_part_files_of_ours_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".umbra-0123456789ab.part");
        let fresh = dir.path().join(".umbra-ba9876543210.part");
        let foreign = dir.path().join(".umbra-notours.part");
        for p in [&old, &fresh, &foreign] {
            std::fs::write(p, b"x").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - 2 * STALE_PART;
        for p in [&old, &foreign] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        sweep_stale(dir.path());
        assert!(!old.exists());
        assert!(fresh.exists());
        assert!(foreign.exists());
    }
}
