//! TLS settings for `wss://`: extra roots from `--ca`, or no certificate check with
//! `--insecure`.

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// The client TLS settings the options ask for; `None` keeps herald's default (platform roots).
///
/// # Errors
/// When the `--ca` file cannot be read or holds no valid certificate.
pub(crate) fn client_config(
    ca: Option<&Path>,
    insecure: bool,
) -> anyhow::Result<Option<Arc<herald::tls::ClientConfig>>> {
    if insecure {
        return Ok(Some(insecure_config()?));
    }
    let Some(path) = ca else {
        return Ok(None);
    };
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let roots = herald::tls::certificates_from_pem(&pem)
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!roots.is_empty(), "no certificate in {}", path.display());
    Ok(Some(herald::tls::client_config(&roots)?))
}

fn insecure_config() -> anyhow::Result<Arc<herald::tls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts whatever certificate the server presents (`--insecure` only): for test servers
/// with self-signed certificates. Handshake signatures are still checked against the presented
/// key, so the server must hold the key of the certificate it sends.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
