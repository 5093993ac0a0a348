//! TLS material and rustls configurations for the client and peer listeners.

use std::path::Path;
use std::sync::Arc;

use prometheus::IntCounter;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ClusterError;

/// The cluster CA's client-certificate check, counting and logging what it refuses.
#[derive(Debug)]
struct CountingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refused: IntCounter,
}

impl ClientCertVerifier for CountingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| {
                self.refused.inc();
                tracing::warn!(error = %e, "refused a peer certificate");
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A node's certificate chain and key, and the cluster CA that signs every member.
#[derive(Clone)]
pub struct TlsMaterial {
    /// PEM of the cluster CA certificate.
    pub ca_pem: Vec<u8>,
    /// PEM of this node's certificate (server and client authentication).
    pub cert_pem: Vec<u8>,
    /// PEM of this node's private key; never printed.
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn tls_err(what: impl std::fmt::Display) -> ClusterError {
    ClusterError::Tls {
        reason: what.to_string(),
    }
}

/// The crypto provider every config uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsMaterial {
    /// Builds material from PEM text.
    pub fn from_pem(ca_pem: Vec<u8>, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        Self {
            ca_pem,
            cert_pem,
            key_pem,
        }
    }

    /// Reads the three PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, ClusterError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| tls_err(format!("cannot read {}: {e}", p.display())))
        };
        Ok(Self::from_pem(read(ca)?, read(cert)?, read(key)?))
    }

    fn chain(&self) -> Result<Vec<CertificateDer<'static>>, ClusterError> {
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&self.cert_pem).collect();
        let certs = certs.map_err(|e| tls_err(format!("bad certificate pem: {e}")))?;
        if certs.is_empty() {
            return Err(tls_err("no certificate in the node certificate file"));
        }
        Ok(certs)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, ClusterError> {
        PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| tls_err(format!("bad private key pem: {e}")))
    }

    /// The cluster CA as a root store.
    pub fn roots(&self) -> Result<RootCertStore, ClusterError> {
        roots_from_pem(&self.ca_pem)
    }

    /// Server config for the client HTTPS listener (no client certificate asked).
    pub fn client_listener_config(&self) -> Result<ServerConfig, ClusterError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(self.chain()?, self.key()?)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Server config for the peer listener: a client certificate from the cluster CA is required.
    /// Each certificate refused is counted in `refused` and logged at warn.
    pub fn peer_listener_config(&self, refused: IntCounter) -> Result<ServerConfig, ClusterError> {
        let inner =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider())
                .build()
                .map_err(tls_err)?;
        let verifier = Arc::new(CountingVerifier { inner, refused });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain()?, self.key()?)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// Client config for talking to peers: trusts the cluster CA and presents this node's certificate.
    pub fn peer_client_config(&self) -> Result<ClientConfig, ClusterError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain()?, self.key()?)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// A root store holding every certificate in `pem`.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, ClusterError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots
            .add(cert.map_err(|e| tls_err(format!("bad ca pem: {e}")))?)
            .map_err(tls_err)?;
    }
    if roots.is_empty() {
        return Err(tls_err("no certificate in the ca file"));
    }
    Ok(roots)
}

/// A client config that trusts only `ca_pem` (for HTTPS clients of the API: CLI, bench, tests).
pub fn api_client_config(ca_pem: &[u8]) -> Result<ClientConfig, ClusterError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots_from_pem(ca_pem)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A cluster certificate authority that signs node certificates (used by `roomraft dev` and tests;
/// production clusters may bring their own CA).
pub struct CertificateAuthority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A freshly issued node certificate and its key, as PEM.
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new self-signed CA.
    pub fn generate(name: &str) -> Result<Self, ClusterError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().map_err(tls_err)?;
        let cert = params.self_signed(&key).map_err(tls_err)?;
        Ok(Self { cert, key })
    }

    /// Loads a CA written by [`CertificateAuthority::cert_pem`] and [`CertificateAuthority::key_pem`].
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, ClusterError> {
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(tls_err)?;
        let params = rcgen::CertificateParams::from_ca_cert_pem(cert_pem).map_err(tls_err)?;
        let cert = params.self_signed(&key).map_err(tls_err)?;
        Ok(Self { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate for a node, valid for server and client authentication under the
    /// given DNS names and IP addresses.
    pub fn issue(&self, common_name: &str, names: &[String]) -> Result<IssuedCert, ClusterError> {
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(tls_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        let key = rcgen::KeyPair::generate().map_err(tls_err)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(tls_err)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Material for a node: this CA plus a certificate issued for `names`.
    pub fn node_material(
        &self,
        common_name: &str,
        names: &[String],
    ) -> Result<TlsMaterial, ClusterError> {
        let issued = self.issue(common_name, names)?;
        Ok(TlsMaterial::from_pem(
            self.cert_pem().into_bytes(),
            issued.cert_pem.into_bytes(),
            issued.key_pem.into_bytes(),
        ))
    }
}
