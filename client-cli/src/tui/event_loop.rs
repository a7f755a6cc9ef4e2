//! Runs `umbra chat`: loads the stored conversations into a [`ChatState`],
//! then redraws after every keyboard event, client-core event and finished
//! background task until the user quits.
//!
//! Slow work (sending, receipts, accepting keys) runs in spawned tasks that
//! report back through a channel, so typing never waits for the network.
//!
//! This loop must never send to a contact whose key change is unaccepted
//! (ChatState never emits such a send, and client-core refuses anyway), and
//! must never accept a key other than the one whose number was on screen.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context as _;
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use umbra_client_core::Event;

use crate::daemon::channel::RpcChannel;
use crate::daemon::client::DaemonConnection;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{time_from_unix_ms, Delivery, Record, Trust};
use crate::session::Session;
use crate::tui::backend::{connection_view, daemon_events, Backend, ChatEvent, ConnectionView};
use crate::tui::render::render;
use crate::tui::state::{Action, ChatState, Connection, FileView, Severity};
use crate::tui::terminal::TerminalGuard;

mod about;
mod alerts;
mod commands;
mod completion;
mod conversation;
mod devices;
mod files;
mod group;
mod perform;

use alerts::{window_title, Alerts};
use completion::apply_completion;
pub(crate) use completion::Completion;
use perform::perform;

/// How often the screen is redrawn with the clock advanced (for "today"
/// decisions). The state's clock is also set at every key press, so a sent
/// message carries the real time, not the last tick.
const CLOCK_TICK: Duration = Duration::from_secs(20);
/// How long quitting waits for sends still being encrypted and queued, so a
/// message typed just before Esc still reaches the durable outbox.
const QUIT_GRACE: Duration = Duration::from_secs(10);

fn need_terminal() -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Failure::user(
            "umbra chat needs a terminal; use `umbra send` and `umbra receive` in scripts",
        ));
    }
    Ok(())
}

/// `umbra chat` on its own: unlocks the store and connects to the relay.
pub async fn run(session: &Session) -> anyhow::Result<ExitStatus> {
    need_terminal()?;
    // The password prompt happens here, before the screen switches to raw mode.
    let client = session.open_client().await?;
    let me = client.whoami().username.to_string();
    let backend = Backend::Local(client.clone());
    let result = async {
        let initial_receipts = load(&backend, &me, &session.server).await?;
        let events = client.events().map(ChatEvent::Core).boxed();
        client.connect().await.context("connecting to the relay")?;
        chat(&backend, initial_receipts, events).await
    }
    .await;
    backend.shutdown().await;
    result
}

/// `umbra chat` while a daemon holds the data directory: no password, the
/// daemon's client and connection, its events as they come.
pub async fn run_through_daemon(
    daemon: DaemonConnection,
    session: &Session,
) -> anyhow::Result<ExitStatus> {
    need_terminal()?;
    let (rpc, notifications) = RpcChannel::new(daemon);
    let call = |method: &'static str| {
        let rpc = rpc.clone();
        async move {
            rpc.call(method, json!({}))
                .await?
                .map_err(|e| anyhow::Error::from(e.into_failure()))
        }
    };
    // Subscribed before loading: an event for something already loaded is
    // dropped by the state (ids are unique), one in between is not lost.
    call("subscribe").await?;
    let who = call("whoami").await?;
    let account = &who["records"][0];
    let me = account["username"].as_str().unwrap_or_default().to_owned();
    let server = account["server"]
        .as_str()
        .map_or_else(|| session.server.clone(), str::to_owned);
    let initial = connection_view(&call("connection").await?).unwrap_or(ConnectionView::Offline);
    let backend = Backend::Daemon(rpc);
    let initial_receipts = load(&backend, &me, &server).await?;
    chat(
        &backend,
        initial_receipts,
        daemon_events(initial, notifications),
    )
    .await
}

async fn load(backend: &Backend, me: &str, server: &str) -> anyhow::Result<Loaded> {
    let mut state = ChatState::new(me, server, time::OffsetDateTime::now_utc());
    let receipts = load_stored(backend, &mut state).await?;
    Ok(Loaded { state, receipts })
}

