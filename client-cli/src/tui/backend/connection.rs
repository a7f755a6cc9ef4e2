//! The relay connection as the chat shows it: client-core's typed
//! [`ConnectionState`] in words, or the words a daemon sent for it (its
//! `connection` answer and event, docs/CLI.md), so both backends draw the
//! status line one way.
//!
//! Must never: show a reason anywhere but through the state's sanitising
//! paths (a daemon's and a relay's words are untrusted).

use std::time::Duration;

use serde_json::Value;
use umbra_client_core::ConnectionState;

/// The connection state with its reason as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionView {
    Offline,
    Connecting,
    Connected,
    Reconnecting { retry_in: Duration, reason: String },
    Closed { reason: String },
    Replaced,
}

impl From<&ConnectionState> for ConnectionView {
    fn from(state: &ConnectionState) -> Self {
        match state {
            ConnectionState::Offline => ConnectionView::Offline,
            ConnectionState::Connecting => ConnectionView::Connecting,
            ConnectionState::Connected => ConnectionView::Connected,
            ConnectionState::Reconnecting { retry_in, cause } => ConnectionView::Reconnecting {
                retry_in: *retry_in,
                reason: cause.to_string(),
            },
            ConnectionState::Closed { reason } => ConnectionView::Closed {
                reason: reason.to_string(),
            },
            ConnectionState::Replaced => ConnectionView::Replaced,
        }
    }
}

/// The `connection` method's answer or event; `None` for a state this
/// umbra does not know.
pub fn connection_view(value: &Value) -> Option<ConnectionView> {
    let reason = || value["reason"].as_str().unwrap_or_default().to_owned();
    Some(match value["state"].as_str()? {
        "offline" => ConnectionView::Offline,
        "connecting" => ConnectionView::Connecting,
        "connected" => ConnectionView::Connected,
        "reconnecting" => ConnectionView::Reconnecting {
            retry_in: Duration::from_secs(value["retry_in"].as_u64().unwrap_or(0)),
            reason: reason(),
        },
        "closed" => ConnectionView::Closed { reason: reason() },
        "replaced" => ConnectionView::Replaced,
        _ => return None,
    })
}
