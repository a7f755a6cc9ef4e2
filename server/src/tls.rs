//! TLS termination for the relay: loads a PEM certificate chain and key into
//! a rustls server configuration. The listener (`serve.rs`) runs each
//! handshake in the connection's own task within [`HANDSHAKE_TIMEOUT`], so a
//! client that opens a socket and stalls cannot hold up everyone else's
//! accept.
//!
//! Must never: log key material, fall back to plain text when TLS was asked
//! for, or let one handshake block the accept loop.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::TlsFiles;

/// A handshake that has not finished in this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The failure.
        source: io::Error,
    },
    /// A PEM file is not valid PEM (bad base64, an unterminated section).
    #[error("{path} is not a valid PEM file: {source}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// The key file holds no private key.
    #[error("no private key found in {0}")]
    NoKey(String),
    /// rustls refused the certificate/key pair.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Builds a rustls configuration (TLS 1.3 and 1.2, ring provider, HTTP/1.1
/// ALPN since WebSockets upgrade over HTTP/1.1).
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read_pem(&files.cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: files.cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.display().to_string()));
    }
    let key_pem = zeroize::Zeroizing::new(read_pem(&files.key)?);
    // The first PKCS#8, PKCS#1 or SEC1 key in the file, as rustls-pemfile's
    // `private_key` took it.
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey(files.key.display().to_string()))
        }
        Err(source) => {
            return Err(TlsError::Pem {
                path: files.key.display().to_string(),
                source,
            })
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn missing_and_empty_pem_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").expect("write");
        let files = TlsFiles {
            cert: PathBuf::from("/nonexistent/cert.pem"),
            key: empty.clone(),
        };
        assert!(matches!(
            load_server_config(&files),
            Err(TlsError::Read { .. })
        ));
        let files = TlsFiles {
            cert: empty.clone(),
            key: empty,
        };
        assert!(matches!(
            load_server_config(&files),
            Err(TlsError::NoCertificate(_))
        ));
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn the_fixture_pair_loads_and_a_key_file_without_a_key_is_refused() {
        let good = TlsFiles {
            cert: fixture("cert.pem"),
            key: fixture("key.pem"),
        };
        let config = load_server_config(&good).expect("fixture cert and key load");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // A certificate where the key belongs: PEM, but no private key in it.
        let swapped = TlsFiles {
            cert: fixture("cert.pem"),
            key: fixture("cert.pem"),
        };
        assert!(matches!(
            load_server_config(&swapped),
            Err(TlsError::NoKey(_))
        ));
    }

    #[test]
    fn broken_pem_is_a_pem_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = dir.path().join("broken.pem");
        // A section that never ends.
        std::fs::write(&broken, b"-----BEGIN CERTIFICATE-----\nMIIB\n").expect("write");
        let files = TlsFiles {
            cert: broken.clone(),
            key: fixture("key.pem"),
        };
        let err = load_server_config(&files).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.pem"), "{err}");
    }
}
