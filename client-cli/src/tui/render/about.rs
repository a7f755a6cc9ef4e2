//! How replies, reactions, edits and deletes look (docs/PROTOCOL.md
//! §10.6): a one-line quote above a reply, `(edited)` after an edited
//! text, `message deleted` in place of a deleted one, and the reactions
//! counted on a line under the message (`👍 2 ❤ 1`).
//!
//! Everything drawn here is a literal or came through SafeText (names,
//! quoted texts and emoji were sanitised when they entered the state); it
//! must never draw a quote wider than its one line.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::text::{str_width, truncate};
use crate::tui::state::{ChatMessage, ChatState, Conversation, Direction};

/// Shown in place of a deleted text.
pub(super) const DELETED: &str = "message deleted";
/// After an edited text.
pub(super) const EDITED: &str = "(edited)";

fn quiet() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// The quote line above a reply, indented by `pad`, or `None` for a
/// message that replies to nothing.
pub(super) fn quote_line(
    message: &ChatMessage,
    conversation: &Conversation,
    state: &ChatState,
    pad: &str,
    width: usize,
) -> Option<Line<'static>> {
    let target = message.about.reply_to.as_deref()?;
    let text = match state.quoted(&conversation.username, target) {
        Some(quoted) => {
            let who = match quoted.direction {
                Direction::Outgoing(_) => "me".to_owned(),
                _ => quoted
                    .from
                    .as_ref()
                    .unwrap_or(&conversation.display)
                    .to_string(),
            };
            let said = if quoted.about.deleted {
                DELETED.to_owned()
            } else {
                // One line: the first of the quoted text's.
                quoted.body.lines().next().unwrap_or_default().to_owned()
            };
            format!("↪ {who}: {said}")
        }
        None => "↪ a message not shown here".to_owned(),
    };
    let room = width.saturating_sub(str_width(pad)).max(1);
    Some(Line::from(vec![
        Span::raw(pad.to_owned()),
        Span::styled(truncate(&text, room), quiet()),
    ]))
}

/// The reactions line under a message, or `None` when it has none.
pub(super) fn reactions_line(
    message: &ChatMessage,
    pad: &str,
    width: usize,
) -> Option<Line<'static>> {
    let counts = message.about.reaction_counts();
    if counts.is_empty() {
        return None;
    }
    let text = counts
        .iter()
        .map(|(emoji, n)| format!("{emoji} {n}"))
        .collect::<Vec<_>>()
        .join("  ");
    let room = width.saturating_sub(str_width(pad)).max(1);
    Some(Line::from(vec![
        Span::raw(pad.to_owned()),
        Span::styled(truncate(&text, room), Style::new().fg(Color::Yellow)),
    ]))
}

/// The style of a deleted message's placeholder.
pub(super) fn deleted_style() -> Style {
    quiet().add_modifier(Modifier::ITALIC)
}
