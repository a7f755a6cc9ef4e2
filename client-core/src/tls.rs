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

use crate::failure::{ConnectionFailure, TlsRootsProblem};
use crate::Error;

/// Where Linux and BSD distributions keep the system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn roots_error(path: Option<&Path>, problem: TlsRootsProblem) -> Error {
    Error::Connection(ConnectionFailure::TlsRoots {
        path: path.map(Path::to_path_buf),
        problem,
    })
}

/// Builds the client configuration trusting the roots in `pem_file`, or the
/// first system bundle found.
pub(crate) fn client_config(pem_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let path: PathBuf = match pem_file {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| roots_error(None, TlsRootsProblem::NoSystemBundle))?,
    };
    let pem = std::fs::read(&path)
        .map_err(|e| roots_error(Some(&path), TlsRootsProblem::Unreadable(e)))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| roots_error(Some(&path), TlsRootsProblem::NotPem(e)))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(roots_error(
            Some(&path),
            TlsRootsProblem::NoUsableCertificate,
        ));
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
        let missing = Path::new("/nonexistent/ca.pem");
        let err = client_config(Some(missing)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert!(
            matches!(
                &err,
                Error::Connection(ConnectionFailure::TlsRoots {
                    path: Some(path),
                    problem: TlsRootsProblem::Unreadable(_),
                }) if path == missing
            ),
            "{err:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"not a certificate").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no usable certificate"), "{err}");
        assert!(
            matches!(
                err,
                Error::Connection(ConnectionFailure::TlsRoots {
                    problem: TlsRootsProblem::NoUsableCertificate,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_real_ca_file_loads() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/tls/ca.pem");
        assert!(client_config(Some(&ca)).is_ok());
    }
}
