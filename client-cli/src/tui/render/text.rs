//! Text measured for the screen: display widths, truncation, word wrap and
//! the short timestamps of the list and the messages.
//!
//! Pure functions of their input; they must never count a wide character
//! as one column or cut a string inside a character.

use time::OffsetDateTime;
use unicode_width::UnicodeWidthChar;

/// `HH:MM` today, `Mon DD` before.
pub(super) fn short_time(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    if at.date() == now.to_offset(time::UtcOffset::UTC).date() {
        format!("{:02}:{:02}", at.hour(), at.minute())
    } else {
        format!("{} {:02}", month_abbreviation(at.month()), at.day())
    }
}

/// `HH:MM` today, `Mon DD HH:MM` before.
pub(super) fn short_time_with_day(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let clock = format!("{:02}:{:02}", at.hour(), at.minute());
    if at.date() == now.to_offset(time::UtcOffset::UTC).date() {
        clock
    } else {
        format!("{} {:02} {clock}", month_abbreviation(at.month()), at.day())
    }
}

fn month_abbreviation(month: time::Month) -> &'static str {
    use time::Month::*;
    match month {
        January => "Jan",
        February => "Feb",
        March => "Mar",
        April => "Apr",
        May => "May",
        June => "Jun",
        July => "Jul",
        August => "Aug",
        September => "Sep",
        October => "Oct",
        November => "Nov",
        December => "Dec",
    }
}

fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

pub(super) fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The longest prefix of `s` no wider than `max`, with `…` when cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if str_width(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Greedy word wrap to display width; words wider than a line are split.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0;
    for word in text.split(' ') {
        let word_width = str_width(word);
        let needed = if line.is_empty() {
            word_width
        } else {
            line_width + 1 + word_width
        };
        if needed <= width {
            if !line.is_empty() {
                line.push(' ');
                line_width += 1;
            }
            line.push_str(word);
            line_width += word_width;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_width = 0;
        }
        for c in word.chars() {
            let w = char_width(c);
            if line_width + w > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_width = 0;
            }
            line.push(c);
            line_width += w;
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_words_and_splits_long_words() {
        assert_eq!(wrap("hello big world", 9), vec!["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn wrap_counts_wide_characters() {
        assert_eq!(wrap("日本語の", 4), vec!["日本", "語の"]);
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("alexander", 5), "alex…");
        assert_eq!(truncate("bob", 5), "bob");
    }
}
