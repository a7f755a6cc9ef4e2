//! # umbra-relay
//!
//! The relay of umbra: OPAQUE login, the prekey directory, and
//! store-and-forward of sealed envelopes it cannot read. The binary in
//! `main.rs` is a thin shell over [`app`]; everything here is usable in
//! process, which is how the tests start a relay on `127.0.0.1:0`.
//!
//! The relay must never hold a key that opens an envelope, store or log a
//! password-equivalent or a raw token, or log who sends to whom.
#![forbid(unsafe_code)]

pub mod admission;
pub mod app;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod commands;
pub mod config;
pub mod connection;
pub mod control;
pub mod delivery;
pub mod directory;
pub mod expiry;
pub mod hub;
pub mod kt;
pub mod logging;
pub mod metrics;
pub mod rate_limit;
pub mod secret_file;
pub mod sender_budget;
pub mod serve;
pub mod shutdown;
pub mod store;
pub mod tls;
pub mod trusted_proxy;
pub mod wakeups;
