//! `link` and `link-accept`: linking a new device to the account
//! (docs/PROTOCOL.md §12.17). `link` runs on a device of the account: it
//! prints the link code first (a `link_code` record, and on a terminal a
//! QR code of it), then waits up to five minutes for the new device and
//! reports its id. `link-accept CODE` runs in an empty data directory: it
//! asks for a password for the new store as `register` does, and makes
//! the directory a device of that account.
//!
//! Must never: print the code anywhere but standard output (no log, no
//! error message), or take over a data directory that holds an account.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use umbra_client_core::Client;
use zeroize::Zeroizing;

use crate::exit_status::ExitStatus;
use crate::output::Record;
use crate::password::Purpose;
use crate::qr;
use crate::session::Session;

pub async fn link(session: &Session) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = run_link(session, &client).await;
    client.shutdown().await;
    result
}

async fn run_link(session: &Session, client: &Client) -> anyhow::Result<ExitStatus> {
    let invite = client
        .link_device()
        .await
        .with_context(|| format!("starting to link a device on {}", session.server))?;
    let mut printer = session.printer();
    printer.emit(&Record::LinkCode {
        link_code: invite.code().to_owned(),
    })?;
    if !session.json && std::io::stdout().is_terminal() {
        println!("{}", qr::render(invite.code()));
        eprintln!(
            "enter this code on the new device (umbra --data-dir DIR link-accept CODE); \
             waiting up to five minutes"
        );
    }
    let device = invite.complete().await.context("linking the new device")?;
    printer.emit(&Record::Done {
        action: "link".into(),
        detail: format!("linked a new device: device {device} of this account"),
        group: None,
    })?;
    Ok(ExitStatus::Success)
}

pub async fn accept(session: &Session, code: &str) -> anyhow::Result<ExitStatus> {
    // Core decides whether this store may be linked into: it refuses one
    // that holds an account before any traffic, and sets up one whose
    // setup never committed (a crash or a failure before its one
    // transaction) after checking the password it was created with. So a
    // store with a header is asked for that password once, not for a new
    // one.
    let leftover = Client::has_account(&session.config())
        .await
        .context("reading the local store")?;
    let code = read_code(code)?;
    let password = if leftover {
        session.password(
            &format!(
                "the unfinished store in {} (the password it was created with)",
                session.data_dir.display()
            ),
            Purpose::Existing,
        )?
    } else {
        let password = session.password("this data dir", Purpose::New)?;
        crate::strength::check_new_password(&password, "")?;
        password
    };
    let client = Client::link_accept(session.config(), &code, &password)
        .await
        .with_context(|| format!("linking this data dir on {}", session.server))?;
    drop(password);
    let me = client.whoami();
    client.shutdown().await;
    session.printer().emit(&Record::Done {
        action: "link_accept".into(),
        detail: format!(
            "this data dir is now device {} of {} on {}",
            me.device_id, me.username, me.server_url
        ),
        group: None,
    })?;
    Ok(ExitStatus::Success)
}

/// The code argument, or with `-` one line of standard input (so the code
/// need not appear in the process list).
fn read_code(code: &str) -> anyhow::Result<Zeroizing<String>> {
    if code != "-" {
        return Ok(Zeroizing::new(code.to_owned()));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the link code from standard input")?;
    Ok(Zeroizing::new(line.trim().to_owned()))
}
