//! `--web.config.file`: TLS and basic auth in exporter-toolkit's format, the
//! file operators already write for node_exporter and every other Prometheus
//! exporter.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # relative paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
//!   client_ca_file: clients.crt
//!   min_version: TLS12
//! http_server_config:
//!   headers:
//!     X-Content-Type-Options: nosniff
//! basic_auth_users:
//!   prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
//! ```
//!
//! What exporter-toolkit accepts but this exporter cannot honour (cipher
//! suite and curve names of Go's TLS, client certificates without
//! verification, SAN allow-lists, rate limits) is refused with its name,
//! never silently ignored. The file is read once, at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WebConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What the web config file asks for, ready to serve with.
#[derive(Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name to bcrypt hash; empty: no basic auth.
    pub users: BTreeMap<String, String>,
    /// Headers added to every answer.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsServerConfig>,
    http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_ca: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<serde_yaml_ng::Value>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<serde_yaml_ng::Value>,
    client_allowed_sans: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit lets the file set, with the values it allows
/// (none listed: any value).
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        // An empty file is a valid config that asks for nothing.
        let file: File = if text.trim().is_empty() {
            serde_yaml_ng::from_str("{}")
        } else {
            serde_yaml_ng::from_str(&text)
        }
        .map_err(|e| invalid(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        file.resolve(dir).map_err(invalid)
    }

    /// TLS from a PEM certificate chain and key (`--tls-cert`/`--tls-key`).
    pub fn tls_from_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
        let certs = read_certs(&std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?)
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?)
            .map_err(|e| format!("{}: no private key: {e}", key.display()))?;
        server_config(certs, key, None, rustls::ALL_VERSIONS)
    }
}

impl File {
    fn resolve(self, dir: &Path) -> Result<WebConfig, String> {
        if self.rate_limit.is_some() {
            return Err("rate_limit is not supported by statescope-exporter (it sheds load by itself: see --web.max-requests and --web.max-write-requests)".into());
        }
        let mut config = WebConfig::default();
        if let Some(tls) = self.tls_server_config {
            config.tls = Some(tls.resolve(dir)?);
        }
        if let Some(http) = self.http_server_config {
            if http.http2 == Some(true) {
                tracing::info!("http_server_config.http2: statescope-exporter serves HTTP/1.1 only");
            }
            for (name, value) in http.headers.unwrap_or_default() {
                let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(n, _)| *n == name) else {
                    return Err(format!("HTTP header {name:?} can not be configured"));
                };
                if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                    return Err(format!(
                        "invalid value for {name}: expected one of {allowed:?}, got {value:?}"
                    ));
                }
                if value.is_empty() {
                    continue;
                }
                let value =
                    HeaderValue::from_str(&value).map_err(|_| format!("invalid value for {name}: {value:?}"))?;
                config.headers.push((
                    HeaderName::from_bytes(name.as_bytes()).expect("listed names are valid"),
                    value,
                ));
            }
        }
        for (user, hash) in self.basic_auth_users.unwrap_or_default() {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("basic_auth_users.{user}: not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"))?;
            if user.contains(':') {
                return Err(format!("basic_auth_users: user name {user:?} contains ':'"));
            }
            config.users.insert(user, hash);
        }
        Ok(config)
    }
}

