//! Draws a [`ChatState`] into a ratatui frame.
//!
//! A pure function of the state and the frame size: no I/O, no clock, no
//! randomness, which is what lets the snapshot tests pin the screen down.
//! Wide terminals (60 columns or more) get a conversation list beside the
//! open conversation; narrow ones show only the open conversation with an
//! unread summary in its title.
//!
//! This module must never draw text that did not come through [`SafeText`]
//! (state fields are already sanitised) or its own literals, and must never
//! hide a key-change warning: when a banner does not fit whole, its first
//! line — the warning itself — is what stays.

use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::output::{Delivery, Trust};
use crate::sanitize::SafeText;
use crate::tui::state::{
    human_size, ChatMessage, ChatState, Connection, Conversation, Direction, Outgoing, Severity,
};

mod about;
mod group;
mod help;
mod input;
mod text;

use input::{input_height, render_confirm, render_input};
use text::{short_time, short_time_with_day, str_width, truncate, wrap};

/// Below this width the conversation list is hidden.
const LIST_MIN_TERMINAL_WIDTH: u16 = 60;
const LIST_WIDTH: u16 = 24;
/// Smallest screen that can still show a warning, a line and the input.
const MIN_WIDTH: u16 = 20;
const MIN_HEIGHT: u16 = 8;

const HELP_WIDE: &str = "Enter send  ↑↓ switch  PgUp/PgDn scroll  ^A accept key  ? help  Esc quit";
const HELP_NARROW: &str = "Enter send ↑↓ switch ? help Esc quit";
const HELP_OPEN: &str = "Esc close help  ↑↓ PgUp/PgDn scroll";

/// Draws the whole screen.
pub fn render(frame: &mut Frame, state: &ChatState) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = Paragraph::new("terminal too small for umbra chat");
        frame.render_widget(text, area);
        return;
    }

    // A link that is gone for good outranks everything but the header: it
    // explains why nothing arrives or leaves any more.
    let status = state
        .status_line(area.width >= LIST_MIN_TERMINAL_WIDTH)
        .map(|line| vec![line])
        .unwrap_or_default();
    let status_lines = wrap_banner(&status, area.width);
    let status_height = status_lines
        .len()
        .min(usize::from((area.height / 4).max(2)));

    let banner = state.open().map(banner_lines).unwrap_or_default();
    let banner_lines = wrap_banner(&banner, area.width);
    let banner_cap = usize::from((area.height / 3).max(2));
    let banner_height = banner_lines.len().min(banner_cap);
    let notice_height =
        u16::from(state.notice.is_some() || state.confirm_discard || state.confirm.is_some());

    let [header, status_area, banner_area, main, notice_area, input_area, help] =
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(u16::try_from(status_height).unwrap_or(u16::MAX)),
            Constraint::Length(u16::try_from(banner_height).unwrap_or(u16::MAX)),
            Constraint::Min(3),
            Constraint::Length(notice_height),
            Constraint::Length(input_height(state)),
            Constraint::Length(1),
        ])
        .areas(area);

    render_header(frame, header, state);
    if status_height > 0 {
        let shown: Vec<Line> = status_lines.into_iter().take(status_height).collect();
        frame.render_widget(Paragraph::new(shown).style(banner_style()), status_area);
    }
    if banner_height > 0 {
        let shown: Vec<Line> = banner_lines.into_iter().take(banner_height).collect();
        frame.render_widget(Paragraph::new(shown).style(banner_style()), banner_area);
    }

    if let Some(scroll) = state.help {
        help::render_help(frame, main, scroll);
    } else if area.width >= LIST_MIN_TERMINAL_WIDTH {
        let [list, conversation] =
            Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(10)]).areas(main);
        render_list(frame, list, state);
        render_conversation(frame, conversation, state, false);
    } else {
        render_conversation(frame, main, state, true);
    }

    if state.confirm_discard {
        render_confirm(frame, notice_area, "discard draft?");
    } else if let Some(confirm) = &state.confirm {
        render_confirm(frame, notice_area, &confirm.question());
    } else if let Some(notice) = &state.notice {
        let style = match notice.severity {
            Severity::Info => Style::new().fg(Color::Cyan),
            Severity::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        frame.render_widget(
            Paragraph::new(notice.text.as_str()).style(style),
            notice_area,
        );
    }
    render_input(frame, input_area, state);

    let help_text = if state.help.is_some() {
        HELP_OPEN
    } else if str_width(HELP_WIDE) <= usize::from(area.width) {
        HELP_WIDE
    } else {
        HELP_NARROW
    };
    frame.render_widget(
        Paragraph::new(help_text).style(Style::new().fg(Color::DarkGray)),
        help,
    );
}

