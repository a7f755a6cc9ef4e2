//! Where the account password comes from, and keeping it out of sight.
//!
//! Sources, first match wins (documented in docs/CLI.md):
//! 1. `--password-command CMD`: run `sh -c CMD`, use its standard output
//!    (for password managers: `pass show umbra`);
//! 2. the file named by `UMBRA_PASSWORD_FILE`;
//! 3. a prompt without echo on the controlling terminal, when stdin is one.
//!
//! Explicit configuration beats the prompt so that scripts run from a
//! terminal behave the same as in cron. Exactly one trailing line break is
//! removed from command output and file contents.
//!
//! This module must never accept the password as a command-line value (it
//! would land in shell history and `ps`), never log or print it, and never
//! hold it outside a `Zeroizing` buffer.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::exit_status::{ExitStatus, Failure};

/// The environment variable naming a file that holds the password.
pub const PASSWORD_FILE_ENV: &str = "UMBRA_PASSWORD_FILE";

/// A password held in memory that is wiped when dropped.
pub type Password = Zeroizing<String>;

/// Where to obtain the password for this run.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Command(String),
    File(PathBuf),
    Terminal,
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The command line may embed a secret by mistake (`echo hunter2`);
        // never echo it back.
        match self {
            Self::Command(_) => f.write_str("Command(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Terminal => f.write_str("Terminal"),
        }
    }
}

/// Whether a new password is being chosen (asked twice on a terminal) or an
/// existing one entered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Purpose {
    Existing,
    New,
}

impl PasswordSource {
    /// Picks the source from the flag, the environment and whether stdin is
    /// a terminal.
    pub fn choose(
        command: Option<&str>,
        file_from_env: Option<PathBuf>,
        stdin_is_terminal: bool,
    ) -> Result<Self, Failure> {
        if let Some(command) = command {
            return Ok(Self::Command(command.to_owned()));
        }
        if let Some(path) = file_from_env.filter(|p| !p.as_os_str().is_empty()) {
            return Ok(Self::File(path));
        }
        if stdin_is_terminal {
            return Ok(Self::Terminal);
        }
        Err(Failure::user(format!(
            "no password source: stdin is not a terminal; set {PASSWORD_FILE_ENV} or pass --password-command"
        )))
    }

    /// The source for this process, from its real environment.
    pub fn from_environment(command: Option<&str>) -> Result<Self, Failure> {
        Self::choose(
            command,
            std::env::var_os(PASSWORD_FILE_ENV).map(PathBuf::from),
            std::io::stdin().is_terminal(),
        )
    }

    /// Obtains the password; `label` names what it is for in the prompt
    /// (a username, or the data directory). An empty password is refused.
    pub fn read(&self, label: &str, purpose: Purpose) -> Result<Password, Failure> {
        let password = match self {
            Self::Command(command) => from_command(command)?,
            Self::File(path) => from_file(path)?,
            Self::Terminal => from_terminal(label, purpose)?,
        };
        if password.is_empty() {
            return Err(Failure::user("the password is empty"));
        }
        Ok(password)
    }
}

fn from_command(command: &str) -> Result<Password, Failure> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::user(format!("could not run --password-command: {e}")))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(Failure::user(format!(
            "--password-command failed ({})",
            output.status
        )));
    }
    password_from_bytes(&stdout, "--password-command output")
}

fn from_file(path: &Path) -> Result<Password, Failure> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        Failure::user(format!(
            "cannot open {PASSWORD_FILE_ENV} file {}: {e}",
            path.display()
        ))
    })?;
    warn_if_readable_by_others(&file, path);
    let bytes = read_bounded(&mut file).map_err(|e| {
        Failure::user(format!(
            "cannot read {PASSWORD_FILE_ENV} file {}: {e}",
            path.display()
        ))
    })?;
    password_from_bytes(&bytes, "the password file")
}

/// The longest password input read from a file or standard input, line
/// break included. Far above any password a person types or a manager
/// generates; the bound is what lets the buffer be allocated once.
const MAX_PASSWORD_INPUT: usize = 4096;

/// Reads all of `reader` into one zeroizing buffer allocated up front.
/// `read_to_end` would grow (reallocate) the buffer and free the old copies
/// unwiped, and starts with a small probe read on the stack; reading into
/// fixed storage leaves exactly one copy, wiped on drop. Longer input is
/// refused, not cut.
fn read_bounded(reader: &mut impl Read) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSWORD_INPUT + 1]);
    let mut len = 0;
    loop {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len > MAX_PASSWORD_INPUT {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("longer than {MAX_PASSWORD_INPUT} bytes"),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Shrinking the length keeps the allocation: nothing is copied.
    buf.truncate(len);
    Ok(buf)
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &std::fs::File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} is accessible by other users; chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &std::fs::File, _: &Path) {}

/// The password written to standard input by whoever started this process
/// (`umbra daemon --password-stdin`, as `--agent-ttl` starts it): read to
/// the end, one trailing line break removed; empty is refused.
pub fn from_stdin() -> Result<Password, Failure> {
    let bytes = read_bounded(&mut std::io::stdin().lock())
        .map_err(|e| Failure::user(format!("cannot read the password from standard input: {e}")))?;
    let password = password_from_bytes(&bytes, "the password on standard input")?;
    if password.is_empty() {
        return Err(Failure::user("the password on standard input is empty"));
    }
    Ok(password)
}