impl TlsServerConfig {
    fn resolve(self, dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
        for (given, name) in [
            (self.cipher_suites.is_some(), "cipher_suites"),
            (self.curve_preferences.is_some(), "curve_preferences"),
            (
                self.prefer_server_cipher_suites.is_some(),
                "prefer_server_cipher_suites",
            ),
            (self.client_allowed_sans.is_some(), "client_allowed_sans"),
        ] {
            if given {
                return Err(format!(
                    "tls_server_config.{name} is not supported by statescope-exporter (rustls picks safe suites and curves itself)"
                ));
            }
        }
        let read = |inline: Option<String>, file: Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>, String> {
            match (inline, file) {
                (Some(_), Some(_)) => Err(format!("tls_server_config: give {what} or {what}_file, not both")),
                (Some(text), None) => Ok(Some(text.into_bytes())),
                (None, Some(file)) => {
                    let file = dir.join(file);
                    std::fs::read(&file)
                        .map(Some)
                        .map_err(|e| format!("tls_server_config.{what}_file {}: {e}", file.display()))
                }
                (None, None) => Ok(None),
            }
        };
        let cert = read(self.cert, self.cert_file, "cert")?.ok_or("tls_server_config: cert_file is required")?;
        let key = read(self.key, self.key_file, "key")?.ok_or("tls_server_config: key_file is required")?;
        let certs = read_certs(&cert).map_err(|e| format!("tls_server_config.cert_file: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| format!("tls_server_config.key_file: no private key: {e}"))?;
        let client_ca = read(self.client_ca, self.client_ca_file, "client_ca")?;
        let client_auth = match self.client_auth_type.as_deref().unwrap_or("NoClientCert") {
            "NoClientCert" => None,
            kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven") => {
                let ca = client_ca.ok_or(format!(
                    "tls_server_config: client_auth_type {kind} needs client_ca_file"
                ))?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(&ca).map_err(|e| format!("tls_server_config.client_ca_file: {e}"))? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
                }
                let builder = WebPkiClientVerifier::builder(Arc::new(roots));
                let builder = if kind == "VerifyClientCertIfGiven" {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                Some(
                    builder
                        .build()
                        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?,
                )
            }
            kind @ ("RequestClientCert" | "RequireAnyClientCert") => {
                return Err(format!(
                    "tls_server_config.client_auth_type {kind} (certificates accepted without verification) is not supported; use RequireAndVerifyClientCert"
                ));
            }
            other => return Err(format!("tls_server_config.client_auth_type: unknown {other:?}")),
        };
        let min = tls_version(self.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
        let max = tls_version(self.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
        let versions: Vec<_> = rustls::ALL_VERSIONS
            .iter()
            .copied()
            .filter(|v| (min..=max).contains(&rank(v)))
            .collect();
        if versions.is_empty() {
            return Err("tls_server_config: no TLS version between min_version and max_version that rustls supports (TLS12, TLS13)".into());
        }
        server_config(certs, key, client_auth, &versions)
    }
}

/// TLS versions by number: 10 for TLS 1.0 ... 13 for TLS 1.3.
fn tls_version(name: &str, field: &str) -> Result<u8, String> {
    match name {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(format!(
            "tls_server_config.{field}: unknown {other:?} (TLS10, TLS11, TLS12 or TLS13)"
        )),
    }
}

fn rank(version: &rustls::SupportedProtocolVersion) -> u8 {
    if version.version == rustls::ProtocolVersion::TLSv1_3 {
        13
    } else {
        12
    }
}

fn read_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(certs)
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        WebConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn basic_auth_users_need_bcrypt_hashes() {
        let config =
            load("basic_auth_users:\n  prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n")
                .unwrap();
        assert!(config.users.contains_key("prometheus"));
        let e = load("basic_auth_users:\n  prometheus: secret\n").err().unwrap();
        assert!(e.contains("basic_auth_users.prometheus: not a bcrypt hash"), "{e}");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        for (text, expected) in [
            (
                "tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                "cipher_suites is not supported",
            ),
            (
                "rate_limit:\n  interval: 1s\n  burst: 2\n",
                "rate_limit is not supported",
            ),
            ("tls_srever_config: {}\n", "unknown field `tls_srever_config`"),
            ("tls_server_config:\n  key_file: k.pem\n", "cert_file is required"),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: me\n",
                "\"X-Powered-By\" can not be configured",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "invalid value for X-Frame-Options",
            ),
        ] {
            let e = load(text).err().unwrap_or_else(|| panic!("{text} was accepted"));
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn an_empty_file_asks_for_nothing() {
        let config = load("").unwrap();
        assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
    }
}
