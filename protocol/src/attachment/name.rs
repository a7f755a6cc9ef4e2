//! Turning the file name a peer sent into one that is safe to save under
//! and to show (docs/PROTOCOL.md §14.7).
//!
//! A name comes from someone else, so it may try to leave the download
//! directory (`../../etc/passwd`, `..\..\x`), hide its real extension
//! behind a right-to-left override (`\u{202e}txt.exe` shows as `exe.txt`),
//! rewrite the terminal with control characters, or be empty or huge.
//! [`sanitize_file_name`] maps any string to a single plain name without
//! any of that; it is pure and total, and its output passes the content
//! module's file-name check and is its own sanitised form.
//!
//! Must never: return an empty name, `.` or `..`, a name with `/`, `\`, a
//! `..` run, a control, bidi, invisible formatting or line separator
//! character, a leading `-` (a shell tool given the saved file, as in
//! `rm *`, would read it as an option), or one over `MAX_FILE_NAME_BYTES`.

use crate::content::MAX_FILE_NAME_BYTES;

/// What a name that sanitises to nothing becomes.
const FALLBACK: &str = "attachment";

/// Names Windows reserves for devices, whatever the extension (its own
/// list includes the superscript-digit ports and the console names).
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "COM¹", "COM²", "COM³", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
    "LPT9", "LPT¹", "LPT²", "LPT³", "CONIN$", "CONOUT$",
];

/// The characters every interface hides from untrusted text
/// ([`crate::hidden_chars::is_hidden`]: directional formatting, invisible
/// formatting and fillers), plus the zero-width space and joiners and the
/// invisible operators U+2060–U+2065 (a message body keeps the joiners for
/// emoji and scripts; a name needs none of them, and they can make two
/// different names look the same), and the Unicode line and paragraph
/// separators (a line break in a name, as LF would be; §10.4 refuses LF,
/// but U+2028 is no `Cc`). So the set covers every character the CLI's
/// untrusted-text filter drops (docs/CLI.md, "Untrusted text"), and a name
/// is saved as it is shown.
fn is_bidi_or_invisible(c: char) -> bool {
    crate::hidden_chars::is_hidden(c)
        || matches!(
            c,
            '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2065}'
        )
}

/// A safe, non-empty, single-component file name for `name`:
///
/// 1. `/`, `\` and `:` become `_`; control (`Cc`), bidi, invisible
///    formatting and line separator characters are dropped;
/// 2. every run of dots becomes one dot, and leading and trailing dots and
///    spaces are removed (no `..`, no hidden file, nothing Windows strips);
/// 3. a Windows device name (`CON`, `nul.txt`, ...) gets a `_` prefix,
///    and so does a name starting with `-` (`-rf` → `_-rf`), so no tool
///    reads it as an option;
/// 4. the result is cut to `MAX_FILE_NAME_BYTES` on a character boundary,
///    keeping an extension of up to 16 bytes;
/// 5. an empty result becomes `attachment`.
pub fn sanitize_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_FILE_NAME_BYTES));
    for c in name.chars() {
        match c {
            '/' | '\\' | ':' => out.push('_'),
            '.' if out.ends_with('.') => {}
            c if c.is_control() || is_bidi_or_invisible(c) => {}
            c => out.push(c),
        }
    }
    let mut out = trim(&out).to_owned();
    let stem = out.split('.').next().unwrap_or_default();
    if RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem.trim_end()))
        || out.starts_with('-')
    {
        out.insert(0, '_');
    }
    if out.len() > MAX_FILE_NAME_BYTES {
        out = shorten(&out);
    }
    if out.is_empty() {
        FALLBACK.to_owned()
    } else {
        out
    }
}

fn trim(name: &str) -> &str {
    name.trim_matches(|c: char| c == '.' || c.is_whitespace())
}