/// The state with everything stored, and the receipts owed for the
/// conversation opened first.
struct Loaded {
    state: ChatState,
    receipts: Option<Action>,
}

async fn chat(
    backend: &Backend,
    loaded: Loaded,
    mut client_events: BoxStream<'static, ChatEvent>,
) -> anyhow::Result<ExitStatus> {
    let Loaded {
        mut state,
        receipts: initial_receipts,
    } = loaded;

    let alerts = Alerts::from_env()?;
    let notifier = crate::notify::Notifier::from_env()?;
    let mut guard = TerminalGuard::enter().context("preparing the terminal")?;
    let mut keys = EventStream::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
    let mut clock = tokio::time::interval(CLOCK_TICK);
    let mut tasks = JoinSet::new();
    let mut shown_title = String::new();
    // Cleared when the event stream ends, so select stops polling it.
    let mut client_running = true;
    if let Some(action) = initial_receipts {
        perform(backend, action, &done_tx, &mut tasks);
    }

    loop {
        guard
            .terminal()
            .draw(|frame| render(frame, &state))
            .context("drawing the screen")?;

        let until = |at: time::OffsetDateTime| {
            Duration::try_from(at - time::OffsetDateTime::now_utc()).unwrap_or_default()
        };
        let read_wait = state.read_due_at().map(until);
        let typing_wait = state.typing_idle_at().map(until);
        let mut actions: Vec<Action> = tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => state.key_at(key, time::OffsetDateTime::now_utc()),
                Some(Ok(TermEvent::Paste(text))) => {
                    state.paste(&text);
                    state.engage_paste();
                    state.typing_notices(time::OffsetDateTime::now_utc())
                }
                Some(Ok(TermEvent::FocusGained)) => {
                    state.set_focus(true, time::OffsetDateTime::now_utc());
                    Vec::new()
                }
                Some(Ok(TermEvent::FocusLost)) => {
                    state.set_focus(false, time::OffsetDateTime::now_utc());
                    Vec::new()
                }
                // A resize only needs the redraw at the top.
                Some(Ok(_)) => Vec::new(),
                Some(Err(error)) => return Err(error).context("reading the keyboard"),
                None => vec![Action::Quit],
            },
            event = client_events.next(), if client_running => match event {
                Some(ChatEvent::Core(event)) => apply_event(backend, &mut state, event).await,
                Some(ChatEvent::Group(record)) => {
                    group::apply_record(backend, &mut state, record).await
                }
                Some(ChatEvent::Notice(record)) => {
                    apply_notice(&mut state, record);
                    None
                }
                Some(ChatEvent::Connection(view)) => {
                    apply_connection(&mut state, view);
                    None
                }
                None => {
                    client_running = false;
                    state.connection = Connection::Offline;
                    state.set_notice(Severity::Error, "the client stopped; press Esc to quit");
                    None
                }
            }
            .into_iter()
            .collect(),
            Some(done) = done_rx.recv() => {
                apply_completion(&mut state, done);
                Vec::new()
            }
            // The dwell on the open conversation ended: settled below.
            () = tokio::time::sleep(read_wait.unwrap_or_default()), if read_wait.is_some() => {
                Vec::new()
            }
            // The draft sat unchanged: the typing stop is settled below.
            () = tokio::time::sleep(typing_wait.unwrap_or_default()), if typing_wait.is_some() => {
                Vec::new()
            }
            _ = clock.tick() => Vec::new(),
        };
        actions.extend(state.settle(time::OffsetDateTime::now_utc()));
        actions.extend(state.typing_idle(time::OffsetDateTime::now_utc()));

        if state.take_alert() && alerts.bell {
            guard.bell();
        }
        if let Some(arrived) = state.take_alert_about() {
            let arrival = crate::notify::Arrival {
                from: &arrived.from,
                group: arrived.group.as_deref(),
                body: &arrived.body,
            };
            // Escapes go to the terminal chat draws on.
            notifier.notify(&arrival, Some(&mut std::io::stdout()));
        }
        let title = window_title(state.unread_total());
        if title != shown_title {
            guard.set_title(&title);
            shown_title = title;
        }
        let mut quit = false;
        for action in actions {
            match action {
                Action::Quit => quit = true,
                action => perform(backend, action, &done_tx, &mut tasks),
            }
        }
        if quit {
            break;
        }
        while tasks.try_join_next().is_some() {}
    }
    let finished = tokio::time::timeout(QUIT_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(guard);
    if finished.is_err() {
        eprintln!("umbra: some sends were still in progress at exit; check with `umbra chat`");
    }
    Ok(ExitStatus::Success)
}

