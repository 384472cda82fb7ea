//! TLS for stream sources: rustls with the ring provider, certificates from PEM files.
//!
//! A source with `tls = { cert, key }` serves TLS; with `client_ca` as well it requires every
//! client to present a certificate that CA signed (mutual TLS, how devices usually
//! authenticate to a collector). Everything is loaded and checked when the source starts, so
//! a missing file, a key that does not match or an unreadable CA fails the start (or the
//! reload) with the file named. The TLS tables of sources (`tls = { cert, key, client_ca }`)
//! and of destinations (`tls = { ca, cert, key, server_name }`) are read here, and their files
//! are opened and parsed while the config is read, so `--check-config` finds what the start
//! would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};

/// `tls = { cert, key, client_ca }` of a source: PEM files, relative to the config file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// `tls = { ca, cert, key, server_name }` of a destination: TLS towards a receiver.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClientTlsConfig {
    /// The CA that signed the receiver's certificate.
    pub ca: PathBuf,
    /// Our certificate and key, for receivers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the receiver's certificate must carry (default: the address's host).
    pub server_name: Option<String>,
}

/// A source's `tls` table, if it has one.
pub(crate) fn read_server(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<TlsConfig> {
    let mut s = s.table(d, "tls")?;
    let cert = s.required(d, "cert", pem_file(dirs, Pem::Certificates));
    let key = s.required(d, "key", pem_file(dirs, Pem::PrivateKey));
    let client_ca = s.value(d, "client_ca", pem_file(dirs, Pem::Certificates));
    s.finish(d);
    Some(TlsConfig {
        cert: cert?,
        key: key?,
        client_ca,
    })
}

/// A destination's `tls` table, if it has one.
pub(crate) fn read_client(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<ClientTlsConfig> {
    let mut s = s.table(d, "tls")?;
    let ca = s
        .value(d, "ca", pem_file(dirs, Pem::Certificates))
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let cert = s.value(d, "cert", pem_file(dirs, Pem::Certificates));
    let key = s.value(d, "key", pem_file(dirs, Pem::PrivateKey));
    let server_name = s.value(d, "server_name", reader::string);
    if cert.is_some() != key.is_some() {
        d.error(
            &s.span(),
            s.path(),
            "cert and key go together: give both or neither",
        );
    }
    s.finish(d);
    Some(ClientTlsConfig {
        ca,
        cert,
        key,
        server_name,
    })
}

/// What a TLS file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

/// A TLS file (relative to the config's directory) that exists and parses as `what`.
fn pem_file(dirs: &Dirs, what: Pem) -> impl Fn(&toml::de::DeValue<'_>) -> Result<PathBuf, String> {
    let dir = dirs.config_dir.clone();
    move |v| {
        let path = dir.join(reader::string(v)?);
        let shown = path.display();
        if let Err(e) = std::fs::File::open(&path) {
            return Err(format!("{shown}: {e}"));
        }
        match what {
            Pem::Certificates => {
                let certs = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{shown}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("{shown}: no PEM certificate in it"));
                }
            }
            Pem::PrivateKey => {
                PrivateKeyDer::from_pem_file(&path)
                    .map_err(|e| format!("{shown}: no PEM private key in it ({e})"))?;
            }
        }
        Ok(path)
    }
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in the file", path.display());
    }
    Ok(certs)
}

/// The server side of a source's TLS.
pub(crate) fn server_config(cfg: &TlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .with_context(|| format!("reading the private key in {}", cfg.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("{}: not a usable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "{} and {} do not make a usable certificate and key",
            cfg.cert.display(),
            cfg.key.display()
        )
    })?;
    Ok(Arc::new(config))
}