/// Decodes UTF-8 and removes one trailing `\n` or `\r\n`, copying only into
/// zeroizing storage.
fn password_from_bytes(bytes: &[u8], what: &str) -> Result<Password, Failure> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Failure::user(format!("{what} is not valid UTF-8")))?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let mut password = Zeroizing::new(String::with_capacity(trimmed.len()));
    password.push_str(trimmed);
    Ok(password)
}

fn from_terminal(label: &str, purpose: Purpose) -> Result<Password, Failure> {
    let prompt = |text: &str| -> Result<Password, Failure> {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|e| Failure::user(format!("could not read the password: {e}")))
    };
    let label = crate::sanitize::SafeText::line(label);
    let first = prompt(&format!("Password for {label}: "))?;
    if purpose == Purpose::New {
        let second = prompt("Repeat the password: ")?;
        // Both values are the user's own typing, not a secret compared
        // against a stored one, so a timing difference reveals nothing.
        if *first != *second {
            return Err(Failure::new(
                ExitStatus::UserError,
                "the passwords do not match",
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A reader that hands out at most `step` bytes a call, as a pipe does.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn password_input_is_read_whole_into_one_buffer_and_bounded() {
        let exact = vec![b'x'; MAX_PASSWORD_INPUT];
        let mut pipe = Trickle {
            data: &exact,
            step: 7,
        };
        let read = read_bounded(&mut pipe).expect("at the bound");
        assert_eq!(read.as_slice(), exact.as_slice());
        assert_eq!(read.capacity(), MAX_PASSWORD_INPUT + 1, "never reallocated");

        let over = vec![b'x'; MAX_PASSWORD_INPUT + 1];
        let mut pipe = Trickle {
            data: &over,
            step: 1000,
        };
        let err = read_bounded(&mut pipe).expect_err("one byte over");
        assert!(err.to_string().contains("longer than 4096 bytes"), "{err}");
    }

    #[test]
    fn command_flag_wins_over_file_and_terminal() {
        let source =
            PasswordSource::choose(Some("pass show umbra"), Some("/tmp/pw".into()), true).unwrap();
        assert_eq!(source, PasswordSource::Command("pass show umbra".into()));
    }

    #[test]
    fn file_wins_over_terminal() {
        let source = PasswordSource::choose(None, Some("/tmp/pw".into()), true).unwrap();
        assert_eq!(source, PasswordSource::File("/tmp/pw".into()));
    }

    #[test]
    fn terminal_is_the_fallback() {
        assert_eq!(
            PasswordSource::choose(None, None, true).unwrap(),
            PasswordSource::Terminal
        );
        assert_eq!(
            PasswordSource::choose(None, Some(PathBuf::new()), true).unwrap(),
            PasswordSource::Terminal
        );
    }

    #[test]
    fn no_terminal_and_no_configuration_is_a_user_error() {
        let err = PasswordSource::choose(None, None, false).unwrap_err();
        assert_eq!(err.status, ExitStatus::UserError);
        assert!(err.to_string().contains(PASSWORD_FILE_ENV));
    }

    #[test]
    fn command_output_loses_exactly_one_line_break() {
        let source = PasswordSource::Command("printf 'hunter2\\n\\n'".into());
        assert_eq!(
            source.read("alice", Purpose::Existing).unwrap().as_str(),
            "hunter2\n"
        );
        let source = PasswordSource::Command("printf 'pw with spaces \\r\\n'".into());
        assert_eq!(
            source.read("alice", Purpose::Existing).unwrap().as_str(),
            "pw with spaces "
        );
    }

    #[test]
    fn failing_command_is_an_error_without_the_command_text() {
        let source = PasswordSource::Command("exit 3".into());
        let err = source.read("alice", Purpose::Existing).unwrap_err();
        assert_eq!(err.status, ExitStatus::UserError);
        assert!(!format!("{source:?}").contains("exit 3"));
    }

    #[test]
    fn file_is_read_and_trimmed() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"correct horse\n").unwrap();
        let source = PasswordSource::File(file.path().to_owned());
        assert_eq!(
            source.read("alice", Purpose::New).unwrap().as_str(),
            "correct horse"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let source = PasswordSource::File("/nonexistent/umbra-pw".into());
        let err = source.read("alice", Purpose::Existing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/umbra-pw"));
    }

    #[test]
    fn empty_and_non_utf8_passwords_are_refused() {
        let mut empty = tempfile::NamedTempFile::new().unwrap();
        empty.write_all(b"\n").unwrap();
        let err = PasswordSource::File(empty.path().to_owned())
            .read("alice", Purpose::Existing)
            .unwrap_err();
        assert!(err.to_string().contains("empty"));

        let mut binary = tempfile::NamedTempFile::new().unwrap();
        binary.write_all(&[0xff, 0xfe]).unwrap();
        let err = PasswordSource::File(binary.path().to_owned())
            .read("alice", Purpose::Existing)
            .unwrap_err();
        assert!(err.to_string().contains("UTF-8"));
    }
}