/// Cuts `name` to `MAX_FILE_NAME_BYTES`, keeping a short extension so the
/// file still opens with the right program.
fn shorten(name: &str) -> String {
    let extension = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let stem = &name[..name.len() - extension.len()];
    let mut cut = MAX_FILE_NAME_BYTES - extension.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let joined = format!("{}{extension}", trim(&stem[..cut]));
    trim(&joined).to_owned()
}

#[cfg(test)]
mod tests {
    //! One test per kind of hostile name (PROTOCOL.md §14.7); the table in
    //! `attachment/tests.rs` keeps the spec's examples.

    use super::*;
    use crate::content::{Content, FileKey, FilePointer, MessageId};

    /// The sanitised name, checked against the rules every output keeps:
    /// it is its own sanitised form and the content layer accepts it.
    fn safe(name: &str) -> String {
        let out = sanitize_file_name(name);
        assert_eq!(sanitize_file_name(&out), out, "not idempotent for {name:?}");
        let pointer = FilePointer {
            id: MessageId([0; 16]),
            blob_id: vec![1],
            key: FileKey::from_bytes([0; 32]),
            digest: [0; 32],
            size: 0,
            file_name: out.clone(),
            content_type: "application/octet-stream".to_owned(),
        };
        assert!(
            crate::content::encode(&Content::FilePointer(pointer)).is_ok(),
            "{out:?} from {name:?} fails the content rules"
        );
        out
    }

    #[test]
    fn a_leading_dash_gets_a_prefix() {
        assert_eq!(safe("-rf"), "_-rf");
        assert_eq!(safe("--help"), "_--help");
        assert_eq!(safe("-"), "_-");
        // Exposed only by the trimming: still prefixed.
        assert_eq!(safe(" -rf"), "_-rf");
        assert_eq!(safe(".-rf"), "_-rf");
        assert_eq!(safe("\u{202e}-rf"), "_-rf");
        // A dash elsewhere is an ordinary character.
        assert_eq!(safe("a-b.txt"), "a-b.txt");
        assert_eq!(safe("_-x"), "_-x");
        // Cut to length, the prefix stays.
        let long = safe(&"-".repeat(1000));
        assert!(long.starts_with("_-") && long.len() == MAX_FILE_NAME_BYTES);
    }

    #[test]
    fn parent_references_cannot_leave_the_directory() {
        assert_eq!(safe("../../etc/passwd"), "_._etc_passwd");
        assert_eq!(safe("../x"), "_x");
        assert_eq!(safe("a/../../b"), "a_._._b");
        assert_eq!(safe("....//....//x"), "__.__x");
        for name in ["..", "...", "....", ". .", " .. "] {
            assert_eq!(safe(name), "attachment", "{name:?}");
        }
    }

    #[test]
    fn a_lone_dot_or_a_hidden_name_is_not_kept() {
        assert_eq!(safe("."), "attachment");
        assert_eq!(safe(".bashrc"), "bashrc");
        assert_eq!(safe(".ssh/authorized_keys"), "ssh_authorized_keys");
    }

    #[test]
    fn absolute_paths_become_one_component() {
        assert_eq!(safe("/etc/passwd"), "_etc_passwd");
        assert_eq!(safe("/"), "_");
        assert_eq!(safe("C:\\Windows\\System32"), "C__Windows_System32");
        assert_eq!(safe("\\\\server\\share\\x"), "__server_share_x");
        assert_eq!(safe("C:evil"), "C_evil");
    }

    #[test]
    fn backslashes_are_not_separators_left_in_place() {
        assert_eq!(safe("..\\..\\x"), "_._x");
        assert_eq!(safe("a\\b"), "a_b");
        assert!(!safe("\\..\\").contains('\\'));
    }

    #[test]
    fn nul_and_control_characters_are_dropped() {
        assert_eq!(safe("a\u{0}b"), "ab");
        assert_eq!(safe("evil.txt\u{0}.exe"), "evil.txt.exe");
        assert_eq!(safe("line\nbreak\r.txt"), "linebreak.txt");
        assert_eq!(safe("\u{7}\u{1b}[31mred"), "[31mred");
        assert_eq!(safe("del\u{7f}c1\u{9b}x"), "delc1x");
        assert_eq!(safe("\u{0}\u{1}\u{1f}"), "attachment");
    }

