//! The `umbra chat` terminal user interface.
//!
//! Split so the screen is testable without a terminal: [`state`] is the
//! view-model, [`render`] draws it, [`event_loop`] feeds keyboard input and
//! client-core events into it and carries out the resulting actions over a
//! [`backend`] (the local client, or a running daemon), and
//! [`terminal`] owns raw mode and restores the terminal on every exit path,
//! panics included.

pub mod backend;
pub mod event_loop;
pub mod render;
#[cfg(test)]
mod render_about_tests;
#[cfg(test)]
mod render_conversation_tests;
#[cfg(test)]
mod render_group_tests;
#[cfg(test)]
mod render_input_tests;
#[cfg(test)]
mod render_scroll_tests;
#[cfg(test)]
mod render_search_tests;
#[cfg(test)]
mod render_test_support;
#[cfg(test)]
mod render_tests;
pub mod state;
pub mod terminal;

pub use event_loop::{run, run_through_daemon};
