//! # umbra-client-core
//!
//! The async (tokio) client library of umbra, end-to-end encrypted chat whose
//! relay cannot read what it relays. One [`Client`] handle does everything a
//! chat application needs: register and log in (OPAQUE: the relay never sees
//! the password), start sessions from prekey bundles, send and receive
//! messages, keep an encrypted local history, track trust in contacts' keys
//! (trust on first use, safety numbers), and survive crashes and flaky
//! networks. `Client` is cheap to clone; clones share one connection, store
//! and event stream.
//!
//! ## Lifecycle
//!
//! | call | network | what it does |
//! | --- | --- | --- |
//! | [`Client::register`] | yes | creates the account, the local store, publishes keys |
//! | [`Client::login`] | yes | logs in on this device (new store: new identity; existing store: same identity) |
//! | [`Client::open`] | no | unlocks the local store with the password; resume later with [`Client::connect`] |
//! | [`Client::link_device`] / [`Client::link_accept`] | yes | on a device of the account: shows a link code and provisions the device that enters it / in an empty data directory: becomes a new device of that account |
//! | [`Client::logout`] / [`Client::delete_account`] | yes | revokes the token / deletes everything |
//!
//! ## Sending and receiving
//!
//! [`Client::send_text`] encrypts, stores the ciphertext in the outbox
//! *together with the advanced session*, and returns; the background
//! connection hands the outbox to the relay (now, or after a reconnect) and
//! raises [`Event::Sent`]. [`Client::flush_outbox`] waits for that. Incoming
//! messages are decrypted, stored, then acknowledged, and surface as events:
//! subscribe with [`Client::events`] (a `Stream`, for interactive programs)
//! or drain with [`Client::receive_until_empty`] (for scripts). Messages
//! stored while the application was busy with something else stay listed in
//! [`Client::unreported_messages`] until it calls [`Client::mark_reported`]
//! (or [`Client::mark_read`]), so none is silently swallowed. The store
//! answers [`Client::conversations`], [`Client::history`] and
//! [`Client::contacts`] without the network.
//!
//! ## Trust
//!
//! The first identity key seen for a contact is pinned. A different key
//! raises [`Event::KeyChanged`], and sending to that contact fails with
//! [`Error::UntrustedKey`] until the user compares [`Client::safety_number`]
//! and calls [`Client::mark_verified`], or accepts with
//! [`Client::accept_key_change`]. A contact who reinstalls and stays silent
//! is noticed too: before sending over an existing session the client asks
//! the relay which identity the contact publishes now (once per connection
//! and contact, and again after ten minutes), so a message never goes to a
//! key its owner no longer holds.
//!
//! Contacts are accounts, not names. A username that changes hands (freed
//! by a deleted or renamed account, registered by someone else) never takes
//! over the contact the user knows: the client raises
//! [`Event::NameReassigned`], shows the newcomer as `name#xxxxxxxx`, and
//! refuses to send to the name ([`Error::NameReassigned`]) until the user
//! picks an account by its safety number ([`Client::name_candidates`],
//! then [`Client::accept_key_change`] or [`Client::mark_verified`], which
//! take the number the user compared).
//!
//! ## Storage
//!
//! [`ClientConfig::new`] keeps the store in an SQLite file in a data
//! directory (0700/0600); [`ClientConfig::with_store`] takes any
//! [`ClientStore`] backend, e.g. [`MemoryStore`]. Every record is sealed with
//! XChaCha20-Poly1305 under a key derived from the password with Argon2id
//! (64 MiB, t = 3) and bound to its kind, slot and account, so backends only
//! ever see ciphertext and HMAC'd slot names. A directory store is used by
//! one process at a time: opening it takes an exclusive OS lock on the
//! directory ([`DataDirLock`]), waiting up to [`ClientConfig::lock_wait`]
//! for another process to let go, so two processes never advance the same
//! ratchet state.
//!
//! ```no_run
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use umbra_client_core::{Client, ClientConfig, Event, Username};
//!
//! # async fn demo() -> Result<(), umbra_client_core::Error> {
//! let config = ClientConfig::new("http://127.0.0.1:7878", "/home/alice/.local/share/umbra");
//! let alice = Client::register(config, "alice", "correct horse battery staple").await?;
//!
//! // A script: send, make sure the relay has it, print what is waiting.
//! // Peers are typed: a `Username` to send to, a `PeerRef` (a name, a
//! // `name#xxxxxxxx` label, an account id) to read about.
//! let bob = Username::parse("bob")?;
//! let id = alice.send_text(&bob, "hello bob").await?;
//! alice.flush_outbox(Duration::from_secs(10)).await?;
//! for event in alice.receive_until_empty(Duration::from_secs(5)).await? {
//!     println!("{event:?}");
//! }
//!
//! // An interactive program: react to events as they come.
//! let mut events = alice.events();
//! alice.connect().await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Message { from, body, .. } => println!("{from}: {body}"),
//!         Event::KeyChanged { username, .. } => println!("{username}'s key changed!"),
//!         _ => {}
//!     }
//! }
//! # let _ = id; Ok(()) }
//! ```
//!
//! Runnable examples live in `client-core/examples/` (`two_users.rs` takes a
//! relay URL). docs/PROTOCOL.md §12 specifies the client's behaviour and
//! the local store format byte by byte.
//!
//! What this crate must never do: write plaintext or a contact's name to
//! disk, send a ciphertext whose ratchet state is not yet persisted, ack a
//! message before it is persisted, or send to a contact whose key changed
//! without the user's consent.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod about;
mod account;
mod backoff;
mod blocking;
mod client;
mod clock;
mod config;
mod connection;
mod consts;
mod contact;
mod conversation;
mod conversation_delete;
mod devices;
mod directory;
mod disappearing;
mod engine;
mod error;
mod event;
mod failure;
mod fetched_bundle;
mod files;
/// The store's record decoders for the fuzz targets (`records/fuzzing.rs`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use records::fuzzing;
mod backup;
mod groups;
mod history;
mod identity_checks;
mod inbound;
mod kem_maintenance;
mod kt;
mod lifecycle;
mod link;
mod login;
mod maintenance;
mod markers;
mod message_id;
mod name_book;
mod names;
mod outbound;
mod outbox;
mod payload;
mod peer;
mod prekey_maintenance;
mod prekeys;
mod reading;
mod records;
mod relay_http;
mod relay_link;
mod relay_rpc;
mod safety_number;
mod search;
mod sessions;
mod settings;
pub mod store;
mod timeline;
mod tls;
mod trust;

