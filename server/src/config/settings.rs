//! Every relay setting as given by one source (a flag, an environment
//! variable or the TOML file), before defaults and validation.
//!
//! `None` means "not given here". Must never: hold a default (those live in
//! [`Limits`](super::Limits) and [`RelayConfig::resolve`](super::RelayConfig::resolve),
//! where `--help` is checked against them) or validate a value.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

/// Every setting that can come from a flag, an environment variable or the
/// TOML file. `None` means "not given here"; [`RelayConfig::resolve`] fills
/// defaults.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML file with the same keys as the flags (snake_case).
    #[arg(long, global = true, env = "UMBRA_RELAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7878].
    #[arg(long, env = "UMBRA_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite database and the OPAQUE server setup
    /// [default: ./umbra-relay-data].
    #[arg(long, global = true, env = "UMBRA_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Secret file holding the OPAQUE server setup (OPRF seed); created 0600 on
    /// first start, never stored in the database. Back it up with the
    /// database; every node sharing a database needs the same file
    /// [default: DATA_DIR/opaque-server-key].
    #[arg(long, global = true, env = "UMBRA_RELAY_OPAQUE_KEY_FILE")]
    pub opaque_key_file: Option<PathBuf>,
    /// Secret file holding the key-transparency directory key and VRF key;
    /// created 0600 on first start, never stored in the database. Back it up
    /// with the database; every node sharing a database needs the same file
    /// [default: kt-directory-key beside the OPAQUE key file].
    #[arg(long, global = true, env = "UMBRA_RELAY_KT_KEY_FILE")]
    pub kt_key_file: Option<PathBuf>,
    /// postgres://... to use PostgreSQL instead of embedded SQLite.
    #[arg(
        long,
        global = true,
        env = "UMBRA_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// PEM certificate chain; enables TLS together with --tls-key.
    #[arg(long, env = "UMBRA_RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "UMBRA_RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// tracing filter (e.g. info, umbra_relay=debug); RUST_LOG wins when set
    /// [default: info].
    #[arg(long, global = true, env = "UMBRA_RELAY_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Largest sealed envelope accepted in a Send, in bytes [default: 98304].
    #[arg(long)]
    pub max_envelope_bytes: Option<usize>,
    /// Largest WebSocket message accepted, in bytes [default: 262144].
    #[arg(long)]
    pub max_frame_bytes: Option<usize>,
    /// Most undelivered messages kept per recipient device [default: 10000].
    #[arg(long)]
    pub max_queue_len: Option<u64>,
    /// Days an undelivered message is kept before it is purged [default: 30].
    #[arg(long)]
    pub message_ttl_days: Option<u32>,
    /// Largest blob accepted by POST /v1/blobs, in bytes [default: 104857600].
    #[arg(long)]
    pub blob_max_bytes: Option<u64>,
    /// Days a blob is kept [default: 30].
    #[arg(long)]
    pub blob_ttl_days: Option<u32>,
    /// Most blobs one account may hold at once [default: 256].
    #[arg(long)]
    pub max_blobs_per_account: Option<u64>,
    /// Most blob bytes one account may hold at once [default: 268435456].
    #[arg(long)]
    pub max_blob_bytes_per_account: Option<u64>,
    /// Envelope bytes one sender account may have queued per hour, all
    /// recipients together; 0 turns the budget off [default: 67108864].
    #[arg(long)]
    pub sender_bytes_per_hour: Option<u64>,
    /// Days a released username (rename, deletion) stays unavailable to
    /// everyone; 0 turns the quarantine off [default: 30].
    #[arg(long)]
    pub name_quarantine_days: Option<u32>,
    /// Days a session token stays valid [default: 30].
    #[arg(long)]
    pub token_ttl_days: Option<u32>,
    /// LoginStart and RegisterStart requests allowed per source address (IPv4
    /// address or IPv6 /64) per minute [default: 30].
    #[arg(long)]
    pub auth_per_ip_per_minute: Option<u32>,
    /// LoginStart requests allowed per username from one source address per
    /// minute [default: 10].
    #[arg(long)]
    pub auth_per_username_per_minute: Option<u32>,
    /// LoginStart requests allowed per username from all addresses together per
    /// minute: slows guessing spread over many addresses [default: 120].
    #[arg(long)]
    pub logins_per_username_per_minute: Option<u32>,
    /// Prekey bundle fetches allowed per requesting account per minute [default: 60].
    #[arg(long)]
    pub bundle_fetches_per_minute: Option<u32>,
    /// ResolveUsername requests allowed per requesting account per minute [default: 60].
    #[arg(long)]
    pub username_resolves_per_minute: Option<u32>,
    /// Key-transparency proofs (KtHead, KtHistory, KtLookup of an account)
    /// allowed per requesting account per minute [default: 120].
    #[arg(long)]
    pub kt_proofs_per_minute: Option<u32>,
    /// Most one-time prekeys stored per account, all devices together, for
    /// each kind apart (X25519, ML-KEM) [default: 1000].
    #[arg(long)]
    pub max_prekeys_per_device: Option<u32>,
    /// When a device's one-time prekey count falls below this, it is told PreKeysLow
    /// (KemPreKeysLow for its ML-KEM prekeys) [default: 20].
    #[arg(long)]
    pub prekey_low_water: Option<u32>,
    /// Seconds without any frame from a client before its connection is closed
    /// [default: 120].
    #[arg(long)]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds between WebSocket pings the relay sends [default: 30].
    #[arg(long)]
    pub ping_interval_secs: Option<u64>,
    /// Seconds a new WebSocket may take to authenticate (login included) before it is
    /// closed with Closing{NotAuthenticated} [default: 30].
    #[arg(long)]
    pub auth_timeout_secs: Option<u64>,
    /// Seconds a connection's writes may make no progress (a client that stopped
    /// reading) before it is closed [default: 20].
    #[arg(long)]
    pub write_stall_timeout_secs: Option<u64>,
    /// Seconds between purges of expired messages, tokens and blobs [default: 600].
    #[arg(long)]
    pub expiry_interval_secs: Option<u64>,
    /// Milliseconds between key-transparency epochs; an epoch is published
    /// only when something changed [default: 1000].
    #[arg(long)]
    pub kt_epoch_interval_ms: Option<u64>,
    /// Most TCP connections open at once, HTTP and WebSocket together; further
    /// ones are answered 503 [default: 10000].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one IPv4 address or IPv6 /64; 0 turns
    /// the cap off (behind a proxy) [default: 64].
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Reverse proxy address or CIDR (repeatable) whose X-Forwarded-For names
    /// the client for per-source limits, and which is exempt from
    /// --max-connections-per-address; none by default.
    #[arg(long = "trusted-proxy", value_name = "IP_OR_CIDR")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a client has to send complete request headers, from connecting
    /// and between requests on a kept-alive connection [default: 10].
    #[arg(long)]
    pub header_read_timeout_secs: Option<u64>,
    /// Milliseconds within which a request that needs the database is
    /// answered, with a retryable "may have been carried out" error if the
    /// database has not confirmed it by then [default: 1500].
    #[arg(long)]
    pub request_deadline_ms: Option<u64>,
    /// Seconds a blob upload may go without receiving a byte [default: 30].
    #[arg(long)]
    pub blob_idle_timeout_secs: Option<u64>,
    /// Slowest average blob upload rate accepted, in bytes per second, after
    /// the first blob_idle_timeout_secs [default: 16384].
    #[arg(long)]
    pub blob_min_bytes_per_sec: Option<u64>,
    /// Ephemeral frames (typing notices) allowed per sending account per minute
    /// [default: 120].
    #[arg(long)]
    pub ephemeral_per_minute: Option<u32>,
    /// LinkFetch requests allowed per minute, per source address for a
    /// joining device and per account for the creating one [default: 120].
    #[arg(long)]
    pub link_fetches_per_minute: Option<u32>,
    /// WebSocket read and write buffer size per connection, in bytes [default: 1024].
    #[arg(long)]
    pub websocket_buffer_bytes: Option<usize>,
}

