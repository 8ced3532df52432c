//! Readiness probe: one real SSM call over plain HTTP/1.1, no SDK.

use anyhow::{Result, bail};

use crate::util::http::Client;

/// Sends `AmazonSSM.DescribeParameters` to `127.0.0.1:port` and succeeds on HTTP 200.
///
/// Emulators accept any signature, so the Authorization header only has to look like SigV4
/// (they read the access key and region from its credential scope).
pub fn ssm_answers(port: u16) -> Result<()> {
    ssm_answers_at("127.0.0.1", port)
}

/// Like [`ssm_answers`], at `host:port`.
pub fn ssm_answers_at(host: &str, port: u16) -> Result<()> {
    let response = Client::new(host, port).aws_json(
        "test",
        "us-east-1",
        "ssm",
        "AmazonSSM.DescribeParameters",
        "{}",
    )?;
    if !response.is_ok() {
        let body: String = response.body.chars().take(200).collect();
        bail!(
            "SSM DescribeParameters answered `{}`: {body}",
            response.status_line
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe against the shared emulator (skipped without `LOCKBOX_IT_ENDPOINT`), and
    /// against a port nothing listens on.
    #[test]
    fn answers_on_the_emulator_and_not_on_a_closed_port() {
        let closed = crate::util::free_port().unwrap();
        assert!(ssm_answers(closed).is_err());
        let Some(port) = crate::util::port_or_skip(crate::ENV_ENDPOINT) else {
            return;
        };
        ssm_answers(port).unwrap();
    }
}
