//! The raw client: any parameter by its full name (no node prefix), as full records. The one
//! place lockbox calls GetParameter, GetParameters and GetParametersByPath.

use aws_sdk_ssm::Client;
use lockbox_core::{Error, ErrorKind, Result};

use crate::actions::{DESCRIBE, GET, GET_MANY, LIST};
use crate::backend::BACKEND;
use crate::errors::map_sdk_error;
use crate::parameter::Parameter;

/// GetParameters takes at most this many names a call, and GetParametersByPath answers at
/// most this many parameters a page.
pub(crate) const BATCH: usize = 10;

/// How many GetParameters calls one [`SsmClient::get_parameters`] keeps in flight: 100 names
/// in one round trip. After a throttled call the rest go one at a time.
const MAX_IN_FLIGHT: usize = 10;

/// Raw Parameter Store client for any parameter by full name or ARN: used by
/// [`crate::SsmBackend`] (which adds the node prefix), Airflow-style lookups and the serve
/// endpoint. Errors name the parameter as the secret and carry a [`lockbox_aws::AwsFailure`].
#[derive(Clone, Debug)]
pub struct SsmClient {
    client: Client,
}

impl SsmClient {
    /// Loads credentials with aws-config's default chain for `region`, with
    /// [`lockbox_aws::SdkOptions`]: the SDK's own retries off and bounded timeouts. Without
    /// `endpoint_url`, aws-config also honours `AWS_ENDPOINT_URL`.
    pub async fn connect(region: &str, endpoint_url: Option<&str>) -> Result<Self> {
        Ok(Self::new(
            &lockbox_aws::SdkOptions::load_for(region, endpoint_url).await?,
        ))
    }

    /// A client on a loaded SDK configuration (see [`lockbox_aws::SdkOptions::load`]).
    pub fn new(sdk: &lockbox_aws::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// Wraps an SDK client the caller configured (tests, custom credentials).
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// The SDK client, for the backend's writes.
    pub(crate) fn sdk(&self) -> &Client {
        &self.client
    }

    /// GetParameter. `name` is a name or ARN and may carry a `:version` or `:label`
    /// selector, passed to AWS as given. `NotFound` for a missing parameter and for a
    /// missing version or label (the error's code tells which).
    pub async fn get_parameter(&self, name: &str, decrypt: bool) -> Result<Parameter> {
        let out = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(decrypt)
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, GET.name, name, name))?;
        let p = out.parameter.ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                BACKEND,
                format!("{} on {name} returned no parameter", GET.name),
            )
            .with_secret(name)
        })?;
        Parameter::from_sdk(p, GET.name).map_err(|e| e.with_secret(name))
    }

    /// GetParameters, ten names a call, up to ten calls at once: 100 names take about one
    /// round trip instead of ten. Once a call is throttled, the calls not yet sent go one at
    /// a time (the names of a throttled call fail with `Throttled`, for a retry wrapper to
    /// send again later). One result per name, in order. A name with a selector (`name:3`)
    /// is answered by the record AWS returns with that selector; a name AWS lists as invalid
    /// (no such parameter, version or label) is `NotFound`.
    pub async fn get_parameters(&self, names: &[String], decrypt: bool) -> Vec<Result<Parameter>> {
        use futures_util::StreamExt;
        use futures_util::stream::FuturesUnordered;

        let mut results: Vec<Option<Result<Parameter>>> = vec![None; names.len()];
        let indexed: Vec<(usize, &str)> = names.iter().map(String::as_str).enumerate().collect();
        let mut pending = indexed.chunks(BATCH);
        let mut in_flight = FuturesUnordered::new();
        let mut limit = MAX_IN_FLIGHT;
        loop {
            while in_flight.len() < limit {
                let Some(chunk) = pending.next() else { break };
                in_flight.push(self.get_chunk(chunk, decrypt));
            }
            let Some(answers) = in_flight.next().await else {
                break;
            };
            for (i, answer) in answers {
                if answer
                    .as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::Throttled)
                {
                    limit = 1;
                }
                results[i] = Some(answer);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect()
    }

    /// One GetParameters call for `chunk` (slot, name): a result per slot.
    async fn get_chunk(
        &self,
        chunk: &[(usize, &str)],
        decrypt: bool,
    ) -> Vec<(usize, Result<Parameter>)> {
        let asked: Vec<String> = chunk.iter().map(|(_, n)| (*n).to_owned()).collect();
        match self
            .client
            .get_parameters()
            .set_names(Some(asked))
            .with_decryption(decrypt)
            .send()
            .await
        {
            Ok(out) => {
                let invalid = out.invalid_parameters.unwrap_or_default();
                let records: Vec<Result<Parameter>> = out
                    .parameters
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| Parameter::from_sdk(p, GET_MANY.name))
                    .collect();
                let mut answers = Vec::with_capacity(chunk.len());
                let mut unmatched = Vec::new();
                for &(i, name) in chunk {
                    match answer_for(&records, name) {
                        Some(r) => answers.push((i, r.clone().map_err(|e| e.with_secret(name)))),
                        None if invalid.iter().any(|n| n == name) => answers.push((
                            i,
                            Err(Error::not_found(BACKEND, name)
                                .with_message(format!("parameter {name}"))),
                        )),
                        // Answered, but not recognisably (an emulator that does not echo
                        // the selector): ask for it alone.
                        None => unmatched.push((i, name)),
                    }
                }
                let alone = unmatched
                    .iter()
                    .map(|&(i, name)| async move { (i, self.get_parameter(name, decrypt).await) });
                answers.extend(futures_util::future::join_all(alone).await);
                answers
            }
            Err(e) => {
                let list = chunk.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ");
                chunk
                    .iter()
                    .map(|&(i, name)| (i, Err(map_sdk_error(&e, GET_MANY.name, name, &list))))
                    .collect()
            }
        }
    }

    /// GetParametersByPath: every parameter under `path` (one level, or every level when
    /// `recursive`), ten a page, all pages read, in AWS's order.
    pub async fn get_parameters_by_path(
        &self,
        path: &str,
        recursive: bool,
        decrypt: bool,
    ) -> Result<Vec<Parameter>> {
        let request = self
            .client
            .get_parameters_by_path()
            .path(path)
            .recursive(recursive)
            .with_decryption(decrypt)
            .max_results(BATCH as i32);
        let pages = lockbox_aws::all_pages(request.into_paginator().send(), |e| {
            map_sdk_error(e, LIST.name, path, path)
        })
        .await?;
        pages
            .into_iter()
            .flat_map(|page| page.parameters.unwrap_or_default())
            .map(|p| Parameter::from_sdk(p, LIST.name))
            .collect()
    }
}

