//! Reads from AWS through lockbox's own clients (lockbox-secretsmanager's GetSecretValue and
//! BatchGetSecretValue, lockbox-ssm's GetParameter and GetParameters), answered in the
//! agent's and the extension's JSON. [`Upstream`] is the response cache's loader: a
//! [`Load`] of [`Request`]s whose values are the finished bodies, so a hit is a map lookup
//! and a reference-counted `Bytes` clone. Errors stay the clients' lockbox errors (their kind,
//! from each crate's one code table, drives stale-if-error); [`UpstreamError::of`] renders
//! them as the agent does from the [`AwsFailure`] they carry.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Bytes;
use lockbox_aws::{AwsFailure, Transport};
use lockbox_cache::Load;
use lockbox_core::{Error, ErrorKind, Result};
use lockbox_secretsmanager::{SecretVersion, SecretsManagerClient};
use lockbox_ssm::{Parameter, SsmClient};
use serde::Serialize;

use crate::BACKEND;
use crate::metrics::Metrics;
use crate::request::Request;

/// What AWS (or the way to it) answered instead of a value: the status and JSON body the
/// agent sends back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamError {
    /// HTTP status to answer with.
    pub status: u16,
    /// The error code (`ResourceNotFoundException`, `TimeoutError`, `InternalFailure`, ...).
    pub code: String,
    /// AWS's message (empty for `InternalFailure`).
    pub message: String,
}

impl UpstreamError {
    pub(crate) fn timeout() -> Self {
        Self::new(504, "TimeoutError", "Timeout")
    }

    fn internal() -> Self {
        Self::new(500, "InternalFailure", "")
    }

    fn new(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The agent's error body: `{"__type":"X", "message":"Y"}`, or `{"__type":"InternalFailure"}`.
    pub fn body(&self) -> String {
        if self.code == "InternalFailure" {
            return "{\"__type\":\"InternalFailure\"}".into();
        }
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        format!(
            "{{\"__type\":{}, \"message\":{}}}",
            q(&self.code),
            q(&self.message)
        )
    }

    /// The agent's answer for a read that failed with `err`: a service error keeps its
    /// status, code and message; a code-less 4xx keeps its status (a refusal never reads as
    /// an outage); timeouts are 504, connection failures and unreadable answers 502,
    /// anything else 500. An error that carries no AWS answer (a batch slot AWS listed as
    /// invalid) is `ParameterNotFound` when it is a not-found, else 500.
    pub fn of(err: &Error) -> Self {
        if let Some(up) = std::error::Error::source(err).and_then(|s| s.downcast_ref::<Self>()) {
            return up.clone();
        }
        let Some(f) = AwsFailure::of(err) else {
            return if err.is_not_found() {
                Self::new(400, "ParameterNotFound", "")
            } else {
                Self::internal()
            };
        };
        match (f.transport, f.status) {
            (Some(Transport::Timeout), _) => Self::timeout(),
            (Some(Transport::Connect), _) => Self::new(502, "ConnectionError", "Read Error"),
            (Some(Transport::Unreadable), _) => Self::new(502, "ConnectionError", "Response Error"),
            (Some(_), _) => Self::internal(),
            (None, Some(status)) if !f.code.is_empty() => Self::new(status, &f.code, &f.message),
            (None, Some(status)) if (400..500).contains(&status) => Self::new(
                status,
                match status {
                    401 | 403 => "AccessDeniedException",
                    429 => "ThrottlingException",
                    _ => "ClientError",
                },
                "",
            ),
            _ => Self::internal(),
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.code, self.status)
    }
}

impl std::error::Error for UpstreamError {}

/// The agent's GetSecretValue body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SecretOut<'a> {
    #[serde(rename = "ARN")]
    arn: Option<&'a str>,
    name: Option<&'a str>,
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_stages: Option<&'a [String]>,
    created_date: Option<String>,
}

/// The extension's GetParameter body.
#[derive(Serialize)]
struct ParameterOut<'a> {
    #[serde(rename = "Parameter")]
    parameter: ParameterFields<'a>,
    #[serde(rename = "ResultMetadata")]
    result_metadata: Empty,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ParameterFields<'a> {
    #[serde(rename = "ARN")]
    arn: Option<&'a str>,
    data_type: Option<&'a str>,
    last_modified_date: Option<String>,
    name: Option<&'a str>,
    selector: Option<&'a str>,
    source_result: Option<&'a str>,
    #[serde(rename = "Type")]
    kind: Option<&'a str>,
    value: Option<&'a str>,
    version: i64,
}

