//! The chat loop's `/file` and `/save`: each transfer runs as a task whose
//! progress comes back as completions (at most one per percent, so a large
//! file cannot flood the loop) and is shown in the notice line.
//!
//! Must never: block the loop on a transfer, or report a file as sent or
//! saved before the backend said so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use umbra_client_core::Progress;

use super::Completion;
use crate::tui::backend::Backend;
use crate::tui::state::FileView;

/// `~` or `~/…` as the home directory, as a shell would have done for
/// the same path typed after `umbra file`; anything else as typed.
fn expand_home(path: PathBuf, home: Option<&std::ffi::OsStr>) -> PathBuf {
    let (Some(home), Ok(rest)) = (home, path.strip_prefix("~")) else {
        return path;
    };
    PathBuf::from(home).join(rest)
}

/// A progress callback that reports each new percent of `what`.
fn reporter(
    what: String,
    done: mpsc::UnboundedSender<Completion>,
) -> impl Fn(Progress) + Send + Sync {
    let last = AtomicU64::new(u64::MAX);
    move |p: Progress| {
        let percent = p.done.saturating_mul(100) / p.total.max(1);
        if last.swap(percent, Ordering::Relaxed) != percent {
            let _ = done.send(Completion::Progress {
                what: what.clone(),
                done: p.done,
                total: p.total,
            });
        }
    }
}

/// Sends the file at `path` to `to`; the message typed as `local_id`
/// becomes the file's message, or shows why it failed.
pub(super) async fn send(
    backend: Backend,
    to: String,
    local_id: String,
    path: PathBuf,
    done: mpsc::UnboundedSender<Completion>,
) {
    let path = expand_home(path, std::env::var_os("HOME").as_deref());
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let progress = reporter(format!("sending {name}"), done.clone());
    let report = match backend.send_file(&to, &path, &progress).await {
        Ok((id, file)) => Completion::FileSent {
            to,
            local_id,
            id,
            file: FileView::new(&file.id, &file.name, file.size),
        },
        Err(reason) => Completion::SendFailed {
            to,
            local_id,
            reason,
        },
    };
    let _ = done.send(report);
}

/// Saves file `id` (shown as `name`) into `dest`.
pub(super) async fn save(
    backend: Backend,
    id: String,
    name: String,
    dest: Option<PathBuf>,
    done: mpsc::UnboundedSender<Completion>,
) {
    let home = std::env::var_os("HOME");
    let dest = dest.map(|d| expand_home(d, home.as_deref()));
    let progress = reporter(format!("saving {name}"), done.clone());
    let report = match backend.save_file(&id, dest.as_deref(), &progress).await {
        Ok(path) => Completion::Info(format!("saved {name} as {path}")),
        Err(reason) => Completion::Problem(format!("{name} was not saved: {reason}")),
    };
    let _ = done.send(report);
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::PathBuf;

    use super::expand_home;

    #[test]
    fn a_leading_tilde_is_the_home_directory_and_nothing_else_is() {
        let home = Some(OsStr::new("/home/alice"));
        let expand = |p: &str| expand_home(PathBuf::from(p), home);
        assert_eq!(
            expand("~/Downloads/"),
            PathBuf::from("/home/alice/Downloads")
        );
        assert_eq!(expand("~"), PathBuf::from("/home/alice"));
        assert_eq!(expand("a/~/b"), PathBuf::from("a/~/b"));
        assert_eq!(expand("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(
            expand_home(PathBuf::from("~/x"), None),
            PathBuf::from("~/x")
        );
    }
}
