//! The relay's secret files on disk (the OPAQUE key file,
//! `auth::key_file`, and the key-transparency key file, `kt::key_file`):
//! created once, durably, never replacing one that exists, readable by
//! the relay's user alone; and the check that a file found is still so.
//!
//! Must never: overwrite or truncate an existing file (several nodes may
//! start at once on one shared directory, and the first file written is
//! the one every database row was bound to), leave a file readable by
//! anyone but its owner, or report a file written before it and its
//! directory entry are synced.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O failure on a secret file, with the path it concerns.
pub type Failed = (PathBuf, io::Error);

fn at(path: &Path) -> impl FnOnce(io::Error) -> Failed + '_ {
    move |e| (path.to_path_buf(), e)
}

/// Writes `header || body` to a new file at `path`: a 0600 temporary file
/// of this process's own (in a 0700 directory made if missing) is written
/// and synced, then hard-linked to `path`, which fails if `path` exists,
/// then the directory is synced. `Ok(false)`: `path` appeared meanwhile
/// (another node made it) and was left alone.
pub fn write_new(path: &Path, header: &[u8], body: &[u8]) -> Result<bool, Failed> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(at(dir))?;
    // Named by process and a random number, so two nodes starting at once
    // never write into each other's temporary file.
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(
        ".new.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let tmp = dir.join(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(&tmp)(e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(header)?;
        file.write_all(body)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(at(&tmp)(e));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(at(path)(e)),
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}

/// The permission bits of a secret file found on disk if any but its
/// owner's are set (`Some(mode)`: refuse it), `None` if it is private.
#[cfg(unix)]
pub fn too_open(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// No permission bits to check off Unix.
#[cfg(not(unix))]
pub fn too_open(_meta: &fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_private_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret");
        assert!(write_new(&path, b"H", b"first").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"Hfirst");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(too_open(&meta), None);
        // A second writer finds it there and changes nothing.
        assert!(!write_new(&path, b"H", b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"Hfirst");
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert_eq!(too_open(&fs::metadata(&path).unwrap()), Some(0o640));
        }
    }
}