fn render_failed(target: &str) -> Error {
    Error::new(ErrorKind::Backend, BACKEND, "cannot render the answer").with_secret(target)
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// [`version_bytes`] as a [`SecretValue`](lockbox_core::SecretValue) (the offline store's
/// answer).
pub(crate) fn version_body(v: &SecretVersion) -> Result<lockbox_core::SecretValue> {
    version_bytes(v).map(|b| lockbox_core::SecretValue::copy_from(&b))
}

/// The agent's GetSecretValue body for a version (a read, a batch or the sealed store):
/// `CreatedDate` as epoch seconds with their fraction, as the agent prints it.
pub(crate) fn version_bytes(v: &SecretVersion) -> Result<Bytes> {
    let (string, binary) = if v.binary {
        (None, Some(STANDARD.encode(v.value.expose_bytes())))
    } else {
        let s = std::str::from_utf8(v.value.expose_bytes()).map_err(|_| {
            Error::new(ErrorKind::Backend, BACKEND, "a SecretString is not UTF-8")
                .with_secret(&v.name)
        })?;
        (Some(s), None)
    };
    let body = SecretOut {
        arn: non_empty(&v.arn),
        name: non_empty(&v.name),
        version_id: non_empty(&v.version_id),
        secret_string: string,
        secret_binary: binary,
        version_stages: Some(&v.version_stages[..]),
        created_date: v.created_epoch_seconds().map(|s| s.to_string()),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|_| render_failed(&v.name))
}

/// The extension's GetParameter body for one parameter (dates as ISO 8601, as GetParameter's
/// JSON has them).
fn parameter_bytes(p: &Parameter) -> Result<Bytes> {
    let value = std::str::from_utf8(p.value.expose_bytes()).map_err(|_| render_failed(&p.name))?;
    let body = ParameterOut {
        parameter: ParameterFields {
            arn: p.arn.as_deref(),
            data_type: p.data_type.as_deref(),
            last_modified_date: p
                .last_modified_date
                .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            name: Some(&p.name),
            selector: p.selector.as_deref(),
            source_result: p.source_result.as_deref(),
            kind: p.kind.as_ref().map(|k| k.as_str()),
            value: Some(value),
            version: p.version,
        },
        result_metadata: Empty {},
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|_| render_failed(&p.name))
}

/// Both AWS clients; the response cache's loader.
#[derive(Clone)]
pub(crate) struct Upstream {
    sm: SecretsManagerClient,
    ssm: SsmClient,
    metrics: Arc<Metrics>,
    /// At most this many calls to AWS at once (`PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS`
    /// in Lambda extension mode); unlimited without.
    outbound: Option<Arc<tokio::sync::Semaphore>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upstream")
    }
}

/// BatchGetSecretValue takes at most this many ids a call.
const BATCH_GET_MAX: usize = 20;

/// GetParameters takes at most this many names a call.
const GET_PARAMETERS_MAX: usize = 10;

impl Upstream {
    pub(crate) fn new(
        sdk: &lockbox_aws::SdkConfig,
        metrics: Arc<Metrics>,
        max_outbound: Option<usize>,
    ) -> Self {
        Self {
            sm: SecretsManagerClient::new(sdk),
            ssm: SsmClient::new(sdk),
            metrics,
            outbound: max_outbound.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
        }
    }

