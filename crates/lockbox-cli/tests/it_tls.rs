//! The plain `lockbox` binary over HTTPS: a private moto server serving TLS with a test CA's
//! certificate, trusted through `SSL_CERT_FILE` (which the system-roots loader honours, as on
//! a host with a corporate CA). Proves the shipped TLS stack (rustls with ring, built on the
//! first `https` request) completes handshakes, and refuses a server it cannot verify.

use std::net::TcpStream;
use std::path::Path;
use std::process::Output;

use lockbox_testkit::cli::aws_command;
use lockbox_testkit::moto::{self, PrivateMoto};
use lockbox_testkit::tag;

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, written to `dir`:
/// (CA file, server certificate file, server key file).
fn certificates(dir: &Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", server.pem()),
        write("server.key", key.serialize_pem()),
    )
}

fn lockbox(args: &[&str], ca_file: &str, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

#[test]
fn it_tls_get_and_put_over_https_with_a_trusted_ca_and_refused_without() {
    let Some(exe) = moto::executable(
        "it_tls_get_and_put_over_https_with_a_trusted_ca_and_refused_without",
        "This test needs a private moto server because it serves TLS.",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, cert, key) = certificates(dir.path());
    let listening = |m: &PrivateMoto| TcpStream::connect(("127.0.0.1", m.port())).is_ok();
    let server = PrivateMoto::start(&exe, &["-c", &cert, "-k", &key], listening);
    let endpoint = format!("https://localhost:{}", server.port());

    let config = dir.path().join("secretsManagerConfig.json");
    let config = config.to_str().unwrap();
    let extra = format!("region=us-east-1,ssm-parameter-path=/it-tls-{}", tag());
    let generated = lockbox(
        &[
            "generate",
            "--type",
            "aws-ssm",
            "--name",
            "node1",
            "--dir",
            config,
            "--extra",
            &extra,
            "--server-url",
            &endpoint,
        ],
        &ca_file,
        None,
    );
    assert!(generated.status.success(), "{generated:?}");

    let put = lockbox(
        &["put", "--config", config, "k"],
        &ca_file,
        Some(b"over-tls"),
    );
    assert!(
        put.status.success(),
        "put over TLS: {}\nmoto:\n{}",
        String::from_utf8_lossy(&put.stderr),
        server.log_tail()
    );
    let got = lockbox(&["get", "--config", config, "k"], &ca_file, None);
    assert!(
        got.status.success(),
        "get over TLS: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, b"over-tls");

    // A CA file that does not hold the server's issuer: the handshake fails, and the error
    // says the secret could not be read, not that it is absent.
    let other_dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificates(other_dir.path());
    let refused = lockbox(&["get", "--config", config, "k"], &other_ca, None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("not found"), "{stderr}");
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(!stderr.contains("over-tls"), "{stderr}");
}
