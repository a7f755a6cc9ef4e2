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
//! `..` run, a control, bidi or invisible formatting character, or one over
//! `MAX_FILE_NAME_BYTES`.

use crate::content::MAX_FILE_NAME_BYTES;

/// What a name that sanitises to nothing becomes.
const FALLBACK: &str = "attachment";

/// Names Windows reserves for devices, whatever the extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Directional formatting (they reorder what the user sees) and invisible
/// characters that can make two different names look the same.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// A safe, non-empty, single-component file name for `name`:
///
/// 1. `/`, `\` and `:` become `_`; control (`Cc`), bidi and invisible
///    formatting characters are dropped;
/// 2. every run of dots becomes one dot, and leading and trailing dots and
///    spaces are removed (no `..`, no hidden file, nothing Windows strips);
/// 3. a Windows device name (`CON`, `nul.txt`, ...) gets a `_` prefix;
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