impl Settings {
    /// Fills every key not given here from `fallback` (the file).
    pub(super) fn or(self, fallback: Settings) -> Settings {
        Settings {
            config: self.config,
            listen: self.listen.or(fallback.listen),
            data_dir: self.data_dir.or(fallback.data_dir),
            opaque_key_file: self.opaque_key_file.or(fallback.opaque_key_file),
            kt_key_file: self.kt_key_file.or(fallback.kt_key_file),
            database_url: self.database_url.or(fallback.database_url),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            log_level: self.log_level.or(fallback.log_level),
            max_envelope_bytes: self.max_envelope_bytes.or(fallback.max_envelope_bytes),
            max_frame_bytes: self.max_frame_bytes.or(fallback.max_frame_bytes),
            max_queue_len: self.max_queue_len.or(fallback.max_queue_len),
            message_ttl_days: self.message_ttl_days.or(fallback.message_ttl_days),
            blob_max_bytes: self.blob_max_bytes.or(fallback.blob_max_bytes),
            blob_ttl_days: self.blob_ttl_days.or(fallback.blob_ttl_days),
            max_blobs_per_account: self
                .max_blobs_per_account
                .or(fallback.max_blobs_per_account),
            max_blob_bytes_per_account: self
                .max_blob_bytes_per_account
                .or(fallback.max_blob_bytes_per_account),
            sender_bytes_per_hour: self
                .sender_bytes_per_hour
                .or(fallback.sender_bytes_per_hour),
            name_quarantine_days: self.name_quarantine_days.or(fallback.name_quarantine_days),
            token_ttl_days: self.token_ttl_days.or(fallback.token_ttl_days),
            auth_per_ip_per_minute: self
                .auth_per_ip_per_minute
                .or(fallback.auth_per_ip_per_minute),
            auth_per_username_per_minute: self
                .auth_per_username_per_minute
                .or(fallback.auth_per_username_per_minute),
            logins_per_username_per_minute: self
                .logins_per_username_per_minute
                .or(fallback.logins_per_username_per_minute),
            bundle_fetches_per_minute: self
                .bundle_fetches_per_minute
                .or(fallback.bundle_fetches_per_minute),
            username_resolves_per_minute: self
                .username_resolves_per_minute
                .or(fallback.username_resolves_per_minute),
            kt_proofs_per_minute: self.kt_proofs_per_minute.or(fallback.kt_proofs_per_minute),
            max_prekeys_per_device: self
                .max_prekeys_per_device
                .or(fallback.max_prekeys_per_device),
            prekey_low_water: self.prekey_low_water.or(fallback.prekey_low_water),
            idle_timeout_secs: self.idle_timeout_secs.or(fallback.idle_timeout_secs),
            ping_interval_secs: self.ping_interval_secs.or(fallback.ping_interval_secs),
            auth_timeout_secs: self.auth_timeout_secs.or(fallback.auth_timeout_secs),
            write_stall_timeout_secs: self
                .write_stall_timeout_secs
                .or(fallback.write_stall_timeout_secs),
            expiry_interval_secs: self.expiry_interval_secs.or(fallback.expiry_interval_secs),
            kt_epoch_interval_ms: self.kt_epoch_interval_ms.or(fallback.kt_epoch_interval_ms),
            max_connections: self.max_connections.or(fallback.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .or(fallback.max_connections_per_address),
            trusted_proxies: self.trusted_proxies.or(fallback.trusted_proxies),
            header_read_timeout_secs: self
                .header_read_timeout_secs
                .or(fallback.header_read_timeout_secs),
            request_deadline_ms: self.request_deadline_ms.or(fallback.request_deadline_ms),
            blob_idle_timeout_secs: self
                .blob_idle_timeout_secs
                .or(fallback.blob_idle_timeout_secs),
            blob_min_bytes_per_sec: self
                .blob_min_bytes_per_sec
                .or(fallback.blob_min_bytes_per_sec),
            ephemeral_per_minute: self.ephemeral_per_minute.or(fallback.ephemeral_per_minute),
            link_fetches_per_minute: self
                .link_fetches_per_minute
                .or(fallback.link_fetches_per_minute),
            websocket_buffer_bytes: self
                .websocket_buffer_bytes
                .or(fallback.websocket_buffer_bytes),
        }
    }
}
