//! Key transparency, the relay side (docs/PROTOCOL.md 16; the sans-IO core
//! is `umbra_wire::kt`): the directory and VRF keys (`key_file`), each
//! node's in-memory directory and the epoch seal (`directory`), the
//! publisher task (`publisher`) and the auditor of a stored history
//! (`audit`, `umbra-relay audit`). The tables are the store's `KtStore` role;
//! every change a directory commits to marks its labels in the change's
//! own transaction.
//!
//! Must never: log or print a secret key, serve what the database has not
//! committed, or publish two epochs with one number (PostgreSQL nodes take
//! the publisher row's lock).

pub mod audit;
pub mod directory;
pub mod key_file;
pub mod publisher;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_audit;

pub use directory::{HeadAnswer, KtDirectory, Round};
pub use key_file::{KtKeyFileError, KtKeys};
