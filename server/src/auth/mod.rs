//! Authentication: the OPAQUE ciphersuite, the relay's OPAQUE steps, one
//! connection's authentication phase, and session tokens. Nothing here
//! touches the network or the store directly.
//!
//! Must never: hold or log a password, a password-equivalent or a raw token.

pub mod key_file;
pub mod opaque;
pub mod phase;
pub mod suite;
pub mod tokens;
