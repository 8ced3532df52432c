//! `credentials_file_path`: AWS credentials read from a shared-credentials file and re-read
//! when it changes, as the AWS agent's file-based provider does, so a sidecar that rotates
//! the file keeps serve signing with current keys.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

/// The agent's variable for the reload period (seconds), honoured as is so its tests and
/// deployments carry over.
pub const ENV_RELOAD_SECS: &str = "SMA_CREDENTIALS_RELOAD_SECS";

/// How often the file is checked for changes (the agent's default).
const DEFAULT_RELOAD: Duration = Duration::from_secs(5 * 60);

/// The longest the SDK keeps credentials before asking again (the agent's 10 minutes).
const MAX_TTL: Duration = Duration::from_secs(10 * 60);

/// Credentials from the `[default]` profile (or `AWS_PROFILE`) of one credentials file. A
/// missing, empty or malformed file is not fatal: reads fail (the agent answers
/// `InternalFailure`) until valid credentials appear, picked up by the background check.
#[derive(Clone, Debug)]
pub struct FileCredentials {
    cached: Arc<RwLock<Option<Credentials>>>,
    reload: Duration,
    path: PathBuf,
    /// Why the first read failed, if it did (logged by [`log_start`](Self::log_start)).
    first_error: Option<String>,
}

impl FileCredentials {
    /// Loads `path` now and re-reads it every reload period (`SMA_CREDENTIALS_RELOAD_SECS`,
    /// default 300 s) when its modification time changed, or after a failed read. Must be
    /// called inside a Tokio runtime; the check stops with the runtime.
    pub async fn watch(path: PathBuf) -> Self {
        let reload = std::env::var(ENV_RELOAD_SECS)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_RELOAD, Duration::from_secs);
        Self::watch_every(path, reload).await
    }

    /// [`watch`](Self::watch) with the reload period `reload`.
    async fn watch_every(path: PathBuf, reload: Duration) -> Self {
        let cached = Arc::new(RwLock::new(None));
        let mut loaded_at_mtime = None;
        let mut first_error = None;
        match load(&path).await {
            Ok(creds) => {
                *cached.write().unwrap_or_else(|e| e.into_inner()) = Some(creds);
                loaded_at_mtime = modified(&path);
            }
            Err(e) => first_error = Some(e.to_string()),
        }
        let shared = cached.clone();
        let watched = path.clone();
        tokio::spawn(async move {
            let path = watched;
            let mut last = loaded_at_mtime;
            let mut ticks = tokio::time::interval(reload);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let now = modified(&path);
                if now.is_some() && now == last {
                    continue;
                }
                match load(&path).await {
                    Ok(creds) => {
                        *shared.write().unwrap_or_else(|e| e.into_inner()) = Some(creds);
                        last = now;
                        warn_if_shared(&path);
                        tracing::debug!("credentials reloaded from {}", path.display());
                    }
                    // The old credentials stay: a half-written file is read again next time.
                    Err(e) => {
                        tracing::warn!("cannot reload credentials from {}: {e}", path.display())
                    }
                }
            }
        });
        Self {
            cached,
            reload,
            path,
            first_error,
        }
    }

    /// Logs how the first read went. Called once the endpoint's start line is out: the
    /// agent's users (and its tests) expect `listening on` as the first line.
    pub fn log_start(&self) {
        match &self.first_error {
            None => {
                warn_if_shared(&self.path);
                tracing::info!("credentials loaded from {}", self.path.display());
            }
            Some(e) => tracing::warn!(
                "no credentials from {} yet ({e}); checking again every {} s",
                self.path.display(),
                self.reload.as_secs()
            ),
        }
    }
}

impl ProvideCredentials for FileCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let current = self
            .cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Expire with the next check, so the SDK's identity cache asks again once the file
        // may have changed.
        let ttl = self.reload.min(MAX_TTL);
        future::ProvideCredentials::ready(
            current
                .map(|c| {
                    Credentials::new(
                        c.access_key_id(),
                        c.secret_access_key(),
                        c.session_token().map(str::to_owned),
                        Some(SystemTime::now() + ttl),
                        "lockbox-serve credentials_file_path",
                    )
                })
                .ok_or_else(|| CredentialsError::not_loaded("no credentials in the file yet")),
        )
    }
}

/// Reads the file with the SDK's own profile-file parser.
async fn load(path: &Path) -> Result<Credentials, CredentialsError> {
    let files = EnvConfigFiles::builder()
        .with_file(EnvConfigFileKind::Credentials, path)
        .build();
    ProfileFileCredentialsProvider::builder()
        .configure(&lockbox_aws::provider_config())
        .profile_files(files)
        .build()
        .provide_credentials()
        .await
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Warns when group or others may read the file (keys in it are long-lived secrets).
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "credentials file {} is readable by group or others ({:o}): chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, key: &str) {
        std::fs::write(
            path,
            format!("[default]\naws_access_key_id={key}\naws_secret_access_key=s\n"),
        )
        .unwrap();
    }

    async fn wait_for(p: &FileCredentials, key: &str) {
        for _ in 0..200 {
            if let Ok(c) = p.provide_credentials().await
                && c.access_key_id() == key
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("credentials {key} never loaded");
    }

    #[tokio::test]
    async fn waits_for_a_missing_file_follows_changes_and_keeps_the_last_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let provider = FileCredentials::watch_every(path.clone(), Duration::from_millis(50)).await;
        assert!(provider.provide_credentials().await.is_err(), "no file yet");
        write(&path, "FIRST");
        wait_for(&provider, "FIRST").await;
        // A rewrite (new modification time) is picked up.
        tokio::time::sleep(Duration::from_millis(20)).await;
        write(&path, "SECOND");
        wait_for(&provider, "SECOND").await;
        // A malformed rewrite keeps the last good credentials.
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&path, "not a credentials file").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let creds = provider.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "SECOND");
        assert!(creds.expiry().is_some(), "expires with the next check");
    }
}
