//! Owning the terminal while the chat screen runs.
//!
//! [`TerminalGuard`] switches to raw mode, the alternate screen and
//! bracketed paste (so a pasted text arrives as one paste, not as keys that
//! could press Enter), and undoes all of it when dropped. A panic hook does
//! the same before the panic message is printed, so a crash never leaves the
//! user's shell in raw mode.
//!
//! This module must never leave the terminal modified on any exit path.

use std::io::stdout;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
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
        if let Err(error) = execute!(stdout(), EnableBracketedPaste) {
            ratatui::restore();
            return Err(error);
        }
        Ok(Self { terminal })
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableBracketedPaste);
        ratatui::restore();
    }
}

fn install_paste_restoring_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableBracketedPaste);
        previous(info);
    }));
}