pub use about::{ChangeRefusal, MessageChange, MAX_REACTIONS_PER_REACTOR};
pub use blocking::BlockedContact;
pub use client::{Client, WhoAmI};
pub use config::{ClientConfig, StoreLocation, DEFAULT_CONNECT_TIMEOUT};
pub use contact::{Contact, NameCandidate, NameState, TrustLevel};
pub use conversation::{
    Conversation, DeliveryStatus, Direction, HistoryEntry, MessageAbout, Reaction,
    UnreportedMessage,
};
pub use conversation_delete::{ConversationDeletion, DeleteScope};
pub use devices::DeviceInfo;
pub use error::{Error, Result};
pub use event::{
    ConnectionState, DecryptFailure, Event, GroupOpenFailure, GroupRefusal, Outcome, SendFailure,
    SharedError,
};
pub use failure::{
    BackupFailure, BoxError, ConnectionFailure, CryptoFailure, DeviceFailure, Ended, FileFailure,
    InvalidMessage, RelayMisbehaved, TlsRootsProblem,
};
pub use files::{FileInfo, Progress};
pub use groups::{
    GroupChangeKind, GroupFailure, GroupHistoryEntry, GroupId, GroupInfo, GroupMemberInfo,
    GroupMemberName, GroupPolicy, GroupSendReport, MemberOutcome, MemberReport,
    UnreportedGroupMessage,
};
pub use kt::{DirectoryRoot, KtFailure, KtPins};
pub use link::{LinkFailure, LinkInvite};
pub use message_id::MessageId;
pub use outbox::PendingMessage;
pub use peer::{PeerRef, UnknownPeer};
pub use safety_number::SafetyNumber;
pub use search::{fold_case, SearchConversation, SearchHit, MAX_SEARCH_LIMIT};
pub use settings::Settings;
pub use store::{
    ClientStore, DataDirLock, Durability, KdfParams, MemoryStore, SqliteStore, StoreError,
};
/// The protocol's account and username types, as this API takes them.
pub use umbra_protocol::wire::{AccountId, Username};
