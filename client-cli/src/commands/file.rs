//! `file send USERNAME PATH` and `file get ID [PATH]`: a file encrypted
//! into a blob on the relay and its pointer sent in a message; and the
//! reverse, verified before anything is saved.
//!
//! A progress bar is drawn on standard error when it is a terminal, never
//! when piped (a script sees only the records on standard output).
//!
//! Must never: save a file under a name from another user that
//! client-core did not sanitise, print a file key, or leave a partial file
//! at the destination (client-core moves the file into place only once it
//! verified).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, Error, FileInfo, Progress};
use umbra_protocol::wire::Username;

use crate::commands::send::{wait_for_outcome, Outcome};
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{FileRef, Record};
use crate::session::Session;

/// A progress bar on a terminal; nothing otherwise.
pub(crate) struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub(crate) fn new(what: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(crate::sanitize::SafeText::line(what).to_string());
        Self(Some(bar))
    }

    pub(crate) fn update(&self, progress: Progress) {
        if let Some(bar) = &self.0 {
            bar.set_length(progress.total);
            bar.set_position(progress.done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The path as the daemon (another working directory) must see it.
pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Whom `file send` sends to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum To<'a> {
    /// A contact, by username.
    User(&'a str),
    /// A group, by name or id (`--group`).
    Group(&'a str),
}

impl<'a> To<'a> {
    pub(crate) fn new(name: &'a str, group: bool) -> Self {
        if group {
            To::Group(name)
        } else {
            To::User(name)
        }
    }
}

pub async fn send(
    session: &Session,
    to: To<'_>,
    path: &Path,
    name: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let bar = Bar::new("sending");
    let progress = |p| bar.update(p);
    let mut printer = session.printer();
    let result = match to {
        To::User(to) => match send_with(&client, to, path, name, timeout, &progress).await {
            Ok((record, status)) => printer.emit(&record).map(|()| status),
            Err(e) => Err(e),
        },
        To::Group(group) => {
            let file = (path, name);
            send_to_group(&client, &mut printer, group, file, timeout, &progress).await
        }
    };
    bar.finish();
    client.shutdown().await;
    result
}

/// Uploads once and sends the pointer to every member of `group`, then
/// waits for the relay as `group send` does: a `send_failed` record per
/// member not reached (exit status 3), else `file_sent`.
pub(crate) async fn send_to_group<W: std::io::Write>(
    client: &Client,
    printer: &mut crate::output::Printer<W>,
    group: &str,
    (path, name): (&Path, Option<&str>),
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> anyhow::Result<ExitStatus> {
    let send = |id| async move { client.send_group_file(&id, path, name, progress).await };
    let sent = |found: crate::commands::group::Found, id, file: FileInfo| Record::FileSent {
        to: found.summary.name.clone(),
        id,
        file: FileRef::from(&file),
        sent_at: time::OffsetDateTime::now_utc(),
        group: Some(found.reference),
    };
    crate::commands::group::send::post_as(client, printer, group, timeout, send, sent)
        .await
        .with_context(|| format!("sending {}", path.display()))
}

/// Uploads and sends, then waits for the relay to accept the message:
/// the record to print and the status (an error for a refusal).
pub(crate) async fn send_with(
    client: &Client,
    to: &str,
    path: &Path,
    name: Option<&str>,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> anyhow::Result<(Record, ExitStatus)> {
    let recipient = Username::parse(to)
        .map_err(Error::from)
        .with_context(|| format!("sending a file to {to}"))?;
    // Subscribe first so the outcome cannot slip past.
    let events = client.events();
    let (id, info) = client
        .send_file(&recipient, path, name, progress)
        .await
        .with_context(|| format!("sending {} to {to}", path.display()))?;
    let sending = wait_for_outcome(client, events, to, id, timeout).await?;
    match sending.outcome {
        Outcome::Accepted => Ok((
            Record::FileSent {
                to: to.to_owned(),
                id: id.to_hex(),
                file: FileRef::from(&info),
                sent_at: time::OffsetDateTime::now_utc(),
                group: None,
            },
            ExitStatus::Success,
        )),
        Outcome::Refused(reason) => Err(Failure::new(
            ExitStatus::Network,
            format!("the relay refused the file message to {to}: {reason}"),
        )
        .into()),
    }
}

pub async fn get(session: &Session, id: &str, dest: Option<&Path>) -> anyhow::Result<ExitStatus> {
    // Ctrl-C or SIGTERM ends the fetch by dropping it, so client-core
    // removes its temporary file (only a named one exists: on Linux it is
    // unnamed and vanishes with the process anyway). Registered before the
    // client opens, as in `send`, so no signal kills us without that.
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let client = session.open_client().await?;
    let bar = Bar::new("fetching");
    let progress = |p| bar.update(p);
    let result = tokio::select! {
        result = get_with(&client, id, dest, &progress) => result,
        _ = interrupt.recv() => Err(Failure::user(format!(
            "interrupted: file {id} was not saved")).into()),
        _ = terminate.recv() => Err(Failure::user(format!(
            "terminated: file {id} was not saved")).into()),
    };
    bar.finish();
    client.shutdown().await;
    session.printer().emit(&result?)?;
    Ok(ExitStatus::Success)
}

/// Downloads, verifies and saves file `id`: the record to print.
pub(crate) async fn get_with(
    client: &Client,
    id: &str,
    dest: Option<&Path>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> anyhow::Result<Record> {
    let (path, info): (PathBuf, FileInfo) = client
        .fetch_file(id, dest, progress)
        .await
        .with_context(|| format!("fetching file {id}"))?;
    Ok(Record::FileSaved {
        file: FileRef::from(&info),
        path: path.display().to_string(),
    })
}
