//! `umbra`'s log setup (`UMBRA_LOG`, off unless asked for, to stderr).
//!
//! A bare level (`UMBRA_LOG=trace`) applies to umbra's own crates only;
//! dependencies stay at `info` or quieter unless a directive names them
//! (`UMBRA_LOG=trace,tungstenite=trace`), because tungstenite at trace logs
//! every frame's payload (the session token, usernames, envelopes) and sqlx
//! at debug logs SQL. The relay applies the same rule (its `logging.rs`).
//! Colour only on a terminal without `NO_COLOR`.
//!
//! Must never: raise a dependency above `info` because of a bare level, or
//! write escape codes into a file or pipe.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Log verbosity comes from this variable (tracing's filter syntax); logs go
/// to stderr and are off unless asked for, so they never mix with output.
pub const LOG_ENV: &str = "UMBRA_LOG";

/// Directive targets match by prefix, so `umbra` covers the binary and
/// every `umbra_*` crate it links.
const OWN_CRATES: &[&str] = &["umbra"];

/// The most a dependency logs unless a directive names it.
const DEPENDENCY_CEILING: LevelFilter = LevelFilter::INFO;

/// Rewrites a filter so that a bare level names umbra's crates only.
fn expand_directives(spec: &str) -> String {
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
        out.extend(OWN_CRATES.iter().map(|krate| format!("{krate}={level}")));
    }
    out.extend(explicit);
    out.join(",")
}

/// Installs the subscriber; an unset or invalid `UMBRA_LOG` means no logs.
pub fn init() {
    let filter = std::env::var(LOG_ENV)
        .ok()
        .and_then(|spec| EnvFilter::builder().parse(expand_directives(&spec)).ok())
        .unwrap_or_else(|| EnvFilter::new("off"));
    let no_color = std::env::var("NO_COLOR").is_ok_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_umbra_and_keeps_dependencies_at_info() {
        assert_eq!(expand_directives("trace"), "info,umbra=trace");
        assert_eq!(expand_directives("warn"), "warn,umbra=warn");
        assert_eq!(
            expand_directives("debug,tungstenite=trace"),
            "info,umbra=debug,tungstenite=trace",
            "a named dependency is honoured"
        );
        assert_eq!(
            expand_directives("umbra_client_core=debug"),
            "umbra_client_core=debug"
        );
    }
}
