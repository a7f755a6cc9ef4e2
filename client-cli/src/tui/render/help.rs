//! The help screen: the keys ([`KEYS`]) and the slash commands
//! ([`COMMANDS`]), drawn from the same tables the input line uses, so the
//! help can never list a key or command that does not exist.
//!
//! It must never draw outside its area; what does not fit is scrolled to,
//! with a last line saying so.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::text::{str_width, wrap};
use crate::tui::state::{COMMANDS, KEYS};

/// From this inner width on, keys and their meaning share a line.
const TWO_COLUMNS_MIN_WIDTH: usize = 56;
/// The widest key that shares its line with its meaning.
const KEY_COLUMN_MAX: usize = 24;

pub(super) fn render_help(frame: &mut Frame, area: Rect, scroll: usize) {
    let block = Block::new().borders(Borders::ALL).title(" Help ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    if width == 0 || height == 0 {
        return;
    }

    let commands: Vec<(String, &str)> = COMMANDS.iter().map(|c| (c.usage(), c.summary)).collect();
    // The keys need no heading: the box's title says what this is, and
    // every row saved keeps the whole help on an 80x24 screen.
    let mut lines = rows(KEYS.iter().map(|(k, d)| ((*k).to_owned(), *d)), width);
    lines.push(heading("Commands"));
    lines.extend(rows(commands.into_iter(), width));

    let max_scroll = lines.len().saturating_sub(height);
    let scroll = scroll.min(max_scroll);
    let more = scroll < max_scroll;
    let room = if more { height - 1 } else { height };
    let mut shown: Vec<Line> = lines.into_iter().skip(scroll).take(room).collect();
    if more {
        shown.push(Line::from(Span::styled(
            "… more: ↓ or PgDn",
            Style::new().fg(Color::DarkGray),
        )));
    }
    frame.render_widget(Paragraph::new(shown), inner);
}

fn heading(text: &'static str) -> Line<'static> {
    Line::from(Span::styled(
        text,
        Style::new().add_modifier(Modifier::BOLD),
    ))
}

/// Each entry as `key  meaning` in two columns, or on a narrow screen the
/// key on its own line and the meaning indented under it.
fn rows(entries: impl Iterator<Item = (String, &'static str)>, width: usize) -> Vec<Line<'static>> {
    let entries: Vec<(String, &str)> = entries.collect();
    let key_style = Style::new().fg(Color::Cyan);
    let mut lines = Vec::new();
    if width >= TWO_COLUMNS_MIN_WIDTH {
        // A key too long for the column has a line of its own, so one
        // long command does not squeeze every meaning.
        let key_width = entries
            .iter()
            .map(|(k, _)| str_width(k))
            .filter(|w| *w <= KEY_COLUMN_MAX)
            .max()
            .unwrap_or(0)
            + 2;
        let meaning_width = width.saturating_sub(key_width).max(1);
        for (key, meaning) in entries {
            let mut wrapped = wrap(meaning, meaning_width).into_iter();
            if str_width(&key) + 2 > key_width {
                lines.push(Line::from(Span::styled(key, key_style)));
                lines.push(Line::from(format!(
                    "{}{}",
                    " ".repeat(key_width),
                    wrapped.next().unwrap_or_default()
                )));
            } else {
                let pad = " ".repeat(key_width - str_width(&key));
                lines.push(Line::from(vec![
                    Span::styled(key, key_style),
                    Span::raw(pad),
                    Span::raw(wrapped.next().unwrap_or_default()),
                ]));
            }
            for rest in wrapped {
                lines.push(Line::from(format!("{}{rest}", " ".repeat(key_width))));
            }
        }
    } else {
        for (key, meaning) in entries {
            for piece in wrap(&key, width) {
                lines.push(Line::from(Span::styled(piece, key_style)));
            }
            for piece in wrap(meaning, width.saturating_sub(2).max(1)) {
                lines.push(Line::from(format!("  {piece}")));
            }
        }
    }
    lines
}
