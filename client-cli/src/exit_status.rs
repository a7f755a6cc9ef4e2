//! The process exit statuses of `umbra`, and how a failure maps onto one.
//!
//! Scripts branch on these numbers, so they are part of the stable surface
//! (docs/CLI.md): a value is never reused for a different meaning, and new
//! kinds of failure get new numbers. This module must never print anything;
//! `main` owns the single error line on stderr.

use std::fmt;

/// Why `umbra` exited. The discriminant is the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The command did what was asked.
    Success = 0,
    /// The request itself was wrong: unknown contact, bad safety number,
    /// not registered, empty message, passwords that do not match.
    UserError = 1,
    /// The command line did not parse (clap's own code).
    Usage = 2,
    /// The relay could not be reached, or answered with something unusable.
    Network = 3,
    /// A contact's identity key is untrusted or has changed and has not been
    /// accepted; nothing was sent.
    UntrustedKey = 4,
    /// The relay refused because of a rate limit; retry later.
    RateLimited = 5,
    /// Wrong username or password, or the session is no longer valid.
    AuthFailed = 6,
    /// The local data directory or store could not be used.
    LocalData = 7,
    /// A bug or an unexpected condition in umbra itself.
    Internal = 70,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// An error that already knows which exit status it deserves.
///
/// Commands raise this for failures they detect themselves; failures coming
/// from client-core are classified by `classify` instead.
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    message: String,
}

impl Failure {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::UserError, message)
    }

    pub fn local(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::LocalData, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The cause chain joined with ": ", leaving out a cause whose text the
/// line already ends with: an error that shows its source in its own
/// message (thiserror's `"...: {0}"` with `#[from]`) would otherwise print
/// the same words twice.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Finds the exit status for an error: the outermost [`Failure`] in the
/// chain wins, then a client-core error, then I/O errors count as local.
pub fn classify(error: &anyhow::Error) -> ExitStatus {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.status;
        }
        if let Some(status) = crate::core_errors::status_of(cause) {
            return status;
        }
    }
    for cause in error.chain() {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return ExitStatus::LocalData;
        }
    }
    ExitStatus::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_are_distinct_and_stable() {
        let all = [
            (ExitStatus::Success, 0),
            (ExitStatus::UserError, 1),
            (ExitStatus::Usage, 2),
            (ExitStatus::Network, 3),
            (ExitStatus::UntrustedKey, 4),
            (ExitStatus::RateLimited, 5),
            (ExitStatus::AuthFailed, 6),
            (ExitStatus::LocalData, 7),
            (ExitStatus::Internal, 70),
        ];
        for (status, code) in all {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }

    #[test]
    fn failure_status_survives_added_context() {
        let err = anyhow::Error::new(Failure::new(ExitStatus::RateLimited, "slow down"))
            .context("while sending");
        assert_eq!(classify(&err), ExitStatus::RateLimited);
    }

    #[test]
    fn io_errors_are_local_data_failures() {
        let err: anyhow::Result<()> = Err(std::io::Error::other("disk full")).context("writing");
        assert_eq!(classify(&err.unwrap_err()), ExitStatus::LocalData);
    }

    #[test]
    fn unknown_errors_are_internal() {
        assert_eq!(classify(&anyhow::anyhow!("mystery")), ExitStatus::Internal);
    }
}
