//! The limits the relay enforces, each default with its reason.
//!
//! Must never: read a flag or file (that is [`Settings`](super::Settings)),
//! or hold a default without saying why it is that number.

use std::time::Duration;

use umbra_wire as wire;

use crate::store::StoreLimits;
use crate::trusted_proxy::TrustedProxies;

/// The limits the relay enforces. Each default says why it is that number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope in a Send.
    pub max_envelope_bytes: usize,
    /// Largest WebSocket message.
    pub max_frame_bytes: usize,
    /// Most queued messages per recipient device.
    pub max_queue_len: u64,
    /// Lifetime of an undelivered message.
    pub message_ttl: Duration,
    /// Largest blob.
    pub blob_max_bytes: u64,
    /// Lifetime of a blob.
    pub blob_ttl: Duration,
    /// Most blobs per uploading account (the store enforces it).
    pub max_blobs_per_account: u64,
    /// Most blob bytes per uploading account (the store enforces it).
    pub max_blob_bytes_per_account: u64,
    /// Queued envelope bytes per sender account per hour; 0: no budget.
    pub sender_bytes_per_hour: u64,
    /// Days a released username is quarantined; 0: no quarantine.
    pub name_quarantine_days: u32,
    /// Lifetime of a session token.
    pub token_ttl: Duration,
    /// LoginStart + RegisterStart per source address per minute.
    pub auth_per_ip_per_minute: u32,
    /// LoginStart per (username, source address) per minute.
    pub auth_per_username_per_minute: u32,
    /// LoginStart per username from all sources per minute. Twelve times the
    /// per-source budget, so locking an owner out takes more than a dozen
    /// sources while a distributed guesser still gets at most this many
    /// guesses a minute (THREAT_MODEL.md).
    pub logins_per_username_per_minute: u32,
    /// Bundle fetches (classical and hybrid) per requesting account per minute.
    pub bundle_fetches_per_minute: u32,
    /// Username resolutions per requesting account per minute.
    pub username_resolves_per_minute: u32,
    /// Key-transparency proofs (`KtHead`, `KtHistory`, `KtLookup` of an
    /// account) per requesting account per minute: each costs VRF
    /// evaluations or log proofs under the node's directory lock, so one
    /// account must not be able to make them without end.
    pub kt_proofs_per_minute: u32,
    /// Most one-time prekeys per account, all devices together, for each
    /// kind apart (X25519, ML-KEM; the name predates linked devices).
    pub max_prekeys_per_device: u32,
    /// PreKeysLow and KemPreKeysLow threshold.
    pub prekey_low_water: u32,
    /// Close a connection after this long without a frame from the client.
    pub idle_timeout: Duration,
    /// Send a WebSocket ping this often.
    pub ping_interval: Duration,
    /// Close a connection not authenticated this long after it opened.
    pub auth_timeout: Duration,
    /// Close a connection whose writes made no progress for this long.
    pub write_stall_timeout: Duration,
    /// Purge expired rows this often.
    pub expiry_interval: Duration,
    /// Publish a key-transparency epoch this often, when something changed.
    pub kt_epoch_interval: Duration,
    /// TCP connections open at once, relay-wide.
    pub max_connections: usize,
    /// TCP connections open at once per IPv4 address or IPv6 /64; 0 = no cap.
    pub max_connections_per_address: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the source the
    /// per-source budgets key on; exempt from the per-address cap.
    pub trusted_proxies: TrustedProxies,
    /// Deadline for a request's headers (slowloris).
    pub header_read_timeout: Duration,
    /// How long a request waits for the database before it is answered
    /// "may have been carried out" (PROTOCOL.md 9.6).
    pub request_deadline: Duration,
    /// Longest gap between bytes of a blob upload.
    pub blob_idle_timeout: Duration,
    /// Slowest average blob upload rate (bytes/s) once the idle timeout has passed.
    pub blob_min_bytes_per_sec: u64,
    /// Ephemeral frames per sending account per minute.
    pub ephemeral_per_minute: u32,
    /// `LinkFetch` requests per minute, per source address for a joiner
    /// (unauthenticated) and per account for a creator (PROTOCOL.md 11.7).
    pub link_fetches_per_minute: u32,
    /// tungstenite read/write buffer per WebSocket.
    pub websocket_buffer_bytes: usize,
}

pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_bytes: wire::MAX_ENVELOPE_BYTES,
            max_frame_bytes: wire::MAX_FRAME_BYTES,
            max_queue_len: 10_000,
            message_ttl: 30 * DAY,
            blob_max_bytes: 100 * 1024 * 1024,
            blob_ttl: 30 * DAY,
            // The store's defaults, where their reasons are written.
            max_blobs_per_account: StoreLimits::default().max_blobs_per_account,
            max_blob_bytes_per_account: StoreLimits::default().max_blob_bytes_per_account,
            sender_bytes_per_hour: crate::sender_budget::DEFAULT_BYTES_PER_WINDOW,
            name_quarantine_days: (StoreLimits::default().name_quarantine_secs / DAY.as_secs())
                as u32,
            token_ttl: 30 * DAY,
            auth_per_ip_per_minute: 30,
            auth_per_username_per_minute: 10,
            logins_per_username_per_minute: 120,
            bundle_fetches_per_minute: 60,
            username_resolves_per_minute: 60,
            // A client asks a head and its own two histories per connection
            // and one lookup per new contact: 120 leaves a burst of new
            // contacts room and stops a loop.
            kt_proofs_per_minute: 120,
            max_prekeys_per_device: 1_000,
            // The clients' own top-up threshold, so the push and the
            // client's hourly check agree on what "low" means.
            prekey_low_water: umbra_wire::prekeys::ONE_TIME_PREKEY_LOW_WATER as u32,
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            // Connect, register, log in and authenticate take two client-side
            // Argon2id evaluations and a few round trips: seconds. 30 s leaves
            // room for a slow phone while a connection that only answers
            // pings cannot hold a slot for longer.
            auth_timeout: Duration::from_secs(30),
            // The largest frame the relay sends (a delivery, about 96 KiB)
            // must get through a slow mobile link (12 s at 64 kbit/s); a
            // client whose socket takes nothing for longer has stopped
            // reading and only pins buffers.
            write_stall_timeout: Duration::from_secs(20),
            expiry_interval: Duration::from_secs(10 * 60),
            // A new key is provable about a second after it was published,
            // and an idle relay does one cheap read per second.
            kt_epoch_interval: crate::kt::publisher::DEFAULT_EPOCH_INTERVAL,
            // At about 12 KiB per idle WebSocket (docs/BENCHMARKS.md) this
            // is ~120 MiB; raise it together with the descriptor limit.
            max_connections: 10_000,
            // One person needs one WebSocket plus a blob transfer or two;
            // 64 leaves room for a household or office behind one NAT while
            // one host cannot take more than 64 of the 10 000 slots.
            max_connections_per_address: 64,
            // Nobody: a header any client can write must not pick its own
            // rate-limit bucket unless the operator names the proxy.
            trusted_proxies: TrustedProxies::default(),
            // A real client sends its request head in one packet; 10 s
            // covers a slow mobile link without letting a slowloris client
            // hold a descriptor for long.
            header_read_timeout: Duration::from_secs(10),
            // Answered within 2 s even when PostgreSQL stops answering
            // (commands::REQUEST_DEADLINE says why).
            request_deadline: crate::commands::REQUEST_DEADLINE,
            // A body gap longer than this is a stalled or abandoned upload.
            blob_idle_timeout: Duration::from_secs(30),
            // 16 KiB/s (128 kbit/s, below a weak 3G uplink): a 100 MiB blob
            // must finish within about 1 h 47 min, so a trickling upload
            // cannot hold its connection and partial blob for a day.
            blob_min_bytes_per_sec: 16 * 1024,
            // Typing notices go out at most a few a second per conversation
            // while someone types; 120 a minute (a 120-frame burst) covers
            // that and bounds what one account can make the relay forward.
            ephemeral_per_minute: 120,
            // Both sides of a link poll LinkFetch about once a second
            // (PROTOCOL.md 15.6) for the few minutes a ticket lives; 120 a
            // minute (a 120-request burst) is twice that, room for a
            // creator linking two devices at once or a joiner behind a
            // shared address, while a joiner that has no account to charge
            // cannot make the relay read the store without bound.
            link_fetches_per_minute: 120,
            // tungstenite's default is 128 KiB each, allocated per
            // connection. Frames larger than the buffer are still read (the
            // buffer grows for that frame), in reads of this size: a
            // maximal 256 KiB frame takes 256 reads, a typical one or two.
            // 1 KiB keeps an idle connection under 12 KiB (BENCHMARKS.md,
            // "Relay memory per connection": 4 KiB measured 14.3 KiB).
            websocket_buffer_bytes: 1024,
        }
    }
}
