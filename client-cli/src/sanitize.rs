//! Neutralises text that came from someone else before it reaches a terminal.
//!
//! Everything a contact controls — message bodies, usernames echoed back by the
//! relay, file names — can carry terminal escape sequences (CSI, OSC, DCS, …),
//! raw C0/C1 control characters or Unicode bidirectional overrides. Printed
//! verbatim, these can rewrite the screen, set the window title, write to the
//! clipboard (OSC 52), hide text, or make `evil.exe` read as `exe.live`.
//!
//! [`SafeText`] is the only way the rest of the client gets displayable text
//! from untrusted input: its constructors strip whole escape sequences (not
//! just the ESC byte, so no parameter garbage is left behind), drop every other
//! control character, bidi control and invisible formatting character or
//! filler (`umbra_protocol::hidden_chars`), and turn tabs into spaces.
//!
//! This module must never pass through ESC (U+001B), any C0 control other than
//! the line feed that [`SafeText::multiline`] keeps, DEL, or any C1 control
//! (U+0080..=U+009F); the property tests below hold it to that.

use std::fmt;

/// Text that is safe to write to a terminal.
///
/// Construct it with [`SafeText::line`] (for one-line contexts such as names,
/// list rows and status lines: line breaks become spaces) or
/// [`SafeText::multiline`] (for message bodies: line breaks are kept as `\n`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SafeText(String);

impl SafeText {
    /// Sanitises `untrusted` for a single-line context.
    pub fn line(untrusted: &str) -> Self {
        Self(strip(untrusted, LineBreaks::Space))
    }

    /// Sanitises `untrusted`, keeping line breaks as `\n`.
    pub fn multiline(untrusted: &str) -> Self {
        Self(strip(untrusted, LineBreaks::Keep))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.0.split('\n')
    }
}

impl fmt::Display for SafeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SafeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineBreaks {
    Keep,
    Space,
}

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// C1 "string terminator"; ends OSC/DCS/SOS/PM/APC like `ESC \`.
const C1_ST: char = '\u{9c}';

/// What the scanner is in the middle of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Text,
    /// Just saw ESC; the next character decides the sequence kind.
    Escape,
    /// `ESC` followed by intermediate bytes (0x20..=0x2F), waiting for the final.
    EscapeIntermediate,
    /// Control Sequence: parameters and intermediates until a final byte.
    Csi,
    /// OSC/DCS/SOS/PM/APC payload, ended by BEL (OSC only by convention, but
    /// accepted for all), `ESC \` or C1 ST.
    ControlString,
    /// Saw ESC inside a control string: `\` ends it, anything else is swallowed.
    ControlStringEscape,
}

fn strip(input: &str, breaks: LineBreaks) -> String {
    let mut out = String::with_capacity(input.len());
    let mut state = Scan::Text;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        state = match state {
            Scan::Text => match c {
                ESC => Scan::Escape,
                '\u{9b}' => Scan::Csi,
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => Scan::ControlString,
                '\r' => {
                    // CR LF is one line break; a lone CR (used to overwrite the
                    // current line) is one too, so nothing can be hidden by it.
                    if chars.peek() != Some(&'\n') {
                        push_line_break(&mut out, breaks);
                    }
                    Scan::Text
                }
                '\n' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                    push_line_break(&mut out, breaks);
                    Scan::Text
                }
                '\t' => {
                    out.push(' ');
                    Scan::Text
                }
                c if is_dropped_control(c) => Scan::Text,
                c => {
                    out.push(c);
                    Scan::Text
                }
            },
            Scan::Escape => match c {
                '[' => Scan::Csi,
                ']' | 'P' | 'X' | '^' | '_' => Scan::ControlString,
                ESC => Scan::Escape,
                '\u{20}'..='\u{2f}' => Scan::EscapeIntermediate,
                // Any other printable ASCII is the final byte of a two-character
                // escape (ESC c, ESC 7, ESC =, …): swallow it.
                '\u{30}'..='\u{7e}' => Scan::Text,
                // ESC before a non-ASCII or control character is malformed;
                // drop the ESC and treat the character as ordinary input so
                // real text is not lost.
                other => {
                    push_plain(&mut out, other, breaks);
                    Scan::Text
                }
            },
            Scan::EscapeIntermediate => match c {
                '\u{20}'..='\u{2f}' => Scan::EscapeIntermediate,
                ESC => Scan::Escape,
                '\u{30}'..='\u{7e}' => Scan::Text,
                other => {
                    push_plain(&mut out, other, breaks);
                    Scan::Text
                }
            },
            Scan::Csi => match c {
                // Parameter and intermediate bytes.
                '\u{20}'..='\u{3f}' => Scan::Csi,
                // Final byte.
                '\u{40}'..='\u{7e}' => Scan::Text,
                ESC => Scan::Escape,
                // Anything else aborts the sequence (as terminals do); the
                // character itself is then judged on its own.
                other => {
                    push_plain(&mut out, other, breaks);
                    Scan::Text
                }
            },
            Scan::ControlString => match c {
                BEL | C1_ST => Scan::Text,
                ESC => Scan::ControlStringEscape,
                _ => Scan::ControlString,
            },
            Scan::ControlStringEscape => match c {
                '\\' => Scan::Text,
                ESC => Scan::ControlStringEscape,
                _ => Scan::ControlString,
            },
        };
    }
    out
}

