//! Linking a device, the client's cryptography (docs/PROTOCOL.md §15.7):
//! the link code, the two handshake messages that travel through the
//! relay's rendezvous (§15.6), and the provisioning the creator hands the
//! new device.
//!
//! ```text
//! K_join = HKDF-SHA256(salt = ticket, ikm = secret, info = LINK_JOINER_KEY)               (32)
//! msg1   = 0x01 || n1 (24) || XChaCha20-Poly1305(K_join, n1, ticket || 0x01, e_J_pub)     (73 bytes)
//! dh     = X25519(e_C, e_J_pub)                      (all zero refused)
//! K_prov = HKDF-SHA256(salt = secret, ikm = dh, info = LINK_PROVISION_KEY || ticket || e_J_pub || e_C_pub)
//! msg2   = 0x02 || e_C_pub (32) || n2 (24) ||
//!          XChaCha20-Poly1305(K_prov, n2, ticket || e_J_pub || e_C_pub, provisioning)
//! ```
//!
//! The joiner ([`JoinerHandshake`]) parses the code the user typed, posts
//! msg1 and opens msg2 into a [`Provisioning`]; the creator
//! ([`CreatorHandshake`]) opens msg1 and answers with msg2. Each side is a
//! value consumed by its one step, so a handshake cannot be run twice.
//! The secret authenticates both messages; the ephemeral exchange makes the
//! relay's record of them useless to someone who later learns the code.
//!
//! ```
//! use rand::rngs::OsRng;
//! use umbra_protocol::identity::IdentityKeyPair;
//! use umbra_protocol::link::{CreatorHandshake, JoinerHandshake, LinkCode, Provisioning};
//! use umbra_protocol::wire::{AccountId, LinkTicketId, Username};
//!
//! let code = LinkCode::generate(LinkTicketId::random(&mut OsRng), &mut OsRng);
//! let typed = LinkCode::parse(&code.to_text())?;
//! let (joiner, msg1) = JoinerHandshake::start(&typed, &mut OsRng);
//! let provisioning = Provisioning {
//!     account: AccountId::from_bytes([7; 16]),
//!     username: Username::parse("alice").unwrap(),
//!     identity: IdentityKeyPair::generate(&mut OsRng),
//!     export_key: None,
//!     snapshot: None,
//! };
//! let msg2 = CreatorHandshake::new(&code).answer(&msg1, &provisioning, &mut OsRng)?;
//! let received = joiner.finish(&msg2)?;
//! assert_eq!(received.identity.public(), provisioning.identity.public());
//! # Ok::<(), umbra_protocol::link::LinkError>(())
//! ```
//!
//! Must never: send or accept a message that did not authenticate under
//! the code, use an all-zero X25519 output, keep the secret, an ephemeral
//! key, the shared secret or a derived key after its step (all are wiped),
//! print any of them in `Debug`, or panic on any input (both messages and
//! the provisioning come from the network).

mod code;
mod error;
mod handshake;
mod provisioning;

pub use code::{LinkCode, LinkSecret, LINK_CODE_BYTES, LINK_CODE_CHARS, LINK_SECRET_LEN};
pub use error::LinkError;
pub use handshake::{
    CreatorHandshake, JoinerHandshake, LINK_MSG1_LEN, LINK_MSG1_TYPE, LINK_MSG2_MIN_LEN,
    LINK_MSG2_TYPE, LINK_NONCE_LEN,
};
pub use provisioning::{Provisioning, MAX_PROVISIONING_BYTES, PROVISIONING_FORMAT};

#[cfg(test)]
mod tests;
