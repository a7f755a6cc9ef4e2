//! One module per group of subcommands. Each command takes the resolved
//! [`Session`](crate::session::Session), talks to client-core, prints
//! [`Record`](crate::output::Record)s and returns the exit status it earned.

pub mod about;
pub mod account;
pub mod block;
pub mod contacts;
pub mod daemon;
pub mod delete_conversation;
pub mod devices;
pub mod directory;
pub mod disappearing;
pub mod file;
pub mod follow;
pub mod group;
pub mod link;
pub mod password;
pub mod receive;
pub mod search;
pub mod send;
pub mod settings;
pub mod verify;
