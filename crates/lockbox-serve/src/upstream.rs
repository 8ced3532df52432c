//! Reads from AWS, answered in the agent's and the extension's JSON: the loader of the
//! response cache ([`Upstream`] is a [`Load`] of [`Request`]s whose values are the finished
//! response bodies, so a hit is a map lookup and a reference-counted `Bytes` clone).

use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::error::SdkError;
use aws_smithy_types::date_time::Format;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Bytes;
use lockbox_cache::Load;
use lockbox_core::{Error, ErrorKind, Result, SecretValue};
use lockbox_secretsmanager::SecretVersion;
use serde::Serialize;

use crate::BACKEND;
use crate::metrics::Metrics;
use crate::request::Request;

/// What AWS (or the way to it) answered instead of a value: the status and JSON body the
/// agent sends back. Attached as the source of the lockbox [`Error`] so it survives the cache.
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
        Self {
            status: 504,
            code: "TimeoutError".into(),
            message: "Timeout".into(),
        }
    }

    fn internal() -> Self {
        Self {
            status: 500,
            code: "InternalFailure".into(),
            message: String::new(),
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

    fn kind(&self) -> ErrorKind {
        match self.code.as_str() {
            "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
                ErrorKind::NotFound
            }
            "ThrottlingException" | "TooManyRequestsException" => ErrorKind::Throttled,
            "AccessDeniedException" => ErrorKind::PermissionDenied,
            "TimeoutError" | "ConnectionError" => ErrorKind::Unavailable,
            _ if self.status >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        }
    }

    fn into_error(self, target: &str) -> Error {
        let kind = self.kind();
        Error::new(
            kind,
            BACKEND,
            format!("{} (HTTP {})", self.code, self.status),
        )
        .with_secret(target)
        .with_code(self.code.clone())
        .with_source(self)
    }

    /// The upstream answer carried by `err`, or an internal failure.
    pub fn of(err: &Error) -> Self {
        std::error::Error::source(err)
            .and_then(|s| s.downcast_ref::<UpstreamError>())
            .cloned()
            .unwrap_or_else(Self::internal)
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.code, self.status)
    }
}

impl std::error::Error for UpstreamError {}

/// Sorts an SDK error the way the agent does: service errors keep their code, message and
/// status (read by lockbox-aws' `sdk_failure`, the one place that takes SDK errors apart);
/// timeouts are 504, connection failures 502, anything else 500.
fn classify<E>(
    err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> UpstreamError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    let transport = |status, code: &str, message: &str| UpstreamError {
        status,
        code: code.into(),
        message: message.into(),
    };
    match err {
        SdkError::ServiceError(_) => match lockbox_aws::sdk_failure(err) {
            lockbox_aws::Failure::Service {
                code,
                message,
                status: Some(status),
            } if !code.is_empty() => UpstreamError {
                status,
                code,
                message,
            },
            // An answer whose body names no code (an emulator's or a proxy's): its status
            // still says what kind of failure it is, and a refusal must never read as an
            // outage (which the offline fallback would answer from the store).
            lockbox_aws::Failure::Service {
                status: Some(status),
                ..
            } if (400..500).contains(&status) => UpstreamError {
                status,
                code: match status {
                    401 | 403 => "AccessDeniedException",
                    429 => "ThrottlingException",
                    _ => "ClientError",
                }
                .into(),
                message: String::new(),
            },
            _ => UpstreamError::internal(),
        },
        SdkError::TimeoutError(_) => transport(504, "TimeoutError", "Timeout"),
        SdkError::DispatchFailure(d) if d.is_timeout() => transport(504, "TimeoutError", "Timeout"),
        SdkError::DispatchFailure(d) if d.is_io() => {
            transport(502, "ConnectionError", "Read Error")
        }
        SdkError::ResponseError(_) => transport(502, "ConnectionError", "Response Error"),
        _ => UpstreamError::internal(),
    }
}

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

/// Seconds since the epoch with fraction, as the agent prints them (`f64` to string).
fn epoch_with_fraction(d: &aws_smithy_types::DateTime) -> String {
    (d.secs() as f64 + f64::from(d.subsec_nanos()) / 1e9).to_string()
}

/// [`version_bytes`] as a [`SecretValue`] (the offline store's answer).
pub(crate) fn version_body(v: &SecretVersion) -> Result<SecretValue> {
    version_bytes(v).map(|b| SecretValue::copy_from(&b))
}

/// The agent's GetSecretValue body for a version read by lockbox-secretsmanager (a batch, or
/// the sealed store): `CreatedDate` in whole seconds, as those keep it.
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
        arn: Some(&v.arn).filter(|s| !s.is_empty()).map(String::as_str),
        name: Some(&v.name).filter(|s| !s.is_empty()).map(String::as_str),
        version_id: Some(&v.version_id)
            .filter(|s| !s.is_empty())
            .map(String::as_str),
        secret_string: string,
        secret_binary: binary,
        version_stages: Some(&v.version_stages[..]),
        created_date: v
            .created_date
            .map(|secs| epoch_with_fraction(&aws_smithy_types::DateTime::from_secs(secs))),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|_| Error::new(ErrorKind::Backend, BACKEND, "cannot render a secret"))
}

