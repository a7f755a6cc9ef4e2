//! `umbra group ...`: group chats. One file per subcommand, as the other
//! commands are; this file holds what they share: reading the groups the
//! account is in (as [`view::GroupSummary`]), naming one from the command
//! line ([`resolve`]), and the `done` record a change prints.
//!
//! Each subcommand has one function that runs against an unlocked
//! client-core `Client` and prints to any [`Printer`], so the daemon's
//! `group.*` methods run exactly the code a direct command runs.
//!
//! Must never: act on a group the user did not name unambiguously, or print
//! a group or member name except through the sanitising output paths.

pub mod add;
pub mod create;
pub mod events;
pub mod leave;
pub mod list;
pub mod members;
pub mod promote;
pub mod remove;
pub mod rename;
pub mod resolve;
pub mod send;
pub mod unreported;
pub mod view;

use std::time::Duration;

use anyhow::Context as _;
use futures_util::{FutureExt, StreamExt};
use umbra_client_core::{Client, Error, Event, GroupId, GroupSendReport, MemberOutcome, PeerRef};

use crate::cli::GroupCommand;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{GroupRef, Printer, Record};
use crate::session::Session;
use view::{GroupSummary, MemberSummary};

/// Runs one `umbra group` subcommand on its own (no daemon).
pub async fn run(session: &Session, command: &GroupCommand) -> anyhow::Result<ExitStatus> {
    // Read before the store is unlocked: an empty message should not cost
    // a password prompt.
    let text = match command {
        GroupCommand::Send { message, .. } => Some(send::message_text(message)?),
        _ => None,
    };
    let client = session.open_client().await?;
    let mut printer = session.printer();
    // Subscribed first, so what arrives while the command runs is shown.
    let mut events = client.events();
    let result = match (command, text) {
        (
            GroupCommand::Send {
                group,
                timeout,
                reply_to,
                ..
            },
            Some(text),
        ) => {
            let reply_to = reply_to.as_deref();
            send::send(
                &client,
                &mut printer,
                group,
                &text,
                reply_to,
                secs(*timeout),
            )
            .await
        }
        _ => execute(&client, &mut printer, command).await,
    };
    let shown = print_notices(&client, &mut events, &mut printer).await;
    client.shutdown().await;
    shown.and(result)
}

/// What arrived while a command ran, printed as `receive` would print it
/// (as `send` does): messages stay stored for the next `receive`, and
/// this account's own group changes are the command's `done` already.
async fn print_notices<W: std::io::Write>(
    client: &Client,
    events: &mut futures_util::stream::BoxStream<'static, Event>,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    let me = client.whoami().username.to_string();
    while let Some(Some(event)) = events.next().now_or_never() {
        match &event {
            // Messages are stored: the next `receive` prints them.
            Event::Message { .. } | Event::GroupMessage { .. } | Event::Connection(_) => continue,
            Event::GroupMembershipChanged { by, .. } if *by == me => continue,
            _ => {}
        }
        for record in crate::commands::receive::records_for(client, event).await {
            printer.emit(&record)?;
        }
    }
    Ok(())
}

/// Any subcommand against an unlocked client (for `send`, `message` is the
/// text itself: the caller has read `-` from stdin): the direct command
/// and the daemon both run this.
pub(crate) async fn execute<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    command: &GroupCommand,
) -> anyhow::Result<ExitStatus> {
    match command {
        GroupCommand::Create {
            name,
            members,
            members_may_rename,
            wait,
        } => {
            let policy = umbra_client_core::GroupPolicy {
                members_may_rename: *members_may_rename,
            };
            create::create(client, printer, name, members, policy, secs(wait.timeout)).await
        }
        GroupCommand::Add {
            group,
            member,
            wait,
        } => add::add(client, printer, group, member, secs(wait.timeout)).await,
        GroupCommand::Remove {
            group,
            member,
            wait,
        } => remove::remove(client, printer, group, member, secs(wait.timeout)).await,
        GroupCommand::Promote {
            group,
            member,
            wait,
        } => promote::promote(client, printer, group, member, secs(wait.timeout)).await,
        GroupCommand::Leave { group, wait } => {
            leave::leave(client, printer, group, secs(wait.timeout)).await
        }
        GroupCommand::Rename {
            group,
            new_name,
            wait,
        } => rename::rename(client, printer, group, new_name, secs(wait.timeout)).await,
        GroupCommand::Members { group } => members::members(client, printer, group).await,
        GroupCommand::List => list::list(client, printer).await,
        GroupCommand::Send {
            group,
            message,
            timeout,
            reply_to,
        } => {
            let reply_to = reply_to.as_deref();
            send::send(client, printer, group, message, reply_to, secs(*timeout)).await
        }
    }
}

