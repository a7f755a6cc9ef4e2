//! `umbra search` defaults and limits.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

/// `search --limit` when none is given (also the daemon's `search`).
pub const SEARCH_DEFAULT_LIMIT: usize = 50;

/// `search --limit`: 1 to client-core's most.
pub(super) fn parse_search_limit(text: &str) -> Result<usize, String> {
    let max = umbra_client_core::MAX_SEARCH_LIMIT;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {max}")),
    }
}
