//! The link code (docs/PROTOCOL.md §15.7): `ticket (16) || secret (32)`,
//! shown by the creator as 77 lower-case RFC 4648 base32 characters
//! without padding and typed (or scanned) on the joiner.
//!
//! The ticket is the relay's handle (`LinkCreate` returns it); the secret
//! is drawn by the creator and never reaches the relay. Parsing folds upper
//! case and ignores spaces and hyphens, so a code read aloud or grouped for
//! legibility still parses, and refuses anything else with an error that
//! says what to check (length, which character, the last character).
//!
//! Must never: print the secret or the ticket in `Debug` or an error, leave
//! a copy of the secret or its text form in memory after drop, or encode
//! base32 by hand (the data-encoding crate does).

use data_encoding::{DecodeKind, BASE32_NOPAD};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::LinkError;
use crate::wire::{LinkTicketId, LINK_TICKET_LEN};

/// Length of the code's secret in bytes.
pub const LINK_SECRET_LEN: usize = 32;
/// Length of the code's bytes: ticket then secret.
pub const LINK_CODE_BYTES: usize = LINK_TICKET_LEN + LINK_SECRET_LEN;
/// Length of the code's text: 384 bits in 5-bit base32 characters.
pub const LINK_CODE_CHARS: usize = 77;

/// The 32-byte secret half of a link code. Wiped on drop; `Debug` prints
/// `<redacted>`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LinkSecret([u8; LINK_SECRET_LEN]);

impl LinkSecret {
    /// Draws a fresh secret (the creator does, from its CSPRNG).
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut secret = Self([0u8; LINK_SECRET_LEN]);
        rng.fill_bytes(&mut secret.0);
        secret
    }

    /// Wraps secret bytes (test vectors; a parsed code).
    pub const fn from_bytes(bytes: [u8; LINK_SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret bytes; callers must not log or store them.
    pub const fn expose_secret(&self) -> &[u8; LINK_SECRET_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// A link code: the relay's ticket and the creator's secret. `Debug`
/// prints `<redacted>`; the secret is wiped on drop.
#[derive(Clone)]
pub struct LinkCode {
    ticket: LinkTicketId,
    secret: LinkSecret,
}

impl LinkCode {
    /// The creator's code for `ticket` (from `LinkCreate`), with a fresh
    /// secret drawn from `rng` (32 bytes, `OsRng` in production).
    pub fn generate<R: RngCore + CryptoRng>(ticket: LinkTicketId, rng: &mut R) -> LinkCode {
        LinkCode {
            ticket,
            secret: LinkSecret::random(rng),
        }
    }

    /// A code from its two halves (test vectors).
    pub fn from_parts(ticket: LinkTicketId, secret: LinkSecret) -> LinkCode {
        LinkCode { ticket, secret }
    }

    /// The relay's ticket.
    pub fn ticket(&self) -> LinkTicketId {
        self.ticket
    }

    /// The secret half.
    pub fn secret(&self) -> &LinkSecret {
        &self.secret
    }

    /// The 77 lower-case base32 characters (RFC 4648, no padding) of
    /// `ticket || secret`, wiped when dropped.
    pub fn to_text(&self) -> Zeroizing<String> {
        let bytes = self.bytes();
        let mut text = Zeroizing::new(vec![0u8; BASE32_NOPAD.encode_len(LINK_CODE_BYTES)]);
        BASE32_NOPAD.encode_mut(bytes.as_slice(), text.as_mut_slice());
        text.make_ascii_lowercase();
        // Base32 output is ASCII, so this cannot fail; the fallback keeps
        // the function total without a panic path.
        let text = std::mem::take(&mut *text);
        Zeroizing::new(String::from_utf8(text).unwrap_or_default())
    }

    /// Reads a code as a user typed it: upper case folds to lower case,
    /// spaces and hyphens are ignored, anything else must be one of the 77
    /// base32 characters.
    pub fn parse(text: &str) -> Result<LinkCode, LinkError> {
        let kept = || text.chars().filter(|&c| c != ' ' && c != '-');
        let found = kept().count();
        if found != LINK_CODE_CHARS {
            return Err(LinkError::CodeLength { found });
        }
        if let Some(index) = kept().position(|c| !c.is_ascii()) {
            return Err(LinkError::CodeCharacter {
                position: index + 1,
            });
        }
        // Every kept character is ASCII now, so bytes and characters agree.
        let mut folded = Zeroizing::new(Vec::with_capacity(LINK_CODE_CHARS));
        folded.extend(kept().map(|c| c.to_ascii_uppercase() as u8));
        let mut bytes = Zeroizing::new([0u8; LINK_CODE_BYTES]);
        match BASE32_NOPAD.decode_mut(folded.as_slice(), bytes.as_mut_slice()) {
            Ok(LINK_CODE_BYTES) => {}
            Ok(_) => {
                return Err(LinkError::CodeLength {
                    found: folded.len(),
                })
            }
            Err(partial) => {
                return Err(match partial.error.kind {
                    DecodeKind::Trailing => LinkError::CodeEnding,
                    DecodeKind::Length => LinkError::CodeLength {
                        found: folded.len(),
                    },
                    // Symbol, and Padding (an `=`: codes carry none).
                    _ => LinkError::CodeCharacter {
                        position: partial.error.position + 1,
                    },
                });
            }
        }
        let mut ticket = [0u8; LINK_TICKET_LEN];
        ticket.copy_from_slice(&bytes[..LINK_TICKET_LEN]);
        let mut secret = LinkSecret([0u8; LINK_SECRET_LEN]);
        secret.0.copy_from_slice(&bytes[LINK_TICKET_LEN..]);
        Ok(LinkCode {
            ticket: LinkTicketId::from_bytes(ticket),
            secret,
        })
    }

    /// `ticket || secret`, wiped when dropped.
    fn bytes(&self) -> Zeroizing<[u8; LINK_CODE_BYTES]> {
        let mut bytes = Zeroizing::new([0u8; LINK_CODE_BYTES]);
        bytes[..LINK_TICKET_LEN].copy_from_slice(self.ticket.as_bytes());
        bytes[LINK_TICKET_LEN..].copy_from_slice(&self.secret.0);
        bytes
    }
}

impl std::fmt::Debug for LinkCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkCode(<redacted>)")
    }
}
