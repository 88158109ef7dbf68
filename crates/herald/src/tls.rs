//! `wss://` with rustls (ring provider): server settings from PEM files, client settings with
//! the platform's roots plus any extra CA.

use crate::error::{Error, Result};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use tokio_rustls::rustls::{ClientConfig, ServerConfig};
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// Server settings from a PEM certificate chain and a PEM private key, as bytes.
///
/// # Errors
/// [`Error::Tls`] when either does not parse or they do not match.
pub fn server_config_from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(tls_error)?;
    if certs.is_empty() {
        return Err(Error::Tls("no certificate in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(tls_error)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Server settings from PEM files.
///
/// # Errors
/// [`Error::Io`] when a file cannot be read; [`Error::Tls`] as for [`server_config_from_pem`].
pub fn server_config_from_pem_files(
    cert_path: impl AsRef<std::path::Path>,
    key_path: impl AsRef<std::path::Path>,
) -> Result<Arc<ServerConfig>> {
    server_config_from_pem(&std::fs::read(cert_path)?, &std::fs::read(key_path)?)
}

/// Client settings trusting the platform's roots and `extra_roots` (DER), e.g. a test CA or a
/// self-signed server certificate.
///
/// # Errors
/// [`Error::Tls`] when an extra root is not a valid certificate.
pub fn client_config(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable platform certificates are skipped: extra roots may be all a test needs.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(tls_error)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads DER certificates from PEM bytes (for [`client_config`]'s extra roots).
///
/// # Errors
/// [`Error::Tls`] when the PEM does not parse.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(tls_error)
}
