//! The settings record (kind `Settings`, singleton): this account's local
//! choices about what the client tells contacts (docs/PROTOCOL.md §12.9).
//!
//! Must never: hold anything but local preferences (no key, no name).

use super::{kind, Slot};
use crate::settings::StoredSettings;

kind!(
    /// Whether read receipts and typing notices are on.
    Settings = Settings, StoredSettings
);

/// The settings' only slot.
pub(crate) fn slot() -> Slot<Settings> {
    Slot::singleton()
}
