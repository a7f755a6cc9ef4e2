//! The characters that change how text reads without showing themselves,
//! which every interface drops from text someone else wrote
//! (docs/PROTOCOL.md §14.7 rule 1, docs/CLI.md "Untrusted text").
//!
//! One list, so that a file name is saved as it is shown: the file-name
//! sanitiser ([`crate::attachment::sanitize_file_name`]) drops these and a
//! few more (the zero-width joiners, which a message body keeps for emoji
//! and scripts that need them), and the CLI's terminal filter drops these
//! from every message, name and file name it prints.
//!
//! Must never hold a character a person can see, nor a line break (those
//! are the callers' to turn into a space or a new line).

/// Whether `c` is a bidirectional control, an invisible formatting
/// character, or a filler that renders as blank space and serves only to
/// disguise text:
///
/// - bidi controls: U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069;
/// - the deprecated format characters U+206A–U+206F;
/// - U+FEFF (byte order mark) and the interlinear annotation characters
///   U+FFF9–U+FFFB;
/// - U+00AD (soft hyphen) and U+034F (combining grapheme joiner);
/// - U+180E (Mongolian vowel separator, no longer a space);
/// - the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 (blank "letters",
///   the usual way to make an empty-looking name);
/// - the tag characters U+E0000–U+E007F (an invisible copy of ASCII, which
///   can smuggle text a reader never sees; a subdivision flag such as
///   Scotland's then shows as a plain black flag).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{00ad}'
            | '\u{034f}'
            | '\u{180e}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_listed_character_is_hidden() {
        let listed = [
            '\u{061c}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{206a}',
            '\u{206f}',
            '\u{feff}',
            '\u{fff9}',
            '\u{fffb}',
            '\u{00ad}',
            '\u{034f}',
            '\u{180e}',
            '\u{115f}',
            '\u{1160}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{e0000}',
            '\u{e0041}',
            '\u{e007f}',
        ];
        for c in listed {
            assert!(is_hidden(c), "U+{:04X} is not hidden", c as u32);
        }
    }

    #[test]
    fn visible_neighbours_and_joiners_are_not() {
        // The characters just outside each range, and the zero-width
        // joiners an emoji sequence or a Persian word needs.
        let kept = [
            'a',
            ' ',
            '\u{00ac}',
            '\u{00ae}',
            '\u{034e}',
            '\u{0350}',
            '\u{115e}',
            '\u{1161}',
            '\u{180d}',
            '\u{180f}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{3163}',
            '\u{3165}',
            '\u{ff9f}',
            '\u{ffa1}',
            '\u{dffff}',
            '\u{e0080}',
            '😀',
        ];
        for c in kept {
            assert!(!is_hidden(c), "U+{:04X} is hidden", c as u32);
        }
    }
}