/// Handles a character that ended a malformed sequence: printable text is
/// kept, line breaks are honoured, controls are dropped.
fn push_plain(out: &mut String, c: char, breaks: LineBreaks) {
    match c {
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
            push_line_break(out, breaks)
        }
        '\t' => out.push(' '),
        c if is_dropped_control(c) => {}
        c => out.push(c),
    }
}

fn push_line_break(out: &mut String, breaks: LineBreaks) {
    match breaks {
        LineBreaks::Keep => out.push('\n'),
        LineBreaks::Space => out.push(' '),
    }
}

/// Characters removed outright: C0, DEL, C1, and the bidi controls,
/// invisible formatting characters and fillers that only serve to disguise
/// text (umbra-protocol's one list, which the file-name sanitiser uses
/// too, so a saved file name is the one shown).
fn is_dropped_control(c: char) -> bool {
    matches!(c, '\u{00}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
        || umbra_protocol::hidden_chars::is_hidden(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(s: &str) -> String {
        SafeText::line(s).as_str().to_owned()
    }

    fn multi(s: &str) -> String {
        SafeText::multiline(s).as_str().to_owned()
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            line("hello, world — ünïcödé 😀"),
            "hello, world — ünïcödé 😀"
        );
    }

    #[test]
    fn csi_sequences_are_removed_with_their_parameters() {
        assert_eq!(line("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(line("a\x1b[2J\x1b[Hb"), "ab");
        assert_eq!(line("x\x1b[?1049hy"), "xy");
        assert_eq!(line("x\x1b[38;2;255;0;0mY"), "xY");
    }

    #[test]
    fn c1_csi_is_removed() {
        assert_eq!(line("a\u{9b}31mb"), "ab");
    }

    #[test]
    fn osc_title_and_clipboard_sequences_are_removed() {
        assert_eq!(line("a\x1b]0;pwned\x07b"), "ab");
        assert_eq!(line("a\x1b]52;c;ZXZpbA==\x1b\\b"), "ab");
        assert_eq!(line("a\u{9d}8;;http://evil\u{9c}b"), "ab");
        // Hyperlink with visible text: the text survives, the link does not.
        assert_eq!(
            line("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"),
            "click"
        );
    }

    #[test]
    fn dcs_apc_pm_sos_strings_are_removed() {
        assert_eq!(line("a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");
        assert_eq!(line("a\x1b_payload\x1b\\b"), "ab");
        assert_eq!(line("a\x1b^privacy\x1b\\b"), "ab");
        assert_eq!(line("a\x1bXstring\x1b\\b"), "ab");
    }

    #[test]
    fn unterminated_control_string_swallows_the_rest() {
        // A terminal would do the same; what follows was never meant to show.
        assert_eq!(line("ok\x1b]0;title never ends"), "ok");
    }

    #[test]
    fn two_character_escapes_are_removed() {
        assert_eq!(line("a\x1bcb"), "ab");
        assert_eq!(line("a\x1b7b\x1b8c"), "abc");
        assert_eq!(line("a\x1b(0b"), "ab");
    }

    #[test]
    fn malformed_escape_keeps_following_text() {
        assert_eq!(line("a\x1bé"), "aé");
        assert_eq!(line("a\x1b[12é"), "aé");
    }

    #[test]
    fn c0_c1_and_del_are_dropped() {
        assert_eq!(line("a\x00b\x07c\x08d\x7fe\u{80}f\u{84}g"), "abcdefg");
    }

    #[test]
    fn next_line_control_is_a_line_break() {
        assert_eq!(multi("a\u{85}b"), "a\nb");
    }

    #[test]
    fn bidi_overrides_are_removed() {
        assert_eq!(line("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(line("\u{2067}abc\u{2069}"), "abc");
        assert_eq!(line("a\u{200f}b\u{061c}c"), "abc");
    }

    #[test]
    fn tags_fillers_and_invisible_formatting_are_removed() {
        // Tag characters are an invisible copy of ASCII: text smuggled past
        // the reader ("ignore previous" in tags) must not reach the screen.
        assert_eq!(line("hi\u{e0069}\u{e0067}\u{e006e}\u{e007f}!"), "hi!");
        // Hangul fillers and the like make a blank-looking name.
        assert_eq!(line("\u{3164}\u{ffa0}\u{115f}\u{1160}"), "");
        assert_eq!(line("soft\u{00ad}hy\u{034f}phen\u{180e}"), "softhyphen");
        // The joiners an emoji sequence needs are kept.
        assert_eq!(line("👩\u{200d}💻"), "👩\u{200d}💻");
    }

    #[test]
    fn line_mode_turns_breaks_into_spaces() {
        assert_eq!(line("one\ntwo\r\nthree\rfour"), "one two three four");
    }

    #[test]
    fn multiline_mode_keeps_line_feeds_only() {
        assert_eq!(
            multi("one\ntwo\r\nthree\rfour\u{2028}five"),
            "one\ntwo\nthree\nfour\nfive"
        );
    }

    #[test]
    fn tabs_become_spaces() {
        assert_eq!(line("a\tb"), "a b");
    }

    fn assert_terminal_safe(out: &str, newlines_allowed: bool) {
        for c in out.chars() {
            assert_ne!(c, ESC, "ESC in {out:?}");
            if newlines_allowed && c == '\n' {
                continue;
            }
            assert!(!c.is_control(), "control {c:?} in {out:?}");
            assert!(!is_dropped_control(c), "bidi/format {c:?} in {out:?}");
        }
    }

    /// Strings rich in the characters an attacker would use.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\x1b".to_owned()),
            Just("\x1b[".to_owned()),
            Just("\x1b]".to_owned()),
            Just("\x1bP".to_owned()),
            Just("\x1b\\".to_owned()),
            Just("\u{9b}".to_owned()),
            Just("\u{9d}".to_owned()),
            Just("\u{9c}".to_owned()),
            Just("\x07".to_owned()),
            Just("\r\n".to_owned()),
            Just("\u{202e}".to_owned()),
            "[\\x00-\\x7f]{0,4}",
            "[\\u{80}-\\u{9f}]",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..32).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn line_output_never_contains_controls(s in hostile()) {
            let out = line(&s);
            assert_terminal_safe(&out, false);
            prop_assert!(!out.contains('\n'));
        }

        #[test]
        fn multiline_output_never_contains_controls_but_newline(s in hostile()) {
            assert_terminal_safe(&multi(&s), true);
        }

        #[test]
        fn arbitrary_unicode_is_made_safe(s in any::<String>()) {
            assert_terminal_safe(&line(&s), false);
            assert_terminal_safe(&multi(&s), true);
        }

        #[test]
        fn printable_text_survives_unchanged(s in "[a-zA-Z0-9 .,!?äöüß€😀-]{0,64}") {
            prop_assert_eq!(line(&s), s.clone());
            prop_assert_eq!(multi(&s), s);
        }

        #[test]
        fn sanitizing_is_idempotent(s in hostile()) {
            let once = multi(&s);
            prop_assert_eq!(multi(&once), once.clone());
            let once_line = line(&s);
            prop_assert_eq!(line(&once_line), once_line.clone());
        }
    }
}
