//! The key-transparency record (kind `KtState`, singleton): the relay's
//! pinned directory and VRF keys and the newest head verified
//! (docs/PROTOCOL.md §12.9, §16.9).
//!
//! Must never: hold anything but public directory data.

use super::{kind, Slot};
use crate::kt::StoredKt;

kind!(
    /// The pinned keys and the newest verified head.
    KtState = KtState, StoredKt
);

/// The record's only slot.
pub(crate) fn slot() -> Slot<KtState> {
    Slot::singleton()
}
