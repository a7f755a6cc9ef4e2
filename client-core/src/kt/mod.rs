//! Key transparency, the client side (docs/PROTOCOL.md §16.9): the relay's
//! pinned directory and VRF keys, the newest head this client verified and
//! the check that every later head extends it, and the check that what the
//! directory proves for an account is what the relay served.
//!
//! Must never: accept a head that does not verify under the pinned
//! directory key or does not extend the remembered one, replace a pinned
//! key silently, or report a directory value as checked before every proof
//! of §16 passed.

mod failure;
mod head;
mod lookup;
mod monitor;
mod pins;

#[cfg(test)]
mod tests;

pub use failure::KtFailure;
pub use head::DirectoryRoot;
pub(crate) use lookup::Served;
pub use pins::KtPins;
pub(crate) use pins::StoredKt;
