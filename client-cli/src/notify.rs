//! Desktop notifications for messages that arrive (docs/CLI.md,
//! "Notifications"): what users of terminal chat tools expect, chosen
//! with environment variables and off unless asked for.
//!
//! - `UMBRA_NOTIFY`: `off` (the default), `osc9` (the `ESC ] 9 ; text BEL`
//!   escape iTerm2, WezTerm, kitty, Windows Terminal and others show as a
//!   desktop notification), `osc777` (`ESC ] 777 ; notify ; title ; body
//!   BEL`: foot, rxvt-unicode, VTE terminals, Ghostty), or `command` (run
//!   `UMBRA_NOTIFY_COMMAND`, e.g. `notify-send -a umbra`).
//! - `UMBRA_NOTIFY_CONTENT`: `none` (the default: "umbra: new message"),
//!   `sender` (who sent it, and the group) or `message` (also the text).
//!
//! The command is split on white space into a program and its arguments,
//! and the title and body are appended as two more arguments: it is run
//! directly, never through a shell, so no message text is ever parsed as
//! shell syntax. Escapes go to the terminal only (never into `--json`
//! output); a daemon has none, so it honours `command` alone.
//!
//! Must never: show a sender or text the user did not ask for, write a
//! control character from a contact into an escape (every text is
//! sanitised first, and `;` is kept out of OSC 777's title field), pass
//! text to a shell, or ignore a mistyped setting.

use anyhow::{bail, Context as _};

use crate::sanitize::SafeText;

/// Which notification, if any.
pub const NOTIFY_VAR: &str = "UMBRA_NOTIFY";
/// The program (and fixed arguments) `UMBRA_NOTIFY=command` runs.
pub const COMMAND_VAR: &str = "UMBRA_NOTIFY_COMMAND";
/// How much of the message a notification shows.
pub const CONTENT_VAR: &str = "UMBRA_NOTIFY_CONTENT";

/// The longest text put in a notification, in characters: a preview, not
/// the message (and a bound on what an escape carries).
const MAX_PREVIEW_CHARS: usize = 120;

/// How a notification is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    Off,
    /// OSC 9, to the terminal.
    Osc9,
    /// OSC 777 `notify`, to the terminal.
    Osc777,
    /// A program and its fixed arguments; title and body are appended.
    Command(Vec<String>),
}

/// How much a notification shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Nothing,
    Sender,
    Message,
}

/// The user's notification settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notifier {
    pub via: Via,
    pub shown: Shown,
}

/// One arrival, as the caller knows it (all untrusted).
pub struct Arrival<'a> {
    pub from: &'a str,
    pub group: Option<&'a str>,
    pub body: &'a str,
}

