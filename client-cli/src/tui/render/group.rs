//! The group parts of the chat screen: the `#` that marks a group in the
//! list, the member count in its title and who is typing, the line of
//! members under it (with the group's policy when any member may rename
//! it), and membership changes drawn inline as dim lines that
//! no person wrote.
//!
//! Must never draw a name that did not come through [`SafeText`] (the
//! state holds members and changes sanitised), and never draw a change
//! line so that it looks like a message: it has no `name:` and is dimmed.

use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};

use super::text::{str_width, truncate, wrap};
use crate::sanitize::SafeText;
use crate::tui::state::GroupPanel;

/// Marks a group in the conversation list, where contacts show their trust.
pub(super) fn list_marker() -> Span<'static> {
    Span::styled("# ", Style::new().fg(Color::Cyan))
}

/// `(group, 3 members)`, or that we are out of it (left or removed).
pub(super) fn title_tag(panel: &GroupPanel) -> Span<'static> {
    let count = panel.members.len();
    if panel.active {
        Span::styled(
            format!(
                "(group, {count} {}) ",
                if count == 1 { "member" } else { "members" }
            ),
            Style::new().fg(Color::DarkGray),
        )
    } else {
        Span::styled("(not a member) ", Style::new().fg(Color::Red).bold())
    }
}

/// `bob typing… `, `bob, carol typing… `, `4 typing… `: the members
/// typing now, if any.
pub(super) fn typing_tag(panel: &GroupPanel) -> Option<Span<'static>> {
    let text = match panel.typing.as_slice() {
        [] => return None,
        [one] => format!("{one} typing… "),
        [one, two] => format!("{one}, {two} typing… "),
        many => format!("{} typing… ", many.len()),
    };
    Some(Span::styled(text, Style::new().fg(Color::DarkGray)))
}

/// What the members line ends with when the group's policy lets any
/// member rename it (admins only otherwise, and nothing is added).
const MAY_RENAME: &str = " · all may rename";

/// `alice★, bob, carol, you`: admins first, marked; cut with … when long;
/// then ` · all may rename` if any member may rename the group (and we
/// are in it), kept whole (the names are cut first) while the width holds
/// it.
pub(super) fn members_line(panel: &GroupPanel, width: usize) -> Line<'static> {
    let names: Vec<String> = panel
        .members
        .iter()
        .map(|m| {
            let name = if m.me {
                "you".to_owned()
            } else {
                m.name.to_string()
            };
            if m.admin {
                format!("{name}★")
            } else {
                name
            }
        })
        .collect();
    let style = Style::new().fg(Color::DarkGray);
    let shown = panel.active && panel.members_may_rename;
    let policy = if shown && str_width(MAY_RENAME) < width {
        MAY_RENAME
    } else {
        ""
    };
    let text = truncate(&names.join(", "), width - str_width(policy));
    Line::from(vec![
        Span::styled(text, style),
        Span::styled(policy, style.add_modifier(Modifier::ITALIC)),
    ])
}

/// `HH:MM · alice added carol`, wrapped under its own indent.
pub(super) fn change_lines(time: &str, text: &SafeText, width: usize) -> Vec<Line<'static>> {
    let style = Style::new()
        .fg(Color::DarkGray)
        .add_modifier(Modifier::ITALIC);
    let prefix = format!("{time} · ");
    let indent = str_width(&prefix);
    let body_width = width.saturating_sub(indent).max(1);
    let text = text.as_str().replace('\n', " ");
    wrap(&text, body_width)
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let lead = if i == 0 {
                prefix.clone()
            } else {
                " ".repeat(indent)
            };
            Line::from(vec![
                Span::styled(lead, Style::new().fg(Color::DarkGray)),
                Span::styled(piece, style),
            ])
        })
        .collect()
}