/// Contacts, their trust and the stored history, before the screen opens.
/// Returns the read receipts owed for the conversation opened first.
async fn load_stored(backend: &Backend, state: &mut ChatState) -> anyhow::Result<Option<Action>> {
    for contact in backend.contacts().await.context("listing contacts")? {
        // Conversations are keyed by the display name, so a newcomer to a
        // name the user knows (`name#xxxxxxxx`) is never shown as that contact.
        state.add_contact(&contact.display_name, contact.trust);
        if contact.trust == Trust::Changed {
            let number = backend.safety_number_text(&contact.display_name).await;
            state.key_changed(&contact.display_name, &number);
        }
    }
    for conversation in backend
        .conversations()
        .await
        .context("listing conversations and their history")?
    {
        state.set_timer(&conversation.peer, conversation.disappearing);
        for entry in conversation.history {
            state.load_message(&conversation.peer, about::chat_message(entry));
        }
        show_files(state, &conversation.peer, conversation.files);
        if conversation.key_changed {
            let number = backend.safety_number_text(&conversation.peer).await;
            state.key_changed(&conversation.peer, &number);
        }
    }
    group::load(backend, state).await;
    // The most recent conversation opens first; it is read once the user
    // has looked at it for a moment (see state::reading), not at once.
    if let Some(first) = state.conversations.first().map(|c| c.username.clone()) {
        state.browse(&first);
    }
    Ok(None)
}

/// Stored file messages of `peer` shown as the files they carry.
fn show_files(
    state: &mut ChatState,
    peer: &str,
    files: Vec<(umbra_client_core::MessageId, umbra_client_core::FileInfo)>,
) {
    for (id, f) in files {
        state.set_file(peer, &id.to_hex(), FileView::new(&f.id, &f.name, f.size));
    }
}

