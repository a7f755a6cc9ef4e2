//! A QR code for a terminal, in Unicode half blocks (two rows of modules
//! per line, `qrcode`'s `Dense1x2`), for `umbra link` to show its link
//! code to a phone or a camera as well as in text.
//!
//! Must never: be printed anywhere but a terminal the user looks at (the
//! caller checks), or log what it renders (a link code is a secret).

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `text` as a QR code with its quiet zone, for a terminal drawing light
/// text on a dark background: a light module is a block in the text
/// colour, a dark one the background, so the symbol reads dark on light as
/// scanners expect (the `qrcode` crate's own terminal example). A text too
/// long for any QR version (never a link code) renders as a note instead.
pub fn render(text: &str) -> String {
    match QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M) {
        Ok(code) => code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(_) => "(too long for a QR code)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 77-character link code renders as a square symbol: every line as
    /// wide as the symbol, two rows of modules per line.
    #[test]
    fn a_link_code_renders_as_a_square_of_half_blocks() {
        let code = "a".repeat(77);
        let shown = render(&code);
        let lines: Vec<&str> = shown.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(shown.contains('▀') || shown.contains('▄') || shown.contains('█'));
        assert!(!shown.contains(&code), "the code is drawn, not written");
    }
}
