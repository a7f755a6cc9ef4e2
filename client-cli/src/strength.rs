//! Refusing guessable passwords when an account is created.
//!
//! One password protects both the local store and the relay account, and the
//! relay operator holds the OPAQUE OPRF key: with an account's record it can
//! test guesses offline, one Argon2id evaluation each (docs/THREAT_MODEL.md).
//! Argon2id only multiplies the cost of each guess; a password found in the
//! first million guesses falls anyway. So `umbra register` asks the zxcvbn
//! estimator (Dropbox's model of how real crackers order guesses) and refuses
//! any password scoring below [`MIN_SCORE`], passing on zxcvbn's own advice.
//!
//! Must never: print, log or keep the password, or any part of zxcvbn's
//! analysis that quotes it (its match list does); only the fixed-wording
//! warning and suggestions reach the user.

use crate::exit_status::Failure;

/// zxcvbn's scores run 0 to 4; 3 means "safely unguessable: moderate
/// protection from offline slow-hash scenario" (about 10^10 guesses), which
/// is the attack a malicious relay operator can run.
pub const MIN_SCORE: u8 = 3;

/// Accepts `password` for a new account, or explains why it is refused (a
/// user error, exit 1). The username counts as known to the attacker, so a
/// password built from it scores lower.
pub fn check_new_password(password: &str, username: &str) -> Result<(), Failure> {
    let estimate = zxcvbn::zxcvbn(password, &[username]);
    let score = u8::from(estimate.score());
    if score >= MIN_SCORE {
        return Ok(());
    }
    let mut advice = Vec::new();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            advice.push(warning.to_string());
        }
        advice.extend(feedback.suggestions().iter().map(|s| s.to_string()));
    }
    let mut message =
        format!("password too easy to guess (strength {score} of 4, at least {MIN_SCORE} needed)");
    if !advice.is_empty() {
        message.push_str(": ");
        message.push_str(&advice.join(" "));
    }
    Err(Failure::user(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_status::ExitStatus;

    #[test]
    fn common_and_short_passwords_are_refused_with_advice() {
        for weak in [
            "",
            "password",
            "123456",
            "alice123",
            "qwertyuiop",
            "Summer2024!",
        ] {
            let failure = check_new_password(weak, "alice").expect_err(weak);
            assert_eq!(failure.status, ExitStatus::UserError, "{weak}");
            let text = failure.to_string();
            assert!(text.contains("too easy to guess"), "{weak}: {text}");
        }
        let text = check_new_password("password", "alice")
            .unwrap_err()
            .to_string();
        assert!(text.contains("common password"), "zxcvbn's warning: {text}");
    }

    #[test]
    fn the_username_counts_against_the_password() {
        let name = "zorbanquist";
        assert!(check_new_password(&format!("{name}{name}"), name).is_err());
    }

    #[test]
    fn long_unpredictable_passwords_are_accepted() {
        for strong in [
            "correct horse battery staple lantern",
            "vN7#q2!xLp9@tRw4",
            "tangerine-obelisk-whistle-87",
        ] {
            assert!(check_new_password(strong, "alice").is_ok(), "{strong}");
        }
    }

    #[test]
    fn the_refusal_never_quotes_the_password() {
        let weak = "alice1990";
        let text = check_new_password(weak, "alice").unwrap_err().to_string();
        assert!(!text.contains(weak), "{text}");
    }
}