    /// A permit for one call to AWS (none needed without a limit).
    async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.outbound {
            Some(s) => s.acquire().await.ok(),
            None => None,
        }
    }

    /// Reads from AWS; the value is the finished response body.
    pub(crate) async fn fetch(&self, req: &Request) -> Result<Bytes> {
        let _permit = self.permit().await;
        self.metrics.backend_call();
        let out = match req {
            Request::Secret {
                id,
                version_id,
                stage,
            } => self
                .sm
                .get_secret_value(id, version_id.as_deref(), stage.as_deref())
                .await
                .and_then(|v| version_bytes(&v)),
            Request::Parameter { decrypt, .. } => {
                let name = req.parameter_name().unwrap_or_default();
                self.ssm
                    .get_parameter(&name, *decrypt)
                    .await
                    .and_then(|p| parameter_bytes(&p))
            }
        };
        out.inspect_err(|e| self.metrics.upstream_error(e.kind()))
    }

    /// AWSCURRENT of several secrets with BatchGetSecretValue (20 ids a call, GetSecretValue
    /// when the batch call is refused). Slots that failed are `None`.
    async fn secrets_batch(&self, ids: &[String]) -> Vec<Option<Bytes>> {
        let _permit = self.permit().await;
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        for _ in 0..unique.len().div_ceil(BATCH_GET_MAX) {
            self.metrics.backend_call();
        }
        self.sm
            .fetch_many(ids, &lockbox_secretsmanager::FetchManyOptions::default())
            .await
            .results
            .into_iter()
            .map(|r| r.ok().and_then(|v| version_bytes(&v).ok()))
            .collect()
    }

    /// Parameters with GetParameters (10 names a call, concurrent). Slots not answered are
    /// `None`.
    async fn parameters_batch(&self, names: &[String], decrypt: bool) -> Vec<Option<Bytes>> {
        let _permit = self.permit().await;
        for _ in 0..names.len().div_ceil(GET_PARAMETERS_MAX) {
            self.metrics.backend_call();
        }
        self.ssm
            .get_parameters(names, decrypt)
            .await
            .into_iter()
            .map(|r| r.ok().and_then(|p| parameter_bytes(&p).ok()))
            .collect()
    }
}

impl Load<Request> for Upstream {
    type Value = Bytes;

    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, req: &Request) -> Result<Bytes> {
        self.fetch(req).await
    }

    /// The misses of one batch (prefetch, or reads that missed together): AWSCURRENT secrets
    /// with BatchGetSecretValue, parameters with GetParameters (10 a call, per decryption
    /// flag); the rest, and every slot a batch did not answer, read alone and concurrently
    /// (so an error is exactly what GetSecretValue or GetParameter answers).
    async fn load_many(&self, requests: &[Request]) -> Vec<Result<Bytes>> {
        let mut out: Vec<Option<Result<Bytes>>> = vec![None; requests.len()];
        let current: Vec<(usize, String)> = requests
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.current_secret()?.to_owned())))
            .collect();
        if current.len() > 1 {
            let ids: Vec<String> = current.iter().map(|(_, id)| id.clone()).collect();
            for ((i, _), body) in current.iter().zip(self.secrets_batch(&ids).await) {
                out[*i] = body.map(Ok);
            }
        }
        for decrypt in [true, false] {
            let params: Vec<(usize, String)> = requests
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Request::Parameter { decrypt: d, .. } if *d == decrypt => {
                        Some((i, r.parameter_name()?.into_owned()))
                    }
                    _ => None,
                })
                .collect();
            if params.len() > 1 {
                let list: Vec<String> = params.iter().map(|(_, n)| n.clone()).collect();
                for ((i, _), body) in params
                    .iter()
                    .zip(self.parameters_batch(&list, decrypt).await)
                {
                    out[*i] = body.map(Ok);
                }
            }
        }
        let rest = requests
            .iter()
            .zip(&out)
            .filter(|(_, o)| o.is_none())
            .map(|(r, _)| self.fetch(r));
        let mut rest = futures_util::future::join_all(rest).await.into_iter();
        out.into_iter()
            .map(|o| match o {
                Some(r) => r,
                None => rest
                    .next()
                    .unwrap_or_else(|| Err(Error::new(ErrorKind::Backend, BACKEND, "read failed"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_the_agents() {
        let e = UpstreamError {
            status: 400,
            code: "ResourceNotFoundException".into(),
            message: "Secrets Manager can't find the specified secret.".into(),
        };
        assert_eq!(
            e.body(),
            "{\"__type\":\"ResourceNotFoundException\", \"message\":\"Secrets Manager can't find the specified secret.\"}"
        );
        assert_eq!(
            UpstreamError::internal().body(),
            "{\"__type\":\"InternalFailure\"}"
        );
        let err = lockbox_aws::AwsFailure::service(
            Some(400),
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        )
        .into_error(ErrorKind::NotFound, "x", "gone".into());
        assert_eq!(UpstreamError::of(&err), e);
        let refused = lockbox_aws::AwsFailure::service(Some(403), "", "").into_error(
            ErrorKind::PermissionDenied,
            "x",
            "no".into(),
        );
        assert_eq!(UpstreamError::of(&refused).code, "AccessDeniedException");
    }
}
