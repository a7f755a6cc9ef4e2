//! What every render test needs: the fixed clock its screens are drawn at,
//! a state drawn into an in-memory terminal, and the drawn text read back.
//!
//! Test-only; it must never depend on a real terminal or the wall clock,
//! so every snapshot is the same on every machine.

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::tui::render::render;
use crate::tui::state::ChatState;

/// The moment every test screen is drawn at.
pub const NOW: OffsetDateTime = datetime!(2026-11-23 14:05 UTC);

/// `state` drawn once at `width` x `height`.
pub fn draw(state: &ChatState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(frame, state)).unwrap();
    terminal
}

/// Everything drawn, cell by cell.
pub fn screen_text(terminal: &Terminal<TestBackend>) -> String {
    terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|cell| cell.symbol())
        .collect()
}

/// The text of screen row `y`.
pub fn row(terminal: &Terminal<TestBackend>, y: u16) -> String {
    let width = terminal.backend().buffer().area.width;
    (0..width)
        .map(|x| terminal.backend().buffer()[(x, y)].symbol().to_owned())
        .collect()
}
