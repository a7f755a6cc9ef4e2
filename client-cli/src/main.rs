//! `umbra`: the terminal client of umbra, end-to-end encrypted chat.
//!
//! Parses the command line, prepares the data directory and runs one
//! command on a tokio runtime, then turns the outcome into one of the exit
//! statuses documented in docs/CLI.md. Errors are one sanitised line on
//! stderr, never a backtrace.
//!
//! This binary must never take a password from its arguments, print one, or
//! write untrusted text to the terminal without sanitising it.

mod cli;
mod commands;
mod core_errors;
mod daemon;
mod data_dir;
mod exit_status;
mod logging;
mod notify;
mod output;
mod password;
mod qr;
mod sanitize;
mod session;
mod strength;
mod tui;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::cli::{AccountCommand, Cli, Command, FileCommand, PasswordCommand};
use crate::exit_status::{classify, error_line, ExitStatus};
use crate::sanitize::SafeText;
use crate::session::Session;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints usage errors (exit 2) and --help/--version (exit 0).
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    init_logging();
    data_dir::restrict_new_files();

    match run(cli) {
        Ok(status) => status.into(),
        Err(error) if is_broken_pipe(&error) => {
            // The reader went away (`umbra receive | head -1`): everything
            // received is in the local store, so there is nothing to report.
            ExitCode::SUCCESS
        }
        Err(error) => {
            let status = classify(&error);
            // The cause chain on one line; sanitising it matters because
            // relay messages and usernames can end up in errors.
            eprintln!("umbra: {}", SafeText::line(&error_line(&error)));
            status.into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging() {
    logging::init();
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if let Command::Completions { shell } = cli.command {
        let mut command = Cli::command();
        clap_complete::generate(shell, &mut command, "umbra", &mut std::io::stdout());
        return Ok(ExitStatus::Success);
    }

    let mut session = Session::prepare(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // A daemon serving this directory does the work: no password, no
        // key stretching, no waiting on the lock it holds.
        if let Some(daemon) = daemon::client::DaemonConnection::find(&session.data_dir).await {
            return daemon::client::dispatch(daemon, &session, &cli.command).await;
        }
        // --agent-ttl: start one (the password is read here, once) and go
        // through it; later commands find it above.
        if let Some(ttl) = cli.agent_ttl.filter(|ttl| !ttl.is_zero()) {
            if daemon::agent::serves(&cli.command) {
                if let Some(daemon) = daemon::agent::start(&session, ttl).await? {
                    return daemon::client::dispatch(daemon, &session, &cli.command).await;
                }
            }
        }
        // While waiting for the lock, a daemon that starts serving (it
        // holds the lock while it asks for its password) takes the command.
        let dir = session.data_dir.clone();
        let served = tokio::select! {
            locked = session.lock_data_dir() => {
                locked?;
                None
            }
            daemon = daemon::client::DaemonConnection::wait_for(&dir) => Some(daemon),
        };
        if let Some(daemon) = served {
            return daemon::client::dispatch(daemon, &session, &cli.command).await;
        }
        dispatch(&session, &cli.command).await
    })
}

async fn dispatch(session: &Session, command: &Command) -> anyhow::Result<ExitStatus> {
    use commands::*;
    match command {
        Command::Register { username } => account::register(session, username).await,
        Command::Login {
            username,
            new_identity,
            store_password_file,
        } => {
            account::login(
                session,
                username,
                *new_identity,
                store_password_file.as_deref(),
            )
            .await
        }
        Command::Link => link::link(session).await,
        Command::LinkAccept { code } => link::accept(session, code).await,
        Command::Logout => account::logout(session).await,
        Command::Whoami => account::whoami(session).await,
        Command::Directory(cli::DirectoryCommand::Root) => commands::directory::root(session).await,
        Command::Send {
            username,
            message,
            timeout,
            reply_to,
        } => {
            let (reply_to, timeout) = (reply_to.as_deref(), Duration::from_secs(*timeout));
            send::run(session, username, message, reply_to, timeout).await
        }
        Command::React(args) => {
            let change = about::Change::React {
                emoji: args.emoji.clone(),
                remove: args.remove,
            };
            about::run(session, about::About::new(&args.target, change)).await
        }
        Command::Edit(args) => {
            let change = about::Change::Edit {
                message: args.message.clone(),
            };
            about::run(session, about::About::new(&args.target, change)).await
        }
        Command::Delete(args) => {
            let change = about::Change::Delete;
            about::run(session, about::About::new(&args.target, change)).await
        }
        Command::DeleteConversation {
            username,
            everyone,
            timeout,
        } => {
            let params = delete_conversation::Params::new(username, *everyone, *timeout);
            delete_conversation::run(session, params).await
        }
        Command::Disappearing {
            username,
            duration,
            timeout,
            group,
        } => {
            let params = disappearing::Params::new(username, duration, *timeout, *group);
            disappearing::run(session, params).await
        }
        Command::Receive {
            timeout,
            follow: false,
        } => receive::run(session, Duration::from_secs(*timeout)).await,
        Command::Receive {
            timeout,
            follow: true,
        } => follow::run(session, Duration::from_secs(*timeout)).await,
        Command::Contacts => contacts::run(session).await,
        Command::Search { text, limit } => search::run(session, text, *limit).await,
        Command::Settings(args) => settings::run(session, args.change).await,
        Command::Block(args) => {
            block::run(session, block::Action::Block(args.contact.clone())).await
        }
        Command::Unblock(args) => {
            block::run(session, block::Action::Unblock(args.contact.clone())).await
        }
        Command::Blocked => block::run(session, block::Action::List).await,
        Command::Devices(args) => devices::run(session, args.change).await,
        Command::Verify(args) => verify::run(session, args).await,
        Command::Chat => tui::run(session).await,
        Command::Daemon(args) => daemon::run(session, args).await,
        Command::Account(AccountCommand::Rename { new_username }) => {
            account::rename(session, new_username).await
        }
        Command::Account(AccountCommand::Delete { yes }) => account::delete(session, *yes).await,
        Command::Password(PasswordCommand::Change { new_password_file }) => {
            password::change(session, new_password_file.as_deref()).await
        }
        Command::Group(command) => group::run(session, command).await,
        Command::File(FileCommand::Send {
            username,
            path,
            name,
            timeout,
            group,
        }) => {
            let timeout = Duration::from_secs(*timeout);
            let to = file::To::new(username, *group);
            file::send(session, to, path, name.as_deref(), timeout).await
        }
        Command::File(FileCommand::Get { id, path }) => {
            file::get(session, id, path.as_deref()).await
        }
        Command::Completions { .. } => Ok(ExitStatus::Success),
    }
}
