//! `/search TEXT` results on the chat screen: like irssi's `/lastlog`, the
//! messages found are written as dim lines into the open conversation
//! (`Nov 20 18:40 in bob, bob: lunch at 12:30?`), newest first, under a
//! line that says what was searched; with no conversation open the count
//! is a notice.
//!
//! It must never hold a found text, name or conversation except as
//! [`SafeText`] (the lines are made by [`ChatState::system_line`]), never
//! send anything (the search is the local store's), and never write more
//! than [`SEARCH_SHOWN`] lines for one search.

use time::OffsetDateTime;

use super::{Action, ChatState, Severity};

/// The most matches one `/search` shows; `umbra search` lists more.
pub const SEARCH_SHOWN: usize = 20;

/// The longest found text shown, in characters (a line, not a page).
const SHOWN_BODY_CHARS: usize = 160;

/// One message a search found, as the event loop hands it over
/// (untrusted strings).
pub struct SearchHit<'a> {
    /// The contact's name, or the group's display name.
    pub conversation: &'a str,
    /// Who wrote it; `mine` for our own.
    pub from: &'a str,
    pub mine: bool,
    pub at: OffsetDateTime,
    pub body: &'a str,
}

impl ChatState {
    /// The results of searching for `query`: at most [`SEARCH_SHOWN`] of
    /// `hits` (newest first), with a note when there were more.
    pub fn search_results(&mut self, query: &str, hits: &[SearchHit<'_>]) {
        let quoted = format!("search \"{}\"", cut(query, 40));
        let Some(key) = self.open().map(|c| c.username.clone()) else {
            let text = match hits.len() {
                0 => format!("{quoted}: nothing found"),
                n => format!("{quoted}: {n} found; open a conversation to see them"),
            };
            self.set_notice(Severity::Info, &text);
            return;
        };
        if hits.is_empty() {
            self.set_notice(Severity::Info, &format!("{quoted}: nothing found"));
            return;
        }
        let shown = hits.len().min(SEARCH_SHOWN);
        let more = if hits.len() > SEARCH_SHOWN {
            format!(" (the newest {SEARCH_SHOWN}; umbra search lists more)")
        } else {
            String::new()
        };
        let now = self.now;
        let line = |state: &mut ChatState, text: &str| {
            state.next_change_id += 1;
            let id = format!("search-{}", state.next_change_id);
            state.system_line(&key, &id, text, now);
        };
        line(
            self,
            &format!("{quoted}: {shown} found, newest first{more}"),
        );
        for hit in &hits[..shown] {
            let from = if hit.mine { "me" } else { hit.from };
            let text = format!(
                "{} in {}, {from}: {}",
                day_and_time(hit.at),
                hit.conversation,
                cut(hit.body, SHOWN_BODY_CHARS)
            );
            line(self, &text);
        }
    }
}

/// `Nov 20 18:40` (UTC, as the screen shows times).
fn day_and_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let month = at.month().to_string();
    format!(
        "{} {:02} {:02}:{:02}",
        &month[..3],
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// `text` cut to `max` characters, `…` marking a cut.
fn cut(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// `/search TEXT`.
pub(super) fn search(_state: &mut ChatState, text: &str) -> Result<Option<Action>, String> {
    if text.is_empty() {
        return Err("usage: /search TEXT".to_owned());
    }
    Ok(Some(Action::Search {
        text: text.to_owned(),
    }))
}
