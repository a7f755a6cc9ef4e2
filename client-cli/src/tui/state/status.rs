//! The relay link and the one-line notices: what the title and the status
//! line say about the connection, and errors or confirmations for the user.
//!
//! It must never let a later notice hide the status line of a session the
//! relay ended for good, and must never show a relay's reason except as
//! sanitised [`SafeText`].

use super::ChatState;
use crate::sanitize::SafeText;

/// Link to the relay, as shown in the title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Online,
    Offline,
    /// Another client for this account connected and the relay dropped us.
    /// No retry: the two would keep knocking each other off.
    Replaced,
    /// The relay ended the session for good (e.g. the token was revoked).
    Closed,
}

impl Connection {
    /// Whether the link is gone until the user restarts umbra.
    pub fn ended(self) -> bool {
        matches!(self, Connection::Replaced | Connection::Closed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Info,
    Error,
}

/// A one-line notice above the input (errors, confirmations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub text: SafeText,
    /// Connection notices disappear by themselves once the link is back.
    pub about_connection: bool,
}

impl ChatState {
    pub fn set_notice(&mut self, severity: Severity, text: &str) {
        self.notice = Some(Notice {
            severity,
            text: SafeText::line(text),
            about_connection: false,
        });
    }

    /// The relay ended the session for good. Unlike a notice, the status
    /// line this produces cannot be replaced by later notices: it stays until
    /// the user quits.
    pub fn connection_ended(&mut self, connection: Connection, reason: &str) {
        self.connection = connection;
        self.closed_reason = Some(SafeText::line(reason));
        if self.notice.as_ref().is_some_and(|n| n.about_connection) {
            self.notice = None;
        }
    }

    /// The status line shown while the link is gone for good, most
    /// important words first; `wide` screens get the full explanation,
    /// narrow ones a version that fits in two lines of 40 columns.
    pub fn status_line(&self, wide: bool) -> Option<String> {
        let reason = self
            .closed_reason
            .as_ref()
            .map(SafeText::as_str)
            .unwrap_or("the session ended");
        match (self.connection, wide) {
            (Connection::Replaced, true) => Some(format!(
                "⚠ DISCONNECTED: {} connected from another umbra, which gets the messages now. \
                 Nothing is sent from here. Quit (Esc) and restart to take over.",
                self.me
            )),
            (Connection::Replaced, false) => Some(
                "⚠ DISCONNECTED: another umbra took over this account. Restart to reconnect."
                    .into(),
            ),
            (Connection::Closed, true) => Some(format!(
                "⚠ DISCONNECTED by the relay: {reason}. Nothing is sent from here. \
                 Quit (Esc) and restart umbra."
            )),
            (Connection::Closed, false) => {
                Some(format!("⚠ DISCONNECTED: {reason}. Restart umbra."))
            }
            _ => None,
        }
    }

    /// The relay link changed; a problem is shown until the link is back.
    pub fn set_connection(&mut self, connection: Connection, problem: Option<&str>) {
        self.connection = connection;
        self.closed_reason = None;
        match problem {
            Some(text) => {
                self.notice = Some(Notice {
                    severity: Severity::Error,
                    text: SafeText::line(text),
                    about_connection: true,
                });
            }
            None => {
                if self.notice.as_ref().is_some_and(|n| n.about_connection) {
                    self.notice = None;
                }
            }
        }
    }
}
