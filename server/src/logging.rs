//! The relay's log setup: which events are written, where, and whether with
//! colour.
//!
//! One rule decides what a level means: a bare level (`trace`, `debug`,
//! `info`, ...) in `--log-level` or `RUST_LOG` applies to umbra's own
//! crates; dependencies (tungstenite, hyper, sqlx, ...) stay at `info` or
//! quieter, because at `debug`/`trace` they log frame bytes (tungstenite:
//! every frame's payload, so tokens and envelopes) and SQL with bound values
//! (sqlx). A directive that names a dependency (`tungstenite=trace`) is an
//! explicit, documented request for exactly that and is honoured as given.
//!
//! Colour (ANSI escapes) only when stderr is a terminal and `NO_COLOR` is
//! unset or empty (<https://no-color.org>), so files and journald get plain
//! text.
//!
//! Must never: raise a dependency above `info` because of a bare level, or
//! write escape codes to something that is not a terminal. What the relay's
//! own events contain is each call site's duty (no tokens, passwords,
//! envelopes, usernames or addresses); `server/tests/relay_log_redaction.rs`
//! checks it at `trace`.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The crates a bare level applies to: the relay and the wire crate it uses.
pub const OWN_CRATES: &[&str] = &["umbra_relay", "umbra_wire"];

/// The most a dependency logs unless a directive names it.
pub const DEPENDENCY_CEILING: LevelFilter = LevelFilter::INFO;

/// The variable that, when set and not empty, turns colour off.
pub const NO_COLOR_VAR: &str = "NO_COLOR";

/// Why the log filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid log filter {spec:?}: {source}")]
pub struct FilterError {
    spec: String,
    source: tracing_subscriber::filter::ParseError,
}

/// Rewrites a filter so that each bare level names `own` crates only, with
/// dependencies capped at [`DEPENDENCY_CEILING`]; target directives are
/// kept as given and, coming later, win for their targets.
pub fn expand_directives(spec: &str, own: &[&str]) -> String {
    let mut general: Option<LevelFilter> = None;
    let mut explicit = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<LevelFilter>() {
            Ok(level) => general = Some(level),
            Err(_) => explicit.push(part.to_owned()),
        }
    }
    let mut out = Vec::new();
    if let Some(level) = general {
        out.push(level.min(DEPENDENCY_CEILING).to_string());
        out.extend(own.iter().map(|krate| format!("{krate}={level}")));
    }
    out.extend(explicit);
    out.join(",")
}

/// The relay's filter: `RUST_LOG` when set, else `configured`, expanded by
/// [`expand_directives`].
pub fn filter(configured: &str) -> Result<EnvFilter, FilterError> {
    let spec = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| configured.to_owned());
    EnvFilter::builder()
        .parse(expand_directives(&spec, OWN_CRATES))
        .map_err(|source| FilterError { spec, source })
}

/// Whether to colour output written to a stream that `is_terminal`, with
/// `NO_COLOR` holding `no_color`.
pub fn use_colour(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the subscriber: events to stderr, coloured only on a terminal.
pub fn init(configured: &str) -> Result<(), FilterError> {
    let filter = filter(configured)?;
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var(NO_COLOR_VAR).ok().as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_umbra_crates_and_caps_dependencies() {
        assert_eq!(
            expand_directives("trace", OWN_CRATES),
            "info,umbra_relay=trace,umbra_wire=trace"
        );
        assert_eq!(
            expand_directives("debug", &["a"]),
            "info,a=debug",
            "dependencies stay at info"
        );
        assert_eq!(
            expand_directives("warn", &["a"]),
            "warn,a=warn",
            "a quieter level quiets everything"
        );
    }

    #[test]
    fn named_targets_are_honoured_as_given() {
        assert_eq!(
            expand_directives("trace,tungstenite=debug", &["a"]),
            "info,a=trace,tungstenite=debug"
        );
        assert_eq!(
            expand_directives("umbra_relay::connection=debug", &["a"]),
            "umbra_relay::connection=debug"
        );
    }

    #[test]
    fn the_expanded_filter_parses() {
        for spec in ["trace", "info", "off", "debug,sqlx=warn", "error"] {
            EnvFilter::builder()
                .parse(expand_directives(spec, OWN_CRATES))
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
        assert!(EnvFilter::builder()
            .parse(expand_directives("umbra_relay=lots", OWN_CRATES))
            .is_err());
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("")), "empty NO_COLOR means unset");
        assert!(!use_colour(true, Some("1")));
        assert!(
            !use_colour(false, None),
            "files and journald get no escapes"
        );
    }
}