fn banner_style() -> Style {
    Style::new()
        .bg(Color::Red)
        .fg(Color::White)
        .add_modifier(Modifier::BOLD)
}

/// The warning for the open conversation, most important line first.
fn banner_lines(conversation: &Conversation) -> Vec<String> {
    let Some(change) = &conversation.key_change else {
        return Vec::new();
    };
    let name = &conversation.display;
    // What happened and what to do come before the long number, so a short
    // banner on a small screen still says both.
    vec![
        format!("⚠ KEY CHANGED for {name}: sending blocked"),
        format!("Compare the safety number with {name}, then press Ctrl-A to accept."),
        format!(
            "New safety number: {}",
            SafeText::line(&change.safety_number)
        ),
    ]
}

fn wrap_banner(lines: &[String], width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    lines
        .iter()
        .flat_map(|line| wrap(line, width))
        .map(Line::from)
        .collect()
}

fn render_header(frame: &mut Frame, area: Rect, state: &ChatState) {
    let (status, color) = match state.connection {
        Connection::Online => ("● online", Color::Green),
        Connection::Connecting => ("○ connecting", Color::Yellow),
        Connection::Offline => ("○ offline", Color::Red),
        Connection::Replaced => ("✗ replaced", Color::Red),
        Connection::Closed => ("✗ closed", Color::Red),
    };
    // The connection state matters more than the server URL on a small screen.
    let who = if area.width >= LIST_MIN_TERMINAL_WIDTH {
        format!("{} @ {}  ", state.me, state.server)
    } else {
        format!("{}  ", state.me)
    };
    let line = Line::from(vec![
        Span::styled(" umbra ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(who),
        Span::styled(status, Style::new().fg(color)),
    ]);
    frame.render_widget(
        Paragraph::new(line).style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
    );
}

fn render_list(frame: &mut Frame, area: Rect, state: &ChatState) {
    let block = Block::new().borders(Borders::ALL).title(" Chats ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);

    let lines: Vec<Line> = state
        .conversations
        .iter()
        .map(|conversation| list_row(conversation, state, width))
        .collect();
    if lines.is_empty() {
        frame.render_widget(
            Paragraph::new("no chats yet").style(Style::new().fg(Color::DarkGray)),
            inner,
        );
        return;
    }
    // Keep the open conversation visible in a long list.
    let selected_index = state
        .selected
        .as_deref()
        .and_then(|name| state.conversations.iter().position(|c| c.username == name))
        .unwrap_or(0);
    let height = usize::from(inner.height);
    let skip = (selected_index + 1).saturating_sub(height);
    let shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    // Unread conversations out of view are named on the border they are
    // beyond, so a long list never hides that someone wrote.
    let unread_in = |range: &[Conversation]| range.iter().filter(|c| c.unread > 0).count();
    let above = unread_in(&state.conversations[..skip.min(state.conversations.len())]);
    let below = unread_in(state.conversations.get(skip + height..).unwrap_or_default());
    let border = |n: usize, arrow: &str| {
        Line::from(Span::styled(
            format!(" {arrow} {n} unread "),
            Style::new().fg(Color::Yellow).bold(),
        ))
        .right_aligned()
    };
    // Drawn inside the corners, which stay the border's.
    let along = area.inner(Margin::new(1, 0));
    if above > 0 {
        frame.render_widget(Block::new().title_top(border(above, "↑")), along);
    }
    if below > 0 {
        frame.render_widget(Block::new().title_bottom(border(below, "↓")), along);
    }
}

fn list_row(conversation: &Conversation, state: &ChatState, width: usize) -> Line<'static> {
    let marker = match conversation.trust {
        _ if conversation.group.is_some() => group::list_marker(),
        Trust::Changed => Span::styled("! ", Style::new().fg(Color::Red).bold()),
        Trust::Verified => Span::styled("✓ ", Style::new().fg(Color::Green)),
        Trust::Unverified => Span::raw("  "),
    };
    let mut right = String::new();
    if conversation.unread > 0 {
        right.push_str(&format!("{} ", conversation.unread));
    }
    if let Some(at) = conversation.last_activity() {
        right.push_str(&short_time(at, state.now));
    }
    let name_room = width.saturating_sub(2 + str_width(&right) + 1);
    let name = truncate(conversation.display.as_str(), name_room);
    let padding = width.saturating_sub(2 + str_width(&name) + str_width(&right));

    let selected = state.selected.as_deref() == Some(conversation.username.as_str());
    let mut name_style = Style::new();
    if conversation.unread > 0 {
        name_style = name_style.add_modifier(Modifier::BOLD);
    }
    let unread_style = if conversation.unread > 0 {
        Style::new().fg(Color::Yellow).bold()
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let line = Line::from(vec![
        marker,
        Span::styled(name, name_style),
        Span::raw(" ".repeat(padding)),
        Span::styled(right, unread_style),
    ]);
    if selected {
        line.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

fn render_conversation(frame: &mut Frame, area: Rect, state: &ChatState, narrow: bool) {
    let Some(conversation) = state.open() else {
        let block = Block::new().borders(Borders::ALL).title(" umbra ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from("No conversation open."),
                Line::from("Type /open USERNAME and Enter."),
            ])
            .style(Style::new().fg(Color::DarkGray)),
            inner,
        );
        return;
    };

    let mut title = vec![
        Span::raw(" "),
        Span::styled(
            conversation.display.to_string(),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(" "),
    ];
    let trust_style = match conversation.trust {
        Trust::Verified => Style::new().fg(Color::Green),
        Trust::Unverified => Style::new().fg(Color::DarkGray),
        Trust::Changed => Style::new().fg(Color::Red).bold(),
    };
    match &conversation.group {
        Some(panel) => title.push(group::title_tag(panel)),
        None => title.push(Span::styled(
            format!("({}) ", conversation.trust.label()),
            trust_style,
        )),
    }
    // The timer comes before the passing "typing…", so it stays put.
    if conversation.disappearing > 0 {
        title.push(Span::styled(
            format!(
                "⏱ {} ",
                crate::commands::disappearing::format_timer(conversation.disappearing)
            ),
            Style::new().fg(Color::Yellow),
        ));
    }
    if conversation.typing {
        title.push(Span::styled("typing… ", Style::new().fg(Color::DarkGray)));
    }
    if let Some(typing) = conversation.group.as_ref().and_then(group::typing_tag) {
        title.push(typing);
    }
    if narrow {
        let elsewhere: usize = state
            .conversations
            .iter()
            .filter(|c| c.username != conversation.username)
            .map(|c| c.unread)
            .sum();
        if elsewhere > 0 {
            title.push(Span::styled(
                format!("+{elsewhere} unread "),
                Style::new().fg(Color::Yellow).bold(),
            ));
        }
    }
    let border_style = if conversation.sending_blocked() {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(border_style)
        .title(Line::from(title));
    let mut inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(panel) = &conversation.group {
        // Who reads along comes first: one line, cut with … when long.
        let [members, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let line = group::members_line(panel, usize::from(members.width));
        frame.render_widget(Paragraph::new(line), members);
        inner = rest;
    }

    let width = usize::from(inner.width);
    let mut lines: Vec<Line> = Vec::new();
    for message in &conversation.messages {
        lines.extend(message_lines(message, conversation, state, width));
    }
    let height = usize::from(inner.height);
    let max_scroll = lines.len().saturating_sub(height);
    let scroll = state.scroll.min(max_scroll);
    let start = lines.len().saturating_sub(height + scroll);
    let shown: Vec<Line> = lines.into_iter().skip(start).take(height).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    // Scrolled up: say that newer lines are below, on the bottom border.
    if scroll > 0 {
        let more = Line::from(Span::styled(
            " ↓ more below (PgDn) ",
            Style::new().fg(Color::Yellow),
        ))
        .right_aligned();
        frame.render_widget(
            Block::new().title_bottom(more),
            area.inner(Margin::new(1, 0)),
        );
    }
}

/// One message as wrapped lines: `HH:MM name: body [mark]`, with the body's
/// continuation lines indented under its first line.
fn message_lines(
    message: &ChatMessage,
    conversation: &Conversation,
    state: &ChatState,
    width: usize,
) -> Vec<Line<'static>> {
    let (who, who_style) = match message.direction {
        Direction::Incoming { .. } => (
            message
                .from
                .as_ref()
                .unwrap_or(&conversation.display)
                .to_string(),
            Style::new().fg(Color::Cyan).bold(),
        ),
        // `me`, or the mark of a message another device of ours sent.
        Direction::Outgoing(_) => (
            message
                .from
                .as_ref()
                .map_or_else(|| "me".to_owned(), ToString::to_string),
            Style::new().fg(Color::Green).bold(),
        ),
        Direction::Change => {
            let time = short_time_with_day(message.at, state.now);
            return group::change_lines(&time, &message.body, width);
        }
    };
    let time = short_time_with_day(message.at, state.now);
    let prefix_width = str_width(&time) + 1 + str_width(&who) + 2;
    // Long names on narrow screens would leave no room: start the body on
    // its own line instead.
    let indent = if prefix_width * 2 <= width {
        prefix_width
    } else {
        2
    };
    let body_width = width.saturating_sub(indent).max(1);

    let mut body_lines: Vec<String> = Vec::new();
    let body_style = if message.about.deleted {
        body_lines.push(about::DELETED.to_owned());
        about::deleted_style()
    } else if let Some(file) = &message.file {
        // A file is its name and size; `/save` takes it.
        let line = format!("📎 {} ({})", file.name, human_size(file.size));
        body_lines.extend(wrap(&line, body_width));
        Style::new().fg(Color::Magenta)
    } else {
        for paragraph in message.body.lines() {
            body_lines.extend(wrap(paragraph, body_width));
        }
        Style::new()
    };
    if body_lines.is_empty() {
        body_lines.push(String::new());
    }

    let (mark, mark_style) = match &message.direction {
        Direction::Incoming { .. } | Direction::Change => {
            (String::new(), Style::new().fg(Color::DarkGray))
        }
        Direction::Outgoing(Outgoing::Progress(delivery)) => {
            let style = match delivery {
                Delivery::Read => Style::new().fg(Color::Blue).bold(),
                Delivery::Pending => Style::new().fg(Color::DarkGray),
                _ => Style::new().fg(Color::Gray),
            };
            (delivery.mark().to_owned(), style)
        }
        Direction::Outgoing(Outgoing::Failed(reason)) => (
            format!("✗ not sent: {reason}"),
            Style::new().fg(Color::Red).bold(),
        ),
    };

    // An edit is marked before the delivery mark: `(edited) ✓✓`.
    let mark = match (
        message.about.edited && !message.about.deleted,
        mark.is_empty(),
    ) {
        (true, true) => about::EDITED.to_owned(),
        (true, false) => format!("{} {mark}", about::EDITED),
        (false, _) => mark,
    };

    let prefix = vec![
        Span::styled(format!("{time} "), Style::new().fg(Color::DarkGray)),
        Span::styled(format!("{who}: "), who_style),
    ];
    let mut lines: Vec<Line<'static>> = Vec::new();
    let pad = " ".repeat(indent);
    lines.extend(about::quote_line(message, conversation, state, &pad, width));
    let body_line =
        |rest: String| Line::from(vec![Span::raw(pad.clone()), Span::styled(rest, body_style)]);
    if indent == prefix_width {
        let mut first = prefix;
        let mut body = body_lines.into_iter();
        first.push(Span::styled(body.next().unwrap_or_default(), body_style));
        lines.push(Line::from(first));
        lines.extend(body.map(body_line));
    } else {
        lines.push(Line::from(prefix));
        lines.extend(body_lines.into_iter().map(body_line));
    }

    if !mark.is_empty() {
        let last_width = lines.last().map_or(0, Line::width);
        let fits = last_width + 1 + str_width(&mark) <= width;
        if let (true, Some(last)) = (fits, lines.last_mut()) {
            last.spans.push(Span::raw(" "));
            last.spans.push(Span::styled(mark, mark_style));
        } else {
            for piece in wrap(&mark, body_width) {
                lines.push(Line::from(vec![
                    Span::raw(pad.clone()),
                    Span::styled(piece, mark_style),
                ]));
            }
        }
    }
    lines.extend(about::reactions_line(message, &pad, width));
    lines
}
