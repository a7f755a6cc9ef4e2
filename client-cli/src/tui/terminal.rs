//! Owning the terminal while the chat screen runs.
//!
//! [`TerminalGuard`] switches to raw mode, the alternate screen,
//! bracketed paste (so a pasted text arrives as one paste, not as keys that
//! could press Enter) and focus reports, saves the window title (xterm's
//! title stack; terminals without one ignore it), and undoes all of it
//! when dropped. A panic hook does
//! the same before the panic message is printed, so a crash never leaves the
//! user's shell in raw mode.
//!
//! This module must never leave the terminal modified on any exit path.

use std::io::{stdout, Write as _};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, EnableBracketedPaste, EnableFocusChange,
};
use crossterm::execute;
use crossterm::terminal::SetTitle;
use ratatui::DefaultTerminal;

pub struct TerminalGuard {
    terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<Self> {
        install_paste_restoring_hook();
        // try_init installs ratatui's own hook (raw mode, alternate screen),
        // which then runs before ours.
        let terminal = ratatui::try_init()?;
        if let Err(error) = execute!(stdout(), EnableBracketedPaste, EnableFocusChange) {
            undo();
            return Err(error);
        }
        // Save the title to restore on exit; a terminal without a title
        // stack ignores the sequence.
        let _ = write_raw(PUSH_TITLE);
        Ok(Self { terminal })
    }

    /// Rings the terminal bell.
    pub fn bell(&mut self) {
        let _ = write_raw("\x07");
    }

    /// Sets the window title (only umbra's own text: see
    /// `event_loop::alerts`).
    pub fn set_title(&mut self, title: &str) {
        let _ = execute!(stdout(), SetTitle(title));
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

/// xterm's "save the window title on the stack" and "restore it".
const PUSH_TITLE: &str = "\x1b[22;0t";
const POP_TITLE: &str = "\x1b[23;0t";

fn write_raw(sequence: &str) -> std::io::Result<()> {
    let mut out = stdout();
    out.write_all(sequence.as_bytes())?;
    out.flush()
}

/// Everything [`TerminalGuard::enter`] changed, undone.
fn undo() {
    let _ = execute!(stdout(), DisableBracketedPaste, DisableFocusChange);
    let _ = write_raw(POP_TITLE);
    ratatui::restore();
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        undo();
    }
}

fn install_paste_restoring_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableBracketedPaste, DisableFocusChange);
        let _ = write_raw(POP_TITLE);
        previous(info);
    }));
}