/// DescribeParameters answers at most this many parameters a page.
const DESCRIBE_PAGE: i32 = 50;

impl SsmClient {
    /// DescribeParameters with a `Path` filter: every parameter under `path` (one level, or
    /// every level when `recursive`), fifty a page, each as its name and a version tag
    /// (`<version>@<last modified date>`, so a parameter deleted and created again with the
    /// same version number still gets a new tag). Metadata only: no value, no decryption.
    pub async fn version_tags(&self, path: &str, recursive: bool) -> Result<Vec<(String, String)>> {
        use aws_sdk_ssm::types::ParameterStringFilter;
        let filter = ParameterStringFilter::builder()
            .key("Path")
            .option(if recursive { "Recursive" } else { "OneLevel" })
            .values(path)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    BACKEND,
                    format!("{}: building the Path filter: {e}", DESCRIBE.name),
                )
            })?;
        let request = self
            .client
            .describe_parameters()
            .parameter_filters(filter)
            .max_results(DESCRIBE_PAGE);
        let pages = lockbox_aws::all_pages(request.into_paginator().send(), |e| {
            map_sdk_error(e, DESCRIBE.name, path, path)
        })
        .await?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.parameters.unwrap_or_default())
            .filter_map(|p| {
                let modified = p
                    .last_modified_date
                    .map(|d| format!("{}.{:09}", d.secs(), d.subsec_nanos()))
                    .unwrap_or_default();
                Some((p.name?, format!("{}@{modified}", p.version)))
            })
            .collect())
    }
}

/// The record of a GetParameters answer that answers `asked`: by name (or ARN) and the
/// selector AWS echoes; for a name without selector, the selector-less record of the highest
/// version (an emulator that echoes no selector returns one record per version asked).
fn answer_for<'a>(records: &'a [Result<Parameter>], asked: &str) -> Option<&'a Result<Parameter>> {
    records
        .iter()
        .filter(|r| match r {
            Ok(p) => p.answers(asked),
            Err(e) => e.secret() == Some(asked),
        })
        .max_by_key(|r| r.as_ref().map_or(i64::MIN, |p| p.version))
}
