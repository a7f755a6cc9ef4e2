//! Finding and preparing the directory where the client keeps its state.
//!
//! Order: `--data-dir`, then `UMBRA_DATA_DIR` (clap folds both into one
//! option), then the platform data directory (`~/.local/share/umbra` under
//! XDG). The directory is created 0700 and tightened to 0700 if it already
//! exists with looser permissions; the process umask is set to 077 so that
//! every file written inside it — the store, its journal and WAL files — is
//! 0600 whoever creates it.
//!
//! This module must never loosen permissions, never follow a symlink out of
//! an existing data directory when fixing modes, and never create files itself.

use std::path::{Path, PathBuf};

use crate::exit_status::Failure;

/// Resolves the data directory: an explicit path, else the platform default.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    directories::ProjectDirs::from("", "", "umbra")
        .map(|dirs| dirs.data_dir().to_owned())
        .ok_or_else(|| {
            Failure::local(
                "cannot find a home directory for the default data directory; pass --data-dir",
            )
        })
}

/// Makes files and directories created from now on private to this user.
#[cfg(unix)]
pub fn restrict_new_files() {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

#[cfg(not(unix))]
pub fn restrict_new_files() {}

/// Creates `dir` (and missing parents) and ensures it is 0700.
pub fn prepare(dir: &Path) -> Result<(), Failure> {
    create_private(dir).map_err(|e| {
        Failure::local(format!(
            "cannot prepare data directory {}: {e}",
            dir.display()
        ))
    })
}

#[cfg(unix)]
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // symlink_metadata: a symlinked data dir is the user's choice; its target's
    // mode is theirs to manage, so only a real directory is tightened.
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn explicit_directory_is_used_verbatim() {
        assert_eq!(
            resolve(Some(Path::new("/srv/umbra"))).unwrap(),
            PathBuf::from("/srv/umbra")
        );
    }

    #[test]
    fn new_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("umbra");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn existing_loose_directory_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("umbra");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_file_in_the_way_is_a_local_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("umbra");
        std::fs::write(&file, b"x").unwrap();
        let err = prepare(&file).unwrap_err();
        assert_eq!(err.status, crate::exit_status::ExitStatus::LocalData);
        assert!(err.to_string().contains("umbra"));
    }
}
