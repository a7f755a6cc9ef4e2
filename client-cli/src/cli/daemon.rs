//! `umbra daemon` arguments, and the duration syntax it shares with the
//! global `--agent-ttl`.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Also serve JSON-RPC on standard input/output (for a parent process);
    /// the daemon stops when standard input closes.
    #[arg(long)]
    pub stdio: bool,
    /// Also serve on this loopback TCP address (e.g. 127.0.0.1:7900);
    /// clients authenticate with the token in umbra-daemon.token.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<std::net::SocketAddr>,
    /// Exit (dropping the unlocked key) once no client has been connected
    /// for this long (e.g. 15m, 1h, 90s; 0 or off: never, the default).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_exit: Option<std::time::Duration>,
    /// Read the password from standard input (until it closes) instead of
    /// the usual sources: how --agent-ttl hands it to the daemon it starts.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The longest `--agent-ttl`/`--idle-exit`: a week (an agent that never
/// forgets is `umbra daemon` without `--idle-exit`).
pub const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// `90`, `90s`, `15m`, `2h` (whole numbers); `0` and `off` mean zero,
/// which callers take as "off".
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(std::time::Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        _ => {
            return Err(format!(
                "{text:?}: expected a whole number with s, m or h (e.g. 15m)"
            ))
        }
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number with s, m or h (e.g. 15m)"))?;
    let duration = std::time::Duration::from_secs(count.saturating_mul(scale));
    if duration > MAX_IDLE {
        return Err(format!("{text:?}: at most a week (168h)"));
    }
    Ok(duration)
}
