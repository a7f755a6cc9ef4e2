//! How a client is configured: which relay, where its local store lives,
//! how hard the password key derivation works.
//!
//! Must never: carry the password (it is passed to each constructor call
//! and dropped after key derivation).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{ClientStore, DataDirLock, KdfParams, DEFAULT_LOCK_WAIT};

/// Where the local store lives.
#[derive(Clone)]
pub enum StoreLocation {
    /// An SQLite file in this directory (created 0700; files 0600).
    Directory(PathBuf),
    /// A caller-supplied backend (for example [`MemoryStore`](crate::MemoryStore)).
    Custom(Arc<dyn ClientStore>),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Directory(p) => f.debug_tuple("Directory").field(p).finish(),
            StoreLocation::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Everything a client needs besides the password.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The relay: `http://host:port`, `https://...`, `ws://...` or `wss://...`
    /// (the WebSocket path `/v1/ws` is appended).
    pub server_url: String,
    /// The local store.
    pub store: StoreLocation,
    /// Argon2id parameters used when a new store is created (an existing
    /// store keeps the parameters it was created with).
    pub kdf: KdfParams,
    /// PEM file of CA certificates trusted for `https://`/`wss://` relays.
    /// `None`: the platform's trusted roots (`rustls-native-certs`, which
    /// honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub tls_roots: Option<PathBuf>,
    /// How long opening a [`StoreLocation::Directory`] store waits for
    /// another process using that directory to let go (default 30 s).
    pub lock_wait: Duration,
    /// The directory's lock, when the caller took it already (a CLI that
    /// says why it waits): used instead of taking it again.
    pub dir_lock: Option<Arc<DataDirLock>>,
    /// How long one attempt to reach the relay (TCP, TLS and WebSocket
    /// handshakes) and a request's wait for the connection may take
    /// (default [`DEFAULT_CONNECT_TIMEOUT`]). A command with its own
    /// deadline sets it, so a relay that accepts and never answers cannot
    /// hold the command past that deadline.
    pub connect_timeout: Duration,
    /// The relay's key-transparency keys (docs/PROTOCOL.md §16.9 item 1),
    /// pinned in the store the first time they are given; `None`: the
    /// ones the store pinned before, if any.
    pub kt_pins: Option<crate::KtPins>,
}

/// How long reaching the relay may take unless the caller says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl ClientConfig {
    /// A client whose store is an SQLite file in `data_dir`, with the
    /// recommended key-derivation parameters.
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server_url: server_url.into(),
            store: StoreLocation::Directory(data_dir.into()),
            kdf: KdfParams::recommended(),
            tls_roots: None,
            lock_wait: DEFAULT_LOCK_WAIT,
            dir_lock: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            kt_pins: None,
        }
    }

    /// A client on a caller-supplied store backend.
    pub fn with_store(server_url: impl Into<String>, store: Arc<dyn ClientStore>) -> Self {
        Self {
            server_url: server_url.into(),
            store: StoreLocation::Custom(store),
            kdf: KdfParams::recommended(),
            tls_roots: None,
            lock_wait: DEFAULT_LOCK_WAIT,
            dir_lock: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            kt_pins: None,
        }
    }

    /// Replaces the key-derivation parameters for a new store.
    pub fn kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// Opens the directory store under `lock`, which the caller took with
    /// [`DataDirLock::acquire`] for that directory.
    pub fn with_dir_lock(mut self, lock: Arc<DataDirLock>) -> Self {
        self.dir_lock = Some(lock);
        self
    }

    /// Bounds each attempt to reach the relay by `timeout` (see
    /// [`ClientConfig::connect_timeout`]); a zero timeout is taken as one
    /// second, so an attempt is never doomed before it starts.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// Pins the relay's key-transparency keys (see [`ClientConfig::kt_pins`]).
    pub fn kt_pins(mut self, pins: crate::KtPins) -> Self {
        self.kt_pins = Some(pins);
        self
    }

    /// Trusts the CA certificates in this PEM file (instead of the system
    /// bundle) for a TLS relay, e.g. a self-hosted relay's own CA.
    pub fn tls_roots(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.tls_roots = Some(pem_file.into());
        self
    }

    /// The WebSocket URL of the relay.
    pub(crate) fn websocket_url(&self) -> Result<String, crate::Error> {
        let url = self.server_url.trim_end_matches('/');
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| crate::Error::BadServerUrl(self.server_url.clone()))?;
        let ws_scheme = match scheme {
            "http" | "ws" => "ws",
            "https" | "wss" => "wss",
            _ => return Err(crate::Error::BadServerUrl(self.server_url.clone())),
        };
        if rest.is_empty() {
            return Err(crate::Error::BadServerUrl(self.server_url.clone()));
        }
        let rest = rest.strip_suffix("/v1/ws").unwrap_or(rest);
        Ok(format!("{ws_scheme}://{rest}/v1/ws"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_from_http_and_ws_forms() {
        let c = |u: &str| ClientConfig::new(u, "/tmp/x").websocket_url();
        assert_eq!(
            c("http://127.0.0.1:7878").unwrap(),
            "ws://127.0.0.1:7878/v1/ws"
        );
        assert_eq!(
            c("https://relay.example/").unwrap(),
            "wss://relay.example/v1/ws"
        );
        assert_eq!(c("ws://h:1/v1/ws").unwrap(), "ws://h:1/v1/ws");
        assert!(c("ftp://h").is_err());
        assert!(c("no-scheme").is_err());
        assert!(c("http://").is_err());
    }
}
