//! Build-time only: depending on this crate makes cargo compile umbra's shared
//! dependencies with one feature set, whichever umbra package is being built,
//! so `cargo build -p umbra-relay`, `cargo build -p umbra-cli` and
//! `cargo test --workspace` reuse each other's artifacts instead of rebuilding
//! about 150 crates each (see this crate's Cargo.toml and `unify.py`).
//!
//! Must never: contain code, or be a normal dependency of a library crate that
//! is published (the library crates only dev-depend on it).