/// Both AWS clients; the response cache's loader.
#[derive(Clone)]
pub(crate) struct Upstream {
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    /// lockbox-secretsmanager's client on `sm`: its BatchGetSecretValue with fallback.
    batch: lockbox_secretsmanager::SecretsManagerClient,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upstream")
    }
}

impl Upstream {
    pub(crate) fn new(sdk: &aws_config::SdkConfig, metrics: Arc<Metrics>) -> Self {
        let sm = aws_sdk_secretsmanager::Client::new(sdk);
        Self {
            batch: lockbox_secretsmanager::SecretsManagerClient::from_client(sm.clone()),
            sm,
            ssm: aws_sdk_ssm::Client::new(sdk),
            metrics,
        }
    }

    /// Reads from AWS; the value is the finished response body.
    pub(crate) async fn fetch(&self, req: &Request) -> Result<Bytes> {
        self.metrics.backend_call();
        let out = match req {
            Request::Secret {
                id,
                version_id,
                stage,
            } => {
                self.secret(id, version_id.as_deref(), stage.as_deref())
                    .await
            }
            Request::Parameter { decrypt, .. } => {
                let name = req.parameter_name().unwrap_or_default();
                self.parameter(&name, *decrypt).await
            }
        };
        out.map_err(|e| {
            let err = e.into_error(req.target());
            self.metrics.upstream_error(err.kind());
            err
        })
    }

    async fn secret(
        &self,
        id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> std::result::Result<Bytes, UpstreamError> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let binary = out.secret_binary().map(|b| STANDARD.encode(b.as_ref()));
        let body = SecretOut {
            arn: out.arn(),
            name: out.name(),
            version_id: out.version_id(),
            secret_string: out.secret_string(),
            secret_binary: binary,
            version_stages: out.version_stages.as_deref(),
            created_date: out.created_date().map(epoch_with_fraction),
        };
        serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|_| UpstreamError::internal())
    }

    async fn parameter(
        &self,
        name: &str,
        decrypt: bool,
    ) -> std::result::Result<Bytes, UpstreamError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(decrypt)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let Some(p) = out.parameter() else {
            return Err(UpstreamError::internal());
        };
        parameter_body(p)
    }

    /// AWSCURRENT of several secrets with lockbox-secretsmanager's BatchGetSecretValue (20 ids
    /// a call, GetSecretValue when the batch call is refused). Slots that failed are `None`.
    async fn secrets_batch(&self, ids: &[String]) -> Vec<Option<Bytes>> {
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        for _ in 0..unique.len().div_ceil(BATCH_GET_MAX) {
            self.metrics.backend_call();
        }
        self.batch
            .fetch_many(ids)
            .await
            .into_iter()
            .map(|r| r.ok().and_then(|v| version_bytes(&v).ok()))
            .collect()
    }

    /// Parameters with GetParameters, 10 names a call. Slots not answered are `None`.
    async fn parameters_batch(&self, names: &[String], decrypt: bool) -> Vec<Option<Bytes>> {
        let mut out = vec![None; names.len()];
        for (c, chunk) in names.chunks(GET_PARAMETERS_MAX).enumerate() {
            self.metrics.backend_call();
            let Ok(answer) = self
                .ssm
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .with_decryption(decrypt)
                .send()
                .await
            else {
                continue;
            };
            for p in answer.parameters() {
                let name = p.name().unwrap_or_default();
                let with_selector = format!("{name}{}", p.selector().unwrap_or_default());
                for (i, asked) in chunk.iter().enumerate() {
                    if (*asked == with_selector || (asked == name && p.selector().is_none()))
                        && let Ok(body) = parameter_body(p)
                    {
                        out[c * GET_PARAMETERS_MAX + i] = Some(body);
                    }
                }
            }
        }
        out
    }
}

/// BatchGetSecretValue takes at most this many ids a call (the batches of
/// `SecretsManagerClient::fetch_many`).
const BATCH_GET_MAX: usize = 20;

/// GetParameters takes at most this many names a call.
const GET_PARAMETERS_MAX: usize = 10;

/// The extension's GetParameter body for one parameter.
fn parameter_body(p: &aws_sdk_ssm::types::Parameter) -> std::result::Result<Bytes, UpstreamError> {
    {
        let body = ParameterOut {
            parameter: ParameterFields {
                arn: p.arn(),
                data_type: p.data_type(),
                last_modified_date: p
                    .last_modified_date()
                    .and_then(|d| d.fmt(Format::DateTime).ok()),
                name: p.name(),
                selector: p.selector(),
                source_result: p.source_result(),
                kind: p.r#type().map(|t| t.as_str()),
                value: p.value(),
                version: p.version(),
            },
            result_metadata: Empty {},
        };
        serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|_| UpstreamError::internal())
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
        let err = e.clone().into_error("x");
        assert!(err.is_not_found());
        assert_eq!(UpstreamError::of(&err), e);
    }

    #[test]
    fn created_date_is_epoch_seconds_with_fraction() {
        let d = aws_smithy_types::DateTime::from_secs_and_nanos(1_700_000_000, 250_000_000);
        assert_eq!(epoch_with_fraction(&d), "1700000000.25");
        let d = aws_smithy_types::DateTime::from_secs(1_700_000_000);
        assert_eq!(epoch_with_fraction(&d), "1700000000");
    }
}
