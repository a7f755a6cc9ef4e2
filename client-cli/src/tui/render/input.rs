//! The input box: the draft (several lines when it has line breaks, up to
//! [`MAX_INPUT_ROWS`]), scrolled so the cursor is always inside it, and the
//! terminal cursor placed where the next character goes.
//!
//! It must never draw the draft anywhere but inside the box, and never
//! place the cursor outside it.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::tui::state::{ChatState, Conversation};

/// The box grows with the draft's lines up to this many, then scrolls.
pub(super) const MAX_INPUT_ROWS: usize = 4;

/// Height of the box, borders included.
pub(super) fn input_height(state: &ChatState) -> u16 {
    let rows = state
        .input
        .text()
        .split('\n')
        .count()
        .clamp(1, MAX_INPUT_ROWS);
    u16::try_from(rows + 2).unwrap_or(3)
}

pub(super) fn render_input(frame: &mut Frame, area: Rect, state: &ChatState) {
    let open = state.open();
    let blocked = open.is_some_and(Conversation::sending_blocked);
    let (title, border) = match open {
        Some(c) if c.group.as_ref().is_some_and(|g| !g.active) => (
            format!(" {}: you are no longer a member ", c.display),
            Style::new().fg(Color::Red).bold(),
        ),
        Some(c) if c.group.is_some() => (format!(" to {} (group) ", c.display), Style::new()),
        Some(c) if blocked => (
            format!(" to {}: BLOCKED (key changed) ", c.display),
            Style::new().fg(Color::Red).bold(),
        ),
        Some(c) => (format!(" to {} ", c.display), Style::new()),
        None => (" /open USERNAME ".to_owned(), Style::new()),
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(border)
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }

    let text = state.input.text();
    let (cursor_row, cursor_byte) = state.input.cursor_line();
    let lines: Vec<&str> = text.split('\n').collect();
    let rows = usize::from(inner.height);
    let top = (cursor_row + 1).saturating_sub(rows);
    let width = usize::from(inner.width);
    let cursor_line = lines.get(cursor_row).copied().unwrap_or_default();
    let cursor_col = width_of(cursor_line.get(..cursor_byte).unwrap_or_default());
    // One cell stays free for the cursor after the last character; the
    // same horizontal offset applies to every line, as in an editor.
    let offset = (cursor_col + 1).saturating_sub(width);

    let shown: Vec<Line> = lines
        .iter()
        .skip(top)
        .take(rows)
        .map(|line| Line::from(columns(line, offset, width)))
        .collect();
    frame.render_widget(Paragraph::new(shown), inner);
    let x = u16::try_from(cursor_col - offset).unwrap_or(0);
    let y = u16::try_from(cursor_row - top).unwrap_or(0);
    frame.set_cursor_position((
        inner.x.saturating_add(x.min(inner.width - 1)),
        inner.y.saturating_add(y.min(inner.height - 1)),
    ));
}

/// Display width as ratatui draws it: grapheme by grapheme, so an emoji
/// sequence joined by ZWJ counts once, not once per emoji in it.
fn width_of(text: &str) -> usize {
    text.graphemes(true).map(UnicodeWidthStr::width).sum()
}

/// The part of `line` from display column `skip` on, at most `width`
/// columns wide. A wide grapheme cut by the left edge becomes a space so
/// the rest stays in its columns.
fn columns(line: &str, skip: usize, width: usize) -> String {
    let mut out = String::new();
    let mut column = 0;
    let mut used = 0;
    for g in line.graphemes(true) {
        let w = g.width();
        let start = column;
        column += w;
        if start < skip {
            if column > skip {
                out.push(' ');
                used += column - skip;
            }
            continue;
        }
        if used + w > width {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out
}

/// A y/n question ("discard draft? y/n"), in the notice's place; a long
/// one is cut before its `y/n`, which always shows.
pub(super) fn render_confirm(frame: &mut Frame, area: Rect, question: &str) {
    let room = usize::from(area.width).saturating_sub(4);
    let text = format!("{} y/n", super::text::truncate(question, room));
    frame.render_widget(
        Paragraph::new(text).style(Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_keeps_wide_characters_in_place() {
        assert_eq!(columns("abcdef", 2, 3), "cde");
        assert_eq!(columns("中文字", 1, 4), " 文");
        assert_eq!(columns("中文字", 2, 4), "文字");
        assert_eq!(columns("ae\u{301}b", 1, 2), "e\u{301}b");
    }
}
