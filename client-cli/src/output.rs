//! What the scriptable commands print: one [`Record`] per line, either as a
//! human-readable line or, with `--json`, as one JSON object.
//!
//! The JSON schema is documented in docs/CLI.md and is append-only: fields
//! and record types may be added, never renamed, removed or changed in
//! meaning. Timestamps are RFC 3339 in UTC.
//!
//! This module must never write untrusted text raw. Human lines pass every
//! contact-controlled string through [`SafeText`]; JSON lines keep the exact
//! text (scripts need it) but escape every control, C1 and bidi character as
//! `\uXXXX`, so even `umbra receive --json` straight to a terminal is inert.
//!
//! Split by concept: [`record`] is the schema itself, [`json`] and [`human`]
//! are its two renderings, and this file holds the [`Printer`] that picks
//! one per line.
//!
//! [`SafeText`]: crate::sanitize::SafeText

use std::io::Write;

mod group;
#[cfg(test)]
mod group_tests;
mod human;
mod json;
mod record;
#[cfg(test)]
mod tests;

pub use group::change_sentence;
pub use record::{
    time_from_unix_ms, ChangeKind, Delivery, FileRef, GroupChangeKind, GroupRef, MessageDirection,
    NameStateLabel, Record, Trust,
};

/// Prints records in the format chosen on the command line.
pub struct Printer<W: Write> {
    json: bool,
    out: W,
}

impl Printer<std::io::Stdout> {
    pub fn stdout(json: bool) -> Self {
        Self::new(json, std::io::stdout())
    }
}

impl<W: Write> Printer<W> {
    pub fn new(json: bool, out: W) -> Self {
        Self { json, out }
    }

    /// Writes one record and flushes, so a consumer reading a pipe sees each
    /// message as soon as it is printed.
    pub fn emit(&mut self, record: &Record) -> anyhow::Result<()> {
        let line = if self.json {
            record.to_json_line()?
        } else {
            record.to_human()
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