impl Notifier {
    /// Reads the settings from the environment; an unknown value is an
    /// error, so a typo never shows what the user meant to hide.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name| std::env::var(name).ok();
        Self::parse(
            var(NOTIFY_VAR).as_deref(),
            var(COMMAND_VAR).as_deref(),
            var(CONTENT_VAR).as_deref(),
        )
    }

    pub(crate) fn parse(
        notify: Option<&str>,
        command: Option<&str>,
        content: Option<&str>,
    ) -> anyhow::Result<Self> {
        let lower = |v: Option<&str>| v.map(|v| v.trim().to_ascii_lowercase());
        let via = match lower(notify).as_deref() {
            None | Some("" | "off" | "0" | "false" | "no") => Via::Off,
            Some("osc9") => Via::Osc9,
            Some("osc777") => Via::Osc777,
            Some("command") => {
                let argv: Vec<String> = command
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                if argv.is_empty() {
                    bail!(
                        "{NOTIFY_VAR}=command needs {COMMAND_VAR} (e.g. \"notify-send -a umbra\")"
                    );
                }
                Via::Command(argv)
            }
            Some(other) => bail!("{NOTIFY_VAR}={other:?}: use off, osc9, osc777 or command"),
        };
        let shown = match lower(content).as_deref() {
            None | Some("" | "none") => Shown::Nothing,
            Some("sender") => Shown::Sender,
            Some("message") => Shown::Message,
            Some(other) => bail!("{CONTENT_VAR}={other:?}: use none, sender or message"),
        };
        Ok(Self { via, shown })
    }

    /// Whether nothing is ever shown.
    pub fn is_off(&self) -> bool {
        self.via == Via::Off
    }

    /// The title and body of the notification for `arrival`, sanitised
    /// and cut to a preview, showing only what [`Shown`] allows.
    pub fn texts(&self, arrival: &Arrival<'_>) -> (String, String) {
        let from = preview(arrival.from);
        let place = match arrival.group {
            Some(group) => format!("{from} in {}", preview(group)),
            None => from,
        };
        match self.shown {
            Shown::Nothing => ("umbra".to_owned(), "new message".to_owned()),
            Shown::Sender => ("umbra".to_owned(), format!("new message from {place}")),
            Shown::Message => (format!("umbra: {place}"), preview(arrival.body)),
        }
    }

    /// The escape to write to the terminal for `arrival`, for the escape
    /// modes; `None` otherwise.
    pub fn escape(&self, arrival: &Arrival<'_>) -> Option<String> {
        let (title, body) = self.texts(arrival);
        match self.via {
            Via::Osc9 => Some(format!("\x1b]9;{title}: {body}\x07")),
            // The title is a field between `;`s: none may be in it.
            Via::Osc777 => Some(format!(
                "\x1b]777;notify;{};{body}\x07",
                title.replace(';', ",")
            )),
            Via::Off | Via::Command(_) => None,
        }
    }

    /// For the command mode, starts the command for `arrival` (not
    /// waited for: a slow notifier never holds up chat); a failure to
    /// start it is the error.
    pub fn run_command(&self, arrival: &Arrival<'_>) -> anyhow::Result<()> {
        let Via::Command(argv) = &self.via else {
            return Ok(());
        };
        let (title, body) = self.texts(arrival);
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .arg(title)
            .arg(body)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("running {COMMAND_VAR} ({})", argv[0]))?;
        // Reaped when it ends, so a long-running daemon keeps no zombies.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// Notifies of `arrival` by the configured means: an escape to
    /// `terminal` (when there is one) or the command. Best effort: a
    /// failure is logged, never the caller's error.
    pub fn notify(&self, arrival: &Arrival<'_>, terminal: Option<&mut dyn std::io::Write>) {
        if self.is_off() {
            return;
        }
        if let (Some(escape), Some(terminal)) = (self.escape(arrival), terminal) {
            let _ = terminal
                .write_all(escape.as_bytes())
                .and_then(|()| terminal.flush());
            return;
        }
        if let Err(error) = self.run_command(arrival) {
            tracing::warn!("notification not shown: {error:#}");
        }
    }
}

impl Notifier {
    /// [`Notifier::notify`] for a client event, if it is an arriving
    /// message (1:1 or group); nothing for any other event.
    pub fn notify_event(
        &self,
        event: &umbra_client_core::Event,
        terminal: Option<&mut dyn std::io::Write>,
    ) {
        use umbra_client_core::Event;
        let arrival = match event {
            Event::Message { from, body, .. } => Arrival {
                from,
                group: None,
                body,
            },
            Event::GroupMessage {
                from,
                group_name,
                body,
                ..
            } => Arrival {
                from,
                group: Some(group_name),
                body,
            },
            _ => return,
        };
        self.notify(&arrival, terminal);
    }
}

/// `text` sanitised for one line and cut to [`MAX_PREVIEW_CHARS`].
fn preview(text: &str) -> String {
    let clean = SafeText::line(text).to_string();
    let mut cut: String = clean.chars().take(MAX_PREVIEW_CHARS).collect();
    if cut.len() < clean.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests;
