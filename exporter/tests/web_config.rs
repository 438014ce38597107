//! The exporter as a Prometheus exporter is run: `--web.listen-address`, and
//! `--web.config.file` in exporter-toolkit's format (the file written for
//! node_exporter: TLS, client certificates, bcrypt basic-auth users), and
//! `statescope_build_info`.

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{BIN, TOKEN, free_port};

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the exporter with `args` and waits (30 s at most) until `ready` answers.
async fn start(dir: &Path, port: u16, args: &[&str], ready: reqwest::RequestBuilder) -> Exporter {
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut child = support::exporter_command(&format!("127.0.0.1:{port}"), &dir.join("data"))
        .arg("--token-file")
        .arg(&token_file)
        .args(args)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready.try_clone().unwrap().send().await.is_ok() {
            return Exporter(child);
        }
        assert!(child.try_wait().unwrap().is_none(), "the exporter exited");
        assert!(Instant::now() < deadline, "no answer in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CA, a server certificate for localhost and a client certificate, both signed by the CA.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf("localhost"),
        client: leaf("prometheus"),
    }
}

#[tokio::test]
async fn tls_and_basic_auth_from_an_exporter_toolkit_web_config_protect_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    std::fs::write(dir.path().join("tls/server.crt"), &pki.server.0).unwrap();
    std::fs::write(dir.path().join("tls/server.key"), &pki.server.1).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // Paths relative to the file, as exporter-toolkit reads them.
    std::fs::write(
        dir.path().join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prometheus: {hash}\n"
        ),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let web_yml = dir.path().join("web.yml");
    let _exporter = start(
        dir.path(),
        port,
        &["--web.config.file", web_yml.to_str().unwrap()],
        client.get(format!("{base}/healthz")),
    )
    .await;

    for path in ["/metrics", "/healthz", "/api/v1/machines", "/"] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} without a password");
        assert_eq!(res.headers()["www-authenticate"], "Basic");
        let res = client
            .get(format!("{base}{path}"))
            .basic_auth("prometheus", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path} with a wrong password");
        let res = client
            .get(format!("{base}{path}"))
            .basic_auth("nobody", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path} with an unknown user");
    }
    let res = client
        .get(format!("{base}/metrics"))
        .basic_auth("prometheus", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let text = res.text().await.unwrap();
    let build = text
        .lines()
        .find(|l| l.starts_with("statescope_build_info{"))
        .unwrap_or_else(|| panic!("no statescope_build_info in\n{text}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.contains("revision=\"")
            && build.contains("rustversion=\"1.")
            && build.ends_with("} 1"),
        "{build}"
    );

    // Writes: the bearer token is the credential (one Authorization header
    // cannot carry both); basic auth alone does not write.
    let event = json!({"type": "transition", "kind": "circuit_breaker", "machine": "m", "to": "open"});
    let res = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = client
        .post(format!("{base}/api/v1/events"))
        .basic_auth("prometheus", Some("s3cret"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn require_and_verify_client_cert_admits_only_clients_with_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    for (name, pem) in [
        ("server.crt", &pki.server.0),
        ("server.key", &pki.server.1),
        ("ca.crt", &pki.ca_pem),
    ] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         \x20 client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    )
    .unwrap();
    let root = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let identity = reqwest::Identity::from_pem(format!("{}{}", pki.client.0, pki.client.1).as_bytes()).unwrap();
    let with_cert = reqwest::Client::builder()
        .add_root_certificate(root.clone())
        .identity(identity)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let without_cert = reqwest::Client::builder()
        .add_root_certificate(root)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let port = free_port();
    let url = format!("https://localhost:{port}/healthz");
    let web_yml = dir.path().join("web.yml");
    let _exporter = start(
        dir.path(),
        port,
        &["--web.config.file", web_yml.to_str().unwrap()],
        with_cert.get(&url),
    )
    .await;
    let res = with_cert.get(&url).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok\n");
    assert!(
        without_cert.get(&url).send().await.is_err(),
        "a client without a certificate was served"
    );
}

#[test]
fn a_web_config_it_cannot_honour_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "tls_server_config:\n  cert_file: x.crt\n  key_file: x.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "cipher_suites is not supported",
        ),
        (
            "basic_auth_users:\n  prometheus: plain-text\n",
            "basic_auth_users.prometheus: not a bcrypt hash",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "missing.crt",
        ),
        ("basic_auth_user:\n  prometheus: x\n", "unknown field `basic_auth_user`"),
    ] {
        let file = dir.path().join("web.yml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(BIN)
            .args(["--web.listen-address", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--web.config.file")
            .arg(&file)
            .env_remove("STATESCOPE_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: started");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}
