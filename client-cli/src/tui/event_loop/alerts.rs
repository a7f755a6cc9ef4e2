//! How `umbra chat` tells the user something arrived unseen: the terminal
//! bell (unless `UMBRA_CHAT_BELL=off`) and the unread count in the window
//! title. Which arrivals count is decided in the state (`state::reading`).
//!
//! It must never put contact-controlled text in the title (only a count)
//! and must never fail silently on a mistyped setting.

use anyhow::bail;

/// The environment variable that turns the bell off.
pub(super) const BELL_VAR: &str = "UMBRA_CHAT_BELL";

/// The user's choices for alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Alerts {
    pub bell: bool,
}

impl Alerts {
    /// Reads [`BELL_VAR`]; an unknown value is an error, so a typo never
    /// leaves the bell ringing against the user's wish.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(std::env::var(BELL_VAR).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        let bell = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "on" | "1" | "true" | "yes") => true,
            Some("off" | "0" | "false" | "no") => false,
            Some(other) => bail!("{BELL_VAR}={other:?}: use on or off"),
        };
        Ok(Self { bell })
    }
}

/// The window title: `umbra`, with the unread count when there is one.
pub(super) fn window_title(unread: usize) -> String {
    if unread == 0 {
        "umbra".to_owned()
    } else {
        format!("umbra ({unread})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bell_is_on_unless_turned_off_and_typos_are_refused() {
        assert!(Alerts::parse(None).unwrap().bell);
        assert!(Alerts::parse(Some("on")).unwrap().bell);
        assert!(!Alerts::parse(Some("off")).unwrap().bell);
        assert!(!Alerts::parse(Some(" 0 ")).unwrap().bell);
        let error = Alerts::parse(Some("of")).unwrap_err().to_string();
        assert!(error.contains("UMBRA_CHAT_BELL"), "{error}");
    }

    #[test]
    fn the_title_shows_only_a_count() {
        assert_eq!(window_title(0), "umbra");
        assert_eq!(window_title(3), "umbra (3)");
    }
}
