//! Dev-only scaffolding for lockbox's tests, in one place.
//!
//! - [`emulator`]: the AWS emulator's endpoint, or a clear "SKIPPED" line and `None`;
//!   [`vault_server`]: the same for the Vault-compatible server.
//! - [`tag`] and [`prefix`]: random name parts, so tests sharing a server never collide.
//! - [`aws`] (feature `aws`): SDK clients with static test credentials, and SSM / Secrets
//!   Manager backends aimed at an endpoint.
//! - [`wire`]: wiremock answers in the AWS JSON protocol (errors, throttling, 5xx, slow
//!   answers) and endpoints that reset or refuse connections.
//! - [`faults`] (feature `aws`): the transport-fault suite every AWS backend runs.
//! - [`FaultyBackend`]: an in-memory backend that injects errors, logs and counts calls, and
//!   can hold fetches at a gate.
//! - [`lambda_api`] (feature `lambda`): a local Lambda Extensions API.
//! - [`cli`]: the built `lockbox` binary in a clean environment.
//! - [`moto`]: a private moto server, for tests that change server-wide state or serve TLS.
//! - [`conformance`]: the behaviour every backend promises, one function per behaviour, and
//!   [`conformance_tests!`] to run them all as separate tests.

pub mod cli;
pub mod conformance;
mod faulty;
pub mod moto;
pub mod wire;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod faults;
#[cfg(feature = "lambda")]
pub mod lambda_api;

pub use faulty::{FaultyBackend, Op};

/// The environment variable `cargo xtask it` sets to the emulator's endpoint.
pub const ENDPOINT_ENV: &str = "LOCKBOX_IT_ENDPOINT";

/// The emulator endpoint `cargo xtask` started, or `None` after saying why `test` skips.
pub fn emulator(test: &str) -> Option<String> {
    match std::env::var(ENDPOINT_ENV) {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!(
                "SKIPPED {test}: {ENDPOINT_ENV} is not set; run `cargo xtask it` (or `cargo xtask ci`), \
                 which starts the AWS emulator and sets it"
            );
            None
        }
    }
}

/// The environment variables `cargo xtask it` sets to the Vault-compatible server's address
/// and root token.
pub const VAULT_ENV: [&str; 2] = ["LOCKBOX_IT_VAULT_ADDR", "LOCKBOX_IT_VAULT_TOKEN"];

/// The address and root token of the OpenBao dev server `cargo xtask` started, or `None` after
/// saying why `test` skips.
pub fn vault_server(test: &str) -> Option<(String, String)> {
    let [addr, token] = VAULT_ENV.map(|var| std::env::var(var).unwrap_or_default());
    if addr.is_empty() || token.is_empty() {
        eprintln!(
            "SKIPPED {test}: {} and {} are not set; run `cargo xtask it` (or `cargo xtask ci`), \
             which starts an OpenBao dev server and sets them",
            VAULT_ENV[0], VAULT_ENV[1]
        );
        return None;
    }
    Some((addr, token))
}

/// A random lowercase tag for test names, such as `k3x9q2m1w0`: a letter, then nine letters
/// or digits.
pub fn tag() -> String {
    use rand::Rng;
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(10);
    out.push(char::from(LETTERS[rng.gen_range(0..LETTERS.len())]));
    out.extend((0..9).map(|_| char::from(ALNUM[rng.gen_range(0..ALNUM.len())])));
    out
}

/// `base` followed by `-` and a fresh [`tag`], such as `conf-k3x9q2m1w0`.
pub fn prefix(base: &str) -> String {
    format!("{base}-{}", tag())
}
