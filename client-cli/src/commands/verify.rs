//! `verify USERNAME [--mark-verified NUMBER | --accept NUMBER]`.
//!
//! Without a flag it prints the safety number and the trust state, exiting
//! 4 when the key changed and was not accepted (so scripts notice). Both
//! flags require the safety number the user compared: a state change is
//! bound to the exact key the user saw, so a key that changes again between
//! `verify` and `--accept` is never accepted unseen.
//!
//! When a name the user knows now also belongs to another account, it prints
//! one `safety_number` record per account (the newcomer under its
//! `name#xxxxxxxx` label) and exits 4; `--accept NUMBER` then decides which
//! account the name means.
//!
//! Must never mark or accept a key whose safety number differs from the one
//! quoted, and never accept a key that has not changed (nothing to accept)
//! unless the name is contested.

use anyhow::Context as _;
use umbra_client_core::{Client, NameCandidate, SafetyNumber};
use umbra_protocol::wire::Username;

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
    // The accounts the name could mean: the one it means now, then a
    // newcomer claiming it (after a `name_reassigned`).
    let candidates = client
        .name_candidates(&peer.parse().map_err(umbra_client_core::Error::from)?)
        .await
        .with_context(|| format!("computing the safety number with {peer}"))?;
    let contested = candidates.len() > 1;
    let trust = candidates
        .first()
        .map_or(Trust::Unverified, |c| trust_of(c.contact.trust));

    if let Some(quoted) = &args.mark_verified {
        let (name, number) = decision(peer, &candidates, quoted)?;
        client
            .mark_verified(&name, &number)
            .await
            .with_context(|| format!("marking {peer} verified"))?;
        printer.emit(&Record::Done {
            action: "mark_verified".into(),
            detail: format!("{peer}'s key is now marked verified"),
            group: None,
        })?;
        return Ok(ExitStatus::Success);
    }

    if let Some(quoted) = &args.accept {
        if trust != Trust::Changed && !contested {
            return Err(Failure::user(format!(
                "{peer}'s key has not changed; there is nothing to accept \
                 (use --mark-verified after comparing safety numbers)"
            ))
            .into());
        }
        let (name, number) = decision(peer, &candidates, quoted)?;
        client
            .accept_key_change(&name, &number)
            .await
            .with_context(|| format!("accepting {peer}'s key"))?;
        let detail = if contested {
            format!(
                "{peer} now means the account whose safety number you gave; sending is unblocked"
            )
        } else {
            format!("accepted {peer}'s new key (unverified); sending is unblocked")
        };
        printer.emit(&Record::Done {
            action: "accept".into(),
            detail,
            group: None,
        })?;
        return Ok(ExitStatus::Success);
    }

    for candidate in &candidates {
        printer.emit(&Record::SafetyNumber {
            contact: candidate.contact.display_name.clone(),
            safety_number: candidate.safety_number.to_string(),
            trust: trust_of(candidate.contact.trust),
        })?;
    }
    if contested {
        eprintln!(
            "the name {peer} now belongs to another account too: compare each number with the \
             person you mean, then: umbra verify {peer} --accept 'NUMBER' (that account becomes {peer})"
        );
        return Ok(ExitStatus::UntrustedKey);
    }
    if trust == Trust::Changed {
        if let Some(number) = candidates.first().map(|c| &c.safety_number) {
            eprintln!(
                "{peer}'s key changed. Compare the number with {peer}, then: umbra verify {peer} --accept '{number}'"
            );
        }
        return Ok(ExitStatus::UntrustedKey);
    }
    Ok(ExitStatus::Success)
}

/// The name and the number to hand to client-core, which checks the number
/// again under its state lock (a key that changed since this run looked is
/// refused there too).
fn decision(
    peer: &str,
    candidates: &[NameCandidate],
    quoted: &str,
) -> Result<(Username, SafetyNumber), Failure> {
    let mismatch = || {
        Failure::new(
            ExitStatus::UntrustedKey,
            format!(
                "the safety number given does not match the current one for {peer}; \
                 nothing was changed. Run `umbra verify {peer}` and compare again"
            ),
        )
    };
    if !candidates
        .iter()
        .any(|c| same_digits(c.safety_number.digits(), quoted))
    {
        return Err(mismatch());
    }
    let number = SafetyNumber::parse(quoted).ok_or_else(mismatch)?;
    let name = Username::parse(peer).map_err(|e| Failure::user(format!("{peer}: {e}")))?;
    Ok((name, number))
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