fn secs(timeout: u64) -> Duration {
    Duration::from_secs(timeout)
}

/// Every group this account knows, with its members, as the CLI shows them.
pub(crate) async fn summaries(client: &Client) -> anyhow::Result<Vec<GroupSummary>> {
    let groups = client.groups().await.context("listing groups")?;
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let members = client
            .group_members(&group.id)
            .await
            .context("reading a group's members")?;
        let admin = members.iter().any(|m| m.is_me && m.admin);
        out.push(GroupSummary {
            id: group.id.to_hex(),
            name: group.name,
            version: group.version,
            admin,
            active: group.active,
            members_may_rename: group.members_may_rename,
            members: members
                .into_iter()
                .map(|m| MemberSummary {
                    username: m.username,
                    account_id: m.account_id.to_hex(),
                    admin: m.admin,
                    me: m.is_me,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// The group a GROUP argument names, how records name it, and its id.
pub(crate) struct Found {
    pub summary: GroupSummary,
    pub reference: GroupRef,
    pub id: GroupId,
}

/// Resolves GROUP among this account's groups ([`resolve::resolve`]).
pub(crate) async fn find(client: &Client, text: &str) -> anyhow::Result<Found> {
    let groups = summaries(client).await?;
    let summary = resolve::resolve(&groups, text)?.clone();
    let id = GroupId::from_hex(&summary.id)
        .ok_or_else(|| Failure::new(ExitStatus::Internal, "a group id that is not hex"))?;
    Ok(Found {
        reference: reference_in(&groups, &summary.id, &summary.name),
        summary,
        id,
    })
}

/// How records name the group `id` called `name` (its name when the
/// record was made, which a later rename may have changed): `name`, or
/// `name#xxxxxxxx` when another of `groups` is called `name` too.
pub(crate) fn reference_in(groups: &[GroupSummary], id: &str, name: &str) -> GroupRef {
    let shared = groups.iter().any(|g| g.id != id && g.name == name);
    let display_name = if shared {
        format!(
            "{name}#{}",
            id.get(..resolve::LABEL_HEX_DIGITS).unwrap_or(id)
        )
    } else {
        name.to_owned()
    };
    GroupRef {
        id: id.to_owned(),
        name: name.to_owned(),
        display_name,
    }
}

/// A MEMBER argument as client-core takes it (a username or a
/// `name#xxxxxxxx` label); a malformed one is exit 1.
pub(crate) fn member(text: &str) -> anyhow::Result<PeerRef> {
    text.parse::<PeerRef>()
        .map_err(Error::from)
        .with_context(|| format!("{text:?} is not a username"))
}

/// After a change: wait for it to leave for every member, then print the
/// `done` record. The change is made either way; if some members could
/// not be told (no session could be made, the relay refused), the command
/// still fails (exit 3) naming them.
pub(crate) async fn finish_change<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    action: &str,
    detail: String,
    group: GroupRef,
    report: &GroupSendReport,
    timeout: Duration,
) -> anyhow::Result<ExitStatus> {
    if report
        .members
        .iter()
        .any(|m| m.outcome == MemberOutcome::Queued)
    {
        client.flush_outbox(timeout).await.with_context(|| {
            format!(
                "the change is made here and queued; the members of {} are told the next \
                 time umbra connects",
                group.display_name
            )
        })?;
    }
    let missed: Vec<String> = report
        .failed()
        .map(|m| format!("{} ({})", m.username, outcome_reason(&m.outcome)))
        .collect();
    let label = group.display_name.clone();
    printer.emit(&Record::Done {
        action: action.to_owned(),
        detail: detail.clone(),
        group: Some(group),
    })?;
    if !missed.is_empty() {
        // The change is made, but these members do not know it: a script
        // must not take the group for settled.
        return Err(Failure::new(
            ExitStatus::Network,
            format!(
                "{detail}, but {} of the members of {label} could not be told: {}",
                missed.len(),
                missed.join(", ")
            ),
        )
        .into());
    }
    Ok(ExitStatus::Success)
}

/// Why a member was not reached, in words.
pub(crate) fn outcome_reason(outcome: &MemberOutcome) -> String {
    match outcome {
        MemberOutcome::Reached => "reached".to_owned(),
        MemberOutcome::Queued => "queued".to_owned(),
        MemberOutcome::Refused(code) => format!("refused by the relay: {code:?}"),
        MemberOutcome::NotSent(why) => why.clone(),
    }
}
