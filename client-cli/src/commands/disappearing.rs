//! `disappearing USERNAME DURATION|off`: set the disappearing-message
//! timer of the 1:1 conversation with a contact (client-core's
//! `set_disappearing`, docs/PROTOCOL.md §10.8, §12.18). Both sides then
//! delete each message from their stores that long after it was sent or
//! received. The daemon's `disappearing` method runs [`perform`].
//!
//! The change is an outbox entry like a message: `done` once the relay
//! accepted it, exit 3 (with the timer already set here) when it stays
//! queued, to go out with the next command that connects.
//!
//! Must never print a message text, or report a timer that was not stored.

use std::time::Duration;

use anyhow::Context as _;
use umbra_client_core::{Client, Error};
use umbra_protocol::consts::MAX_EXPIRATION_TIMER_SECS;
use umbra_protocol::wire::Username;

use crate::commands::send::{report_refused, wait_for_outcome, Outcome};
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{Printer, Record};
use crate::session::Session;

/// The change, as the command or the daemon got it (the daemon's params:
/// `username`, `duration` (as on the command line), `timeout` (default 30)).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    pub(crate) username: String,
    pub(crate) duration: String,
    pub(crate) timeout: Option<u64>,
    /// `username` names a group (`disappearing --group`).
    #[serde(default)]
    pub(crate) group: bool,
}

impl Params {
    pub(crate) fn new(username: &str, duration: &str, timeout: u64, group: bool) -> Self {
        Self {
            username: username.to_owned(),
            duration: duration.to_owned(),
            timeout: Some(timeout),
            group,
        }
    }
}

/// `30s`, `5m`, `1h`, `2d`, `1w` (whole numbers; a bare number is
/// seconds) up to four weeks; `off` or `0` is off (0).
pub fn parse_timer(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let bad = || format!("{text:?}: expected off or a whole number with s, m, h, d or w (e.g. 1h)");
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        "w" => 7 * 24 * 3600,
        _ => return Err(bad()),
    };
    let count: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = count.saturating_mul(scale);
    if seconds > u64::from(MAX_EXPIRATION_TIMER_SECS) {
        return Err(format!("{text:?}: at most four weeks (4w)"));
    }
    u32::try_from(seconds).map_err(|_| bad())
}

/// The timer as people say it: `off`, or its largest whole unit (`90s`,
/// `5m`, `1h`, `2d`, `1w`).
pub fn format_timer(seconds: u32) -> String {
    if seconds == 0 {
        return "off".to_owned();
    }
    for (unit, size) in [
        ("w", 7 * 24 * 3600),
        ("d", 24 * 3600),
        ("h", 3600),
        ("m", 60),
    ] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// The command: opens the client, performs, prints.
pub async fn run(session: &Session, params: Params) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = perform(&client, &params, &mut session.printer()).await;
    client.shutdown().await;
    result
}

/// Sets the timer and prints one `done` record (`"disappearing"`), or a
/// `send_failed` when the relay refused the change for good.
pub(crate) async fn perform<W: std::io::Write>(
    client: &Client,
    params: &Params,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let who = &params.username;
    let seconds = parse_timer(&params.duration)
        .map_err(|e| Failure::new(ExitStatus::Usage, e))
        .with_context(|| format!("setting disappearing messages with {who}"))?;
    if params.group {
        return in_group(client, params, seconds, printer).await;
    }
    let name = Username::parse(who)
        .map_err(Error::from)
        .with_context(|| format!("setting disappearing messages with {who}"))?;
    // Subscribed first so the change's outcome cannot slip past.
    let events = client.events();
    let id = client
        .set_disappearing(&name, seconds)
        .await
        .with_context(|| format!("setting disappearing messages with {who}"))?;
    let timeout = Duration::from_secs(params.timeout.unwrap_or(30));
    let sending = wait_for_outcome(client, events, who, id, timeout).await?;
    let shown = format_timer(seconds);
    match sending.outcome {
        Outcome::Accepted => {
            printer.emit(&Record::Done {
                action: "disappearing".to_owned(),
                detail: format!("disappearing messages with {who} set to {shown}"),
                group: None,
            })?;
            Ok(ExitStatus::Success)
        }
        Outcome::Refused(reason) => report_refused(
            printer,
            who,
            id,
            reason,
            format!(
                "disappearing messages with {who} are {shown} here, but the relay \
                 refused the change for {who}: {reason}"
            ),
        ),
    }
}

/// `disappearing --group GROUP DURATION`: the group's timer, set for
/// every member by one group message, reported as `group send` reports
/// (a `send_failed` per member not reached, exit 3), else one `done`.
async fn in_group<W: std::io::Write>(
    client: &Client,
    params: &Params,
    seconds: u32,
    printer: &mut Printer<W>,
) -> anyhow::Result<ExitStatus> {
    let timeout = Duration::from_secs(params.timeout.unwrap_or(30));
    let send = |id| async move {
        let report = client.set_group_disappearing(&id, seconds).await?;
        Ok((report, ()))
    };
    let done = |found: crate::commands::group::Found, _id, ()| Record::Done {
        action: "disappearing".to_owned(),
        detail: format!(
            "disappearing messages in {} set to {}",
            crate::sanitize::SafeText::line(&found.reference.display_name),
            format_timer(seconds)
        ),
        group: Some(found.reference),
    };
    let group = &params.username;
    crate::commands::group::send::post_as(client, printer, group, timeout, send, done)
        .await
        .with_context(|| format!("setting disappearing messages in {group}"))
}

#[cfg(test)]
mod tests {
    use super::{format_timer, parse_timer};
    use crate::output::Record;

    #[test]
    fn a_timer_change_prints_as_documented_in_json_and_for_people() {
        let record = Record::DisappearingTimer {
            with: "alice".into(),
            by_peer: true,
            seconds: 3600,
        };
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"type": "disappearing_timer", "with": "alice", "by_peer": true, "seconds": 3600})
        );
        assert_eq!(record.to_human(), "alice set disappearing messages to 1h");
        let ours = Record::DisappearingTimer {
            with: "bob".into(),
            by_peer: false,
            seconds: 0,
        };
        assert_eq!(
            ours.to_human(),
            "you set disappearing messages with bob to off"
        );
    }

    #[test]
    fn timers_take_a_unit_off_is_zero_and_four_weeks_is_the_most() {
        assert_eq!(parse_timer("off"), Ok(0));
        assert_eq!(parse_timer("0"), Ok(0));
        assert_eq!(parse_timer("2"), Ok(2));
        assert_eq!(parse_timer("2s"), Ok(2));
        assert_eq!(parse_timer("5m"), Ok(300));
        assert_eq!(parse_timer("1h"), Ok(3600));
        assert_eq!(parse_timer("4w"), Ok(28 * 24 * 3600));
        assert!(parse_timer("29d").is_err());
        assert!(parse_timer("1y").is_err());
        assert!(parse_timer("h").is_err());
        for seconds in [0, 2, 90, 300, 3600, 86_400, 604_800] {
            assert_eq!(parse_timer(&format_timer(seconds)), Ok(seconds));
        }
        assert_eq!(format_timer(3600), "1h");
        assert_eq!(format_timer(90), "90s");
    }
}