    #[test]
    fn bidi_overrides_and_invisible_characters_are_dropped() {
        // U+202E makes `txt.exe` show as `exe.txt`.
        assert_eq!(safe("\u{202e}txt.exe"), "txt.exe");
        assert_eq!(safe("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        for c in [
            '\u{061c}', '\u{200b}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}',
            '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2060}', '\u{feff}',
        ] {
            assert_eq!(safe(&format!("a{c}b.pdf")), "ab.pdf", "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn line_separators_and_deprecated_format_characters_are_dropped() {
        // U+2028 and U+2029 are line breaks to a terminal and to the CLI
        // (docs/CLI.md, "Untrusted text"), though not `Cc`.
        assert_eq!(safe("a\u{2028}b\u{2029}c.txt"), "abc.txt");
        // What the CLI drops from shown text is dropped from the saved
        // name too, so the file on disk is the name the user read.
        for c in ('\u{206a}'..='\u{206f}').chain('\u{fff9}'..='\u{fffb}') {
            assert_eq!(
                safe(&format!("pay{c}roll.pdf")),
                "payroll.pdf",
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(safe("\u{2028}\u{206f}\u{fffb}"), "attachment");
    }

    #[test]
    fn tags_fillers_and_soft_hyphens_are_dropped() {
        // Tag characters spell ASCII invisibly: `report` + tags for "exe".
        assert_eq!(safe("report\u{e0065}\u{e0078}\u{e0065}.pdf"), "report.pdf");
        // Hangul fillers look like blank letters: an empty-looking name.
        assert_eq!(safe("\u{3164}\u{ffa0}\u{115f}\u{1160}"), "attachment");
        for c in ['\u{00ad}', '\u{034f}', '\u{180e}', '\u{e0000}', '\u{e007f}'] {
            assert_eq!(
                safe(&format!("in{c}voice.pdf")),
                "invoice.pdf",
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn windows_device_names_get_a_prefix() {
        for name in [
            "CON",
            "con",
            "Prn.txt",
            "aux.tar.gz",
            "NUL",
            "com1",
            "LPT9.log",
        ] {
            assert_eq!(safe(name), format!("_{name}"), "{name:?}");
        }
        for name in ["COM¹", "lpt³.txt", "CONIN$", "conout$.x"] {
            assert_eq!(safe(name), format!("_{name}"), "{name:?}");
        }
        // Windows ignores trailing spaces and dots: still a device.
        assert_eq!(safe("nul ."), "_nul");
        assert_eq!(safe("CON .txt"), "_CON .txt");
        // Only the whole stem counts.
        for name in ["console.txt", "com10", "nul_", "lpt", "COM0x"] {
            assert_eq!(safe(name), name, "{name:?}");
        }
    }

    #[test]
    fn over_long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let long = safe(&format!("{}.tar.gz", "é".repeat(400)));
        assert!(long.len() <= MAX_FILE_NAME_BYTES, "{}", long.len());
        assert!(long.ends_with("é.gz"), "{long}");
        assert_eq!(safe(&"x".repeat(10_000)).len(), MAX_FILE_NAME_BYTES);
        // An "extension" over 16 bytes is not kept apart: a plain cut.
        let no_ext = safe(&format!("{}.{}", "a".repeat(300), "b".repeat(20)));
        assert_eq!(no_ext, "a".repeat(MAX_FILE_NAME_BYTES));
        // A cut that would leave trailing dots or spaces drops them too.
        let dotted = safe(&format!("{} .{}", "a".repeat(250), "z".repeat(20)));
        assert!(!dotted.ends_with(['.', ' ']), "{dotted:?}");
        // Exactly the limit is kept as it is.
        let exact = "y".repeat(MAX_FILE_NAME_BYTES);
        assert_eq!(safe(&exact), exact);
    }
}