async fn apply_event(backend: &Backend, state: &mut ChatState, event: Event) -> Option<Action> {
    match event {
        Event::Message {
            from,
            id,
            body,
            received_at_ms,
            reply_to,
            file,
            ..
        } => {
            let id = id.to_hex();
            let action =
                state.receive_message(&from, &id, &body, time_from_unix_ms(received_at_ms));
            if let Some(target) = reply_to {
                state.set_reply_to(&from, &id, &target.to_hex());
            }
            if let Some(f) = file {
                state.set_file(&from, &id, FileView::new(&f.id, &f.name, f.size));
            }
            action
        }
        // Ours, from another device of this account: already in the
        // stored conversation, shown live in it.
        Event::SentElsewhere {
            to,
            id,
            body,
            sent_at_ms,
            reply_to,
            file,
        } => {
            let id = id.to_hex();
            state.sent_elsewhere(&to, &id, &body, time_from_unix_ms(sent_at_ms));
            if let Some(target) = reply_to {
                state.set_reply_to(&to, &id, &target.to_hex());
            }
            if let Some(f) = file {
                state.set_file(&to, &id, FileView::new(&f.id, &f.name, f.size));
            }
            None
        }
        Event::MessageChanged {
            group: None,
            from,
            from_account,
            target,
            change,
            ..
        } => {
            let by = about::account_key(&from_account);
            state.message_changed(&from, &by, &target.to_hex(), &change);
            None
        }
        // Nothing changed; the sender's client is wrong or late, and the
        // conversation says so.
        Event::MessageChangeRefused {
            group: None,
            from,
            id,
            reason,
            ..
        } => {
            let now = time::OffsetDateTime::now_utc();
            state.change_refused(&from, &from, &id.to_hex(), reason.code(), now);
            None
        }
        // What happened to a whole 1:1 conversation.
        event @ (Event::ConversationDeleted { .. }
        | Event::DisappearingTimerChanged { .. }
        | Event::MessagesExpired { .. }) => {
            conversation::apply_event(state, event);
            None
        }
        Event::Sent { to, id } => {
            state.receipt(&to, &id.to_hex(), Delivery::Sent);
            None
        }
        Event::SendFailed { to, id, reason } => {
            state.refused(&to, &id.to_hex(), &reason.to_string());
            None
        }
        Event::DeliveryReceipt { from, ids } => {
            for id in ids {
                state.receipt(&from, &id.to_hex(), Delivery::Delivered);
            }
            None
        }
        Event::ReadReceipt { from, ids } => {
            for id in ids {
                state.receipt(&from, &id.to_hex(), Delivery::Read);
            }
            None
        }
        Event::Typing { from, started } => {
            state.typing(&from, started);
            None
        }
        Event::GroupTyping {
            group,
            from,
            started,
        } => {
            state.group_typing(&group.to_hex(), &from, started);
            None
        }
        Event::KeyChanged {
            username,
            safety_number,
            ..
        } => {
            state.key_changed(username.as_str(), &safety_number.to_string());
            None
        }
        Event::OwnKeyNotPublishedByMe { .. }
        | Event::DirectoryInconsistent { .. }
        | Event::DirectoryRefused { .. } => {
            if let Some(record) = crate::commands::receive::records_of(event)
                .into_iter()
                .next()
            {
                apply_notice(state, record);
            }
            None
        }
        Event::DecryptionFailed { from, reason } => {
            decryption_failed(state, from.as_deref(), &reason.to_string());
            None
        }
        Event::Connection(connection) => {
            apply_connection(state, ConnectionView::from(&connection));
            None
        }
        Event::Lagged { missed } => {
            state.set_notice(
                Severity::Error,
                &format!("{missed} updates were missed; restart umbra chat to reload"),
            );
            None
        }
        Event::NameReassigned { username, .. } => {
            state.set_notice(
                Severity::Error,
                &format!(
                    "the name {username} now belongs to another account too; sending to \
                     {username} is blocked until you choose: umbra verify {username}"
                ),
            );
            None
        }
        // Group events: read as records, the way the daemon sends them.
        other => {
            let Backend::Local(client) = backend else {
                return None;
            };
            let records = crate::commands::group::events::records_for_group(client, &other)
                .await
                .unwrap_or_default();
            let mut action = None;
            for record in records {
                action = group::apply_record(backend, state, record).await.or(action);
            }
            action
        }
    }
}

/// A daemon's notice, shown as the typed event it stands for is.
fn apply_notice(state: &mut ChatState, record: Record) {
    match record {
        Record::SendFailed { to, id, reason, .. } => state.refused(&to, &id, &reason),
        Record::KeyChanged {
            contact,
            safety_number,
            ..
        } => state.key_changed(&contact, &safety_number),
        Record::DecryptionFailed { from, reason, .. } => {
            decryption_failed(state, from.as_deref(), &reason)
        }
        alarm @ (Record::OwnKeyNotPublishedByMe { .. } | Record::DirectoryAlarm { .. }) => {
            state.set_notice(Severity::Error, &alarm.to_human());
        }
        other => {
            about::apply_record(state, &other);
        }
    }
}

fn decryption_failed(state: &mut ChatState, from: Option<&str>, reason: &str) {
    let who = from.unwrap_or("an unknown sender");
    state.set_notice(
        Severity::Error,
        &format!("could not decrypt a message from {who}: {reason}"),
    );
}

fn apply_connection(state: &mut ChatState, connection: ConnectionView) {
    match connection {
        ConnectionView::Connected => state.set_connection(Connection::Online, None),
        ConnectionView::Connecting => state.set_connection(Connection::Connecting, None),
        ConnectionView::Reconnecting { retry_in, reason } => state.set_connection(
            Connection::Connecting,
            Some(&format!(
                "relay connection lost ({reason}); retrying in {}s",
                retry_in.as_secs()
            )),
        ),
        ConnectionView::Closed { reason } => state.connection_ended(Connection::Closed, &reason),
        ConnectionView::Replaced => state.connection_ended(
            Connection::Replaced,
            "another umbra for this account connected",
        ),
        ConnectionView::Offline => state.set_connection(Connection::Offline, None),
    }
}
