//! The draft being typed: its text, a cursor inside it, and the history of
//! lines already sent in this session.
//!
//! Editing works on grapheme clusters (unicode-segmentation), so the cursor
//! never stands inside an emoji sequence or between a letter and its
//! accent, and deleting removes what the user sees as one character.
//!
//! It must never hold a control character other than `\n` (callers pass
//! text through `SafeText` first), never grow past [`MAX_INPUT_CHARS`], and
//! never let the cursor leave a grapheme boundary. History lives in memory
//! only: a sent line is never written anywhere by this module.

use unicode_segmentation::UnicodeSegmentation;

/// Longest input accepted, in characters. Far above any sane chat message,
/// low enough that a stuck key or a huge paste cannot exhaust memory.
pub const MAX_INPUT_CHARS: usize = 8 * 1024;
/// Sent lines remembered for Ctrl-P / Ctrl-N; the oldest go first.
pub const MAX_HISTORY: usize = 100;

#[derive(Clone, Debug, Default)]
pub struct InputLine {
    text: String,
    /// Byte offset into `text`, always on a grapheme boundary.
    cursor: usize,
    history: Vec<String>,
    /// Which history entry is shown, while browsing it.
    browsing: Option<usize>,
    /// The draft that was there before browsing began, given back at the end.
    stashed: String,
}

impl PartialEq<&str> for InputLine {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl InputLine {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor as a byte offset into [`Self::text`].
    #[cfg(test)]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.browsing = None;
    }

    /// Inserts already-sanitised text at the cursor, cut to what still fits.
    pub fn insert(&mut self, clean: &str) {
        let room = MAX_INPUT_CHARS.saturating_sub(self.text.chars().count());
        let cut = clean
            .char_indices()
            .nth(room)
            .map_or(clean.len(), |(i, _)| i);
        // Never leave half a grapheme at the end of a cut paste.
        let cut = clean
            .grapheme_indices(true)
            .map(|(i, g)| i + g.len())
            .take_while(|&end| end <= cut)
            .last()
            .unwrap_or(0);
        let piece = &clean[..cut];
        if piece.is_empty() {
            return;
        }
        self.text.insert_str(self.cursor, piece);
        // A combining mark typed after a letter joins it: the cursor goes
        // to the end of the grapheme it ended up in.
        let after = self.cursor + piece.len();
        self.cursor = self
            .text
            .grapheme_indices(true)
            .map(|(i, g)| i + g.len())
            .find(|&end| end >= after)
            .unwrap_or(0);
    }

    fn previous_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    pub fn left(&mut self) {
        self.cursor = self.previous_boundary();
    }

    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    /// To the start of the line the cursor is on.
    pub fn home(&mut self) {
        self.cursor = self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1);
    }

    /// To the end of the line the cursor is on.
    pub fn end(&mut self) {
        self.cursor = self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i);
    }

    /// To the start of this word, or of the previous one when already there.
    pub fn word_left(&mut self) {
        self.cursor = self.word_start_before(self.cursor);
    }

    /// To the end of this word, or of the next one when already there.
    pub fn word_right(&mut self) {
        let mut at = self.cursor;
        let mut seen_word = false;
        for g in self.text[self.cursor..].graphemes(true) {
            let space = is_space(g);
            if space && seen_word {
                break;
            }
            seen_word |= !space;
            at += g.len();
        }
        self.cursor = at;
    }

    fn word_start_before(&self, from: usize) -> usize {
        let mut at = from;
        let mut seen_word = false;
        for (i, g) in self.text[..from].grapheme_indices(true).rev() {
            let space = is_space(g);
            if space && seen_word {
                break;
            }
            seen_word |= !space;
            at = i;
        }
        at
    }

    pub fn backspace(&mut self) {
        let start = self.previous_boundary();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub fn delete(&mut self) {
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Ctrl-W: the word before the cursor and the spaces after it.
    pub fn delete_word_before(&mut self) {
        let start = self.word_start_before(self.cursor);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U: everything before the cursor.
    pub fn kill_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Remembers a line that was sent (or a command that ran) and empties
    /// the draft.
    pub fn commit_to_history(&mut self, line: &str) {
        if !line.is_empty() && self.history.last().map(String::as_str) != Some(line) {
            if self.history.len() == MAX_HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.to_owned());
        }
        self.stashed.clear();
        self.clear();
    }

    /// Ctrl-P: the previous sent line; the draft is kept for Ctrl-N.
    pub fn history_previous(&mut self) {
        let index = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.stashed = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => 0,
            Some(i) => i - 1,
        };
        self.show(Some(index));
    }

    /// Ctrl-N: the next sent line, and finally the draft from before.
    pub fn history_next(&mut self) {
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => self.show(Some(i + 1)),
            Some(_) => self.show(None),
        }
    }

    fn show(&mut self, index: Option<usize>) {
        self.text = match index {
            Some(i) => self.history[i].clone(),
            None => std::mem::take(&mut self.stashed),
        };
        self.browsing = index;
        self.cursor = self.text.len();
    }

    /// The cursor's line (0-based) and byte offset within that line.
    pub fn cursor_line(&self) -> (usize, usize) {
        let before = &self.text[..self.cursor];
        let line = before.matches('\n').count();
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, self.cursor - start)
    }
}

fn is_space(grapheme: &str) -> bool {
    grapheme.chars().all(char::is_whitespace)
}
