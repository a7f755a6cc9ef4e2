//! The `--json` form of a [`Record`]: one JSON object per line.
//!
//! It must never change the text a script receives (the value stays exact)
//! and must never let a control, C1 or bidi character through raw: each is
//! escaped as `\uXXXX`, so the line is inert even on a terminal.

use super::record::Record;

impl Record {
    /// The JSON form: one line, exact text, terminal-inert escaping.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        let raw = serde_json::to_string(self)?;
        Ok(escape_for_terminal(&raw))
    }
}

/// Rewrites C1 controls, DEL, bidi controls and line/paragraph separators
/// inside an already-serialised JSON text as `\uXXXX` escapes. serde_json
/// already escapes C0; outside strings JSON is pure ASCII, so this only ever
/// touches string contents and keeps the value identical.
fn escape_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        let needs_escape = matches!(c,
            '\u{7f}'..='\u{9f}'
            | '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{2028}' | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
        if needs_escape {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}
