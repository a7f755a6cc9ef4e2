//! TLS for `wss://` relays: a rustls client configuration (ring provider,
//! TLS 1.2 and 1.3, full certificate and host-name verification) whose
//! trusted roots come from a PEM file — the operator's CA when configured,
//! else the system bundle.
//!
//! Must never: disable certificate verification, or silently fall back to
//! plaintext when TLS was asked for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::failure::ConnectionFailure;
use crate::Error;

/// Where Linux and BSD distributions keep the system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Builds the client configuration trusting the roots in `pem_file`, or the
/// first system bundle found.
pub(crate) fn client_config(pem_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let path: PathBuf = match pem_file {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                Error::Connection(ConnectionFailure::TlsRoots {
                    what: "no system CA bundle found; configure the relay's CA file (tls_roots)"
                        .into(),
                })
            })?,
    };
    let pem = std::fs::read(&path).map_err(|e| {
        Error::Connection(ConnectionFailure::TlsRoots {
            what: format!("reading CA file {}: {e}", path.display()),
        })
    })?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Error::Connection(ConnectionFailure::TlsRoots {
                what: format!("CA file {}: {e}", path.display()),
            })
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Connection(ConnectionFailure::TlsRoots {
            what: format!("CA file {} holds no usable certificate", path.display()),
        }));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connection(ConnectionFailure::Tls(Box::new(e))))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_files_are_clear_errors() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"not a certificate").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no usable certificate"), "{err}");
    }

    #[test]
    fn a_real_ca_file_loads() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/tls/ca.pem");
        assert!(client_config(Some(&ca)).is_ok());
    }
}
