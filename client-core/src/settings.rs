//! Local privacy settings of one account: whether this client sends read
//! receipts and typing notices (both on by default, as in Signal). They
//! are stored sealed in the client store (kind `Settings`) and never sent
//! anywhere: a contact only notices that receipts or notices stop coming.
//!
//! What each switch does, and deliberately does not do:
//! - `read_receipts` off: `mark_read` (1:1 and group) still marks the
//!   messages read locally but sends no `ReadReceipt`. Delivery receipts
//!   are unchanged: they say a device stored the message, not that a
//!   person read it, and the sender's retry logic relies on them. Read
//!   receipts that contacts send us are still shown: Signal hides them
//!   for reciprocity, but hiding what we were told buys no privacy for
//!   us, so we keep the simpler rule.
//! - `typing` off: no typing notice is sent (1:1 or group), and the typing
//!   notices of others are not shown (no `Typing` / `GroupTyping` event),
//!   as in Signal: whoever does not share that they type does not see it
//!   of others.
//!
//! Must never: send a read receipt or typing notice while its switch is
//! off, or let a setting leave the device.

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::store::Txn;
use crate::{records, Error, Event};

/// What this client tells contacts about reading and typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whether `mark_read` sends read receipts.
    pub read_receipts: bool,
    /// Whether typing notices are sent, and others' are shown.
    pub typing: bool,
}

impl Default for Settings {
    /// Both on, as in Signal.
    fn default() -> Self {
        Self {
            read_receipts: true,
            typing: true,
        }
    }
}

/// The settings as stored. An enum, so its variant index is a format
/// number: postcard is not self-describing, and a later field goes into a
/// new variant instead of breaking every record already written.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredSettings {
    /// Format 0.
    V1 { read_receipts: bool, typing: bool },
}

impl From<StoredSettings> for Settings {
    fn from(stored: StoredSettings) -> Self {
        match stored {
            StoredSettings::V1 {
                read_receipts,
                typing,
            } => Self {
                read_receipts,
                typing,
            },
        }
    }
}

impl Engine {
    /// The stored settings, or the defaults when none were ever set.
    pub(crate) async fn settings(&self) -> Result<Settings, Error> {
        Ok(self
            .vault
            .load(&records::settings::slot())
            .await?
            .map(Settings::from)
            .unwrap_or_default())
    }

    /// Stores `settings` (durable on return).
    pub(crate) async fn set_settings(&self, settings: Settings) -> Result<(), Error> {
        self.check_open()?;
        let _guard = self.op_lock.lock().await;
        let mut txn = Txn::new();
        self.vault.save(
            &mut txn,
            records::settings::slot(),
            &StoredSettings::V1 {
                read_receipts: settings.read_receipts,
                typing: settings.typing,
            },
        )?;
        self.vault.commit(txn).await?;
        Ok(())
    }

    /// `events` without others' typing notices when typing is off. The
    /// store is read only when there is a notice to drop; if it cannot be
    /// read, everything is shown (a stray notice beats a lost message).
    pub(crate) async fn shown_events(&self, events: Vec<Event>) -> Vec<Event> {
        let is_typing = |e: &Event| matches!(e, Event::Typing { .. } | Event::GroupTyping { .. });
        if !events.iter().any(is_typing) {
            return events;
        }
        match self.settings().await {
            Ok(settings) if !settings.typing => {
                events.into_iter().filter(|e| !is_typing(e)).collect()
            }
            Ok(_) => events,
            Err(e) => {
                tracing::warn!(error = %crate::error::LogSafe(&e), "could not read the settings");
                events
            }
        }
    }
}
