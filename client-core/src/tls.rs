//! TLS for `wss://` relays: a rustls client configuration (ring provider,
//! TLS 1.2 and 1.3, full certificate and host-name verification) whose
//! trusted roots are the operator's CA file when configured, else the
//! platform's roots as `rustls-native-certs` finds them (which honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`).
//!
//! Must never: disable certificate verification, or silently fall back to
//! plaintext when TLS was asked for.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::failure::{ConnectionFailure, TlsRootsProblem};
use crate::Error;

fn roots_error(path: Option<&Path>, problem: TlsRootsProblem) -> Error {
    Error::Connection(ConnectionFailure::TlsRoots {
        path: path.map(Path::to_path_buf),
        problem,
    })
}

/// Builds the client configuration trusting the roots in `pem_file`, or the
/// platform's roots.
pub(crate) fn client_config(pem_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let roots = match pem_file {
        Some(path) => file_roots(path)?,
        None => platform_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connection(ConnectionFailure::Tls(Box::new(e))))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path`.
fn file_roots(path: &Path) -> Result<RootCertStore, Error> {
    let pem =
        std::fs::read(path).map_err(|e| roots_error(Some(path), TlsRootsProblem::Unreadable(e)))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| roots_error(Some(path), TlsRootsProblem::NotPem(e)))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(roots_error(
            Some(path),
            TlsRootsProblem::NoUsableCertificate,
        ));
    }
    Ok(roots)
}

/// The platform's trusted roots. Certificates that fail to load are skipped
/// (a bundle often holds a few rustls cannot use); none at all is an error.
fn platform_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(roots_error(None, TlsRootsProblem::NoSystemBundle));
    }
    Ok(roots)
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

    fn fixture_ca() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/tls/ca.pem")
    }

    #[test]
    fn broken_pem_is_not_pem() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.pem");
        // A section that never ends.
        std::fs::write(&broken, b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let err = client_config(Some(&broken)).unwrap_err();
        assert!(err.to_string().contains("broken.pem"), "{err}");
        assert!(
            matches!(
                err,
                Error::Connection(ConnectionFailure::TlsRoots {
                    problem: TlsRootsProblem::NotPem(_),
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(file_roots(&fixture_ca()).unwrap().len(), 1);
    }

    /// The platform roots follow `SSL_CERT_FILE`, as OpenSSL-based tools do
    /// (a fixed list of bundle paths did not). The only test in this crate
    /// that touches these variables, so setting them races with nothing.
    #[test]
    fn platform_roots_honour_ssl_cert_file() {
        std::env::remove_var("SSL_CERT_DIR");
        std::env::set_var("SSL_CERT_FILE", fixture_ca());
        let roots = platform_roots();
        std::env::set_var("SSL_CERT_FILE", "/nonexistent/bundle.pem");
        let missing = platform_roots();
        std::env::remove_var("SSL_CERT_FILE");
        assert_eq!(roots.unwrap().len(), 1, "only the fixture CA is trusted");
        let err = missing.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Connection(ConnectionFailure::TlsRoots {
                    path: None,
                    problem: TlsRootsProblem::NoSystemBundle,
                })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("tls_roots"), "{err}");
    }
}
