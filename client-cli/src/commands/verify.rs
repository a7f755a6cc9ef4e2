//! `verify USERNAME [--mark-verified NUMBER | --accept NUMBER]`.
//!
//! Without a flag it prints the safety number and the trust state, exiting
//! 4 when the key changed and was not accepted (so scripts notice). Both
//! flags require the safety number the user compared: a state change is
//! bound to the exact key the user saw, so a key that changes again between
//! `verify` and `--accept` is never accepted unseen.
//!
//! Must never mark or accept a key whose safety number differs from the one
//! quoted, and never accept a key that has not changed (nothing to accept).

use anyhow::Context as _;
use umbra_client_core::{Client, SafetyNumber, TrustLevel};

use crate::cli::VerifyArgs;
use crate::commands::contacts::trust_of;
use crate::exit_status::{ExitStatus, Failure};
use crate::output::{Printer, Record, Trust};
use crate::session::Session;

pub async fn run(session: &Session, args: &VerifyArgs) -> anyhow::Result<ExitStatus> {
    let client = session.open_client().await?;
    let result = verify(&client, &mut session.printer(), args).await;
    client.shutdown().await;
    result
}

/// The command's work, printing to `printer` (stdout, or a buffer for the
/// daemon).
pub(crate) async fn verify<W: std::io::Write>(
    client: &Client,
    printer: &mut Printer<W>,
    args: &VerifyArgs,
) -> anyhow::Result<ExitStatus> {
    let peer = args.username.as_str();
    let number = client
        .safety_number(peer)
        .await
        .with_context(|| format!("computing the safety number with {peer}"))?;
    let trust = current_trust(client, peer).await?;

    if let Some(quoted) = &args.mark_verified {
        require_match(peer, &number, quoted)?;
        client
            .mark_verified(peer)
            .await
            .with_context(|| format!("marking {peer} verified"))?;
        printer.emit(&Record::Done {
            action: "mark_verified".into(),
            detail: format!("{peer}'s key is now marked verified"),
        })?;
        return Ok(ExitStatus::Success);
    }

    if let Some(quoted) = &args.accept {
        if trust != Trust::Changed {
            return Err(Failure::user(format!(
                "{peer}'s key has not changed; there is nothing to accept \
                 (use --mark-verified after comparing safety numbers)"
            ))
            .into());
        }
        require_match(peer, &number, quoted)?;
        client
            .accept_key_change(peer)
            .await
            .with_context(|| format!("accepting {peer}'s new key"))?;
        printer.emit(&Record::Done {
            action: "accept".into(),
            detail: format!("accepted {peer}'s new key (unverified); sending is unblocked"),
        })?;
        return Ok(ExitStatus::Success);
    }

    printer.emit(&Record::SafetyNumber {
        contact: peer.to_owned(),
        safety_number: number.to_string(),
        trust,
    })?;
    if trust == Trust::Changed {
        eprintln!(
            "{peer}'s key changed. Compare the number with {peer}, then: umbra verify {peer} --accept '{number}'"
        );
        return Ok(ExitStatus::UntrustedKey);
    }
    Ok(ExitStatus::Success)
}

async fn current_trust(client: &Client, peer: &str) -> anyhow::Result<Trust> {
    let contacts = client.contacts().await.context("listing contacts")?;
    let level = contacts
        .into_iter()
        .find(|c| c.username == peer)
        .map_or(TrustLevel::Unverified, |c| c.trust);
    Ok(trust_of(level))
}

fn require_match(peer: &str, current: &SafetyNumber, quoted: &str) -> Result<(), Failure> {
    if same_digits(current.digits(), quoted) {
        Ok(())
    } else {
        Err(Failure::new(
            ExitStatus::UntrustedKey,
            format!(
                "the safety number given does not match the current one for {peer}; \
                 nothing was changed. Run `umbra verify {peer}` and compare again"
            ),
        ))
    }
}

/// Compares digit sequences, ignoring spaces and other separators the user
/// may have copied. Safety numbers are public, so a plain comparison leaks
/// nothing.
fn same_digits(expected: &str, quoted: &str) -> bool {
    let quoted: String = quoted.chars().filter(char::is_ascii_digit).collect();
    let expected: String = expected.chars().filter(char::is_ascii_digit).collect();
    !expected.is_empty() && quoted == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_numbers_match_with_any_spacing() {
        assert!(same_digits("1234567890", "12345 67890"));
        assert!(same_digits("1234567890", " 12345-67890\n"));
    }

    #[test]
    fn different_or_partial_numbers_do_not_match() {
        assert!(!same_digits("1234567890", "12345 67891"));
        assert!(!same_digits("1234567890", "12345"));
        assert!(!same_digits("1234567890", ""));
        assert!(!same_digits("", ""));
    }
}
