//! `cargo xtask it --docker`: the emulator as a container with a pinned tag, through
//! testcontainers (feature `docker`; needs a Docker engine, e.g. on GitHub Actions).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::SyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::emulator::{Kind, Session};
use crate::probe;

/// LocalStack's image. Pinned: `latest` demands an auth token. Same version as the host runtime
/// pinned in fixtures/emulator/localstack-requirements.txt.
const LOCALSTACK_IMAGE: (&str, &str) = ("localstack/localstack", "4.14.0");
/// moto's image, the same version as fixtures/emulator/moto-requirements.txt.
const MOTO_IMAGE: (&str, &str) = ("motoserver/moto", "5.2.5");
/// How long the container gets to answer its first SSM call after it started.
const READY_DEADLINE: Duration = Duration::from_secs(120);

/// A running emulator container; removed when dropped.
pub struct Container(testcontainers::Container<GenericImage>);

impl Container {
    /// The last `lines` lines of the container's stdout and stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        for bytes in [self.0.stdout_to_vec(), self.0.stderr_to_vec()]
            .into_iter()
            .flatten()
        {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Starts the `kind` emulator's container and waits until it answers SSM.
pub fn start(kind: Kind) -> Result<Session> {
    let ((image, tag), port) = match kind {
        Kind::Localstack => (LOCALSTACK_IMAGE, 4566),
        Kind::Moto => (MOTO_IMAGE, 5000),
    };
    eprintln!("xtask: starting container {image}:{tag} (pulling it if needed)");
    let started = Instant::now();
    let mut request = GenericImage::new(image, tag)
        .with_exposed_port(port.tcp())
        .with_env_var("AWS_DEFAULT_REGION", crate::REGION);
    if kind == Kind::Localstack {
        request = request.with_env_var("DISABLE_EVENTS", "1");
    }
    let container = request
        .start()
        .with_context(|| format!("starting {image}:{tag} (is a Docker engine running?)"))?;
    let host_port = container
        .get_host_port_ipv4(port)
        .context("reading the mapped port")?;
    let host = match container
        .get_host()
        .context("reading the Docker host")?
        .to_string()
    {
        // Use the IPv4 loopback, never a name that may resolve to ::1.
        name if name == "localhost" => "127.0.0.1".to_owned(),
        name => name,
    };
    let container = Container(container);
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        match probe::ssm_answers_at(&host, host_port) {
            Ok(()) => break,
            Err(err) if Instant::now() >= deadline => bail!(
                "{image}:{tag} did not answer SSM at {host}:{host_port} within \
                 {READY_DEADLINE:?} ({err:#})\n--- container log ---\n{}",
                container.log_tail(crate::LOG_TAIL_LINES)
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    let endpoint = format!("http://{host}:{host_port}");
    eprintln!(
        "xtask: {image}:{tag} ready at {endpoint} after {:.1?}",
        started.elapsed()
    );
    Ok(Session::container(endpoint, kind, container))
}
