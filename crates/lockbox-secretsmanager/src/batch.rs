//! Many secrets at once: BatchGetSecretValue, 20 ids a call, with GetSecretValue when the
//! batch call is refused.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use lockbox_aws::Arn;
use lockbox_core::{Error, ErrorKind, Result, Version};

use crate::BACKEND;
use crate::actions::GET_MANY;
use crate::client::{SecretsManagerClient, check_id, date_parts, no_value, value_of};
use crate::errors::{map_sdk_error, map_service_error};
use crate::{FetchedMany, SecretVersion};

/// BatchGetSecretValue takes at most this many secret ids a call.
pub(crate) const BATCH: usize = 20;

/// How many BatchGetSecretValue calls one `fetch_many` keeps in flight by default.
const BATCH_CONCURRENCY: usize = 4;

/// How many GetSecretValue calls run at once by default when BatchGetSecretValue is not
/// granted.
const FALLBACK_CONCURRENCY: usize = 8;

/// How [`SecretsManagerClient::fetch_many`] reads; `FetchManyOptions::default()` is what AWS's
/// own quotas comfortably allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchManyOptions {
    /// BatchGetSecretValue calls kept in flight at once (at least 1; default 4).
    pub batch_concurrency: usize,
    /// GetSecretValue calls run at once where BatchGetSecretValue is denied (at least 1;
    /// default 8).
    pub fallback_concurrency: usize,
}

impl Default for FetchManyOptions {
    fn default() -> Self {
        Self {
            batch_concurrency: BATCH_CONCURRENCY,
            fallback_concurrency: FALLBACK_CONCURRENCY,
        }
    }
}

impl SecretsManagerClient {
    /// The AWSCURRENT version of each secret, with BatchGetSecretValue, 20 ids a call,
    /// [`FetchManyOptions::batch_concurrency`] calls at once. One result per id in the order
    /// given; a secret that is missing (or denied, or scheduled for deletion) fails its own
    /// slot only. An id given twice is fetched once. When BatchGetSecretValue itself is denied
    /// or unsupported, the ids are read with GetSecretValue instead
    /// ([`FetchManyOptions::fallback_concurrency`] at a time), and so are later batches of this
    /// client. The result also counts the requests sent.
    pub async fn fetch_many(
        &self,
        secret_ids: &[String],
        options: &FetchManyOptions,
    ) -> FetchedMany {
        use futures_util::StreamExt;
        let fallback = options.fallback_concurrency.max(1);
        let mut results: Vec<Option<Result<SecretVersion>>> = vec![None; secret_ids.len()];
        let mut unique: Vec<&str> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (i, id) in secret_ids.iter().enumerate() {
            if let Err(e) = check_id(id) {
                results[i] = Some(Err(e));
            } else if seen.insert(id.as_str()) {
                unique.push(id);
            }
        }
        let mut fetched: HashMap<&str, Result<SecretVersion>> = HashMap::new();
        let mut requests = 0;
        let mut groups = unique.chunks(BATCH);
        let known = self.batch_answered.load(Ordering::Relaxed)
            || self.batch_denied.load(Ordering::Relaxed);
        if !known && let Some(first) = groups.next() {
            let (found, calls) = self.fetch_group(first, fallback).await;
            fetched.extend(found);
            requests += calls;
        }
        let chunks: Vec<_> = groups
            .map(|chunk| self.fetch_group(chunk, fallback))
            .collect();
        let mut answers =
            futures_util::stream::iter(chunks).buffer_unordered(options.batch_concurrency.max(1));
        while let Some((found, calls)) = answers.next().await {
            fetched.extend(found);
            requests += calls;
        }
        for (i, id) in secret_ids.iter().enumerate() {
            if results[i].is_none() {
                results[i] = Some(fetched.get(id.as_str()).cloned().unwrap_or_else(|| {
                    Err(Error::new(
                        ErrorKind::Backend,
                        BACKEND,
                        format!(
                            "{} returned neither a value nor an error for secret {id}",
                            GET_MANY.name
                        ),
                    )
                    .with_secret(id))
                }));
            }
        }
        let results = results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect();
        FetchedMany { results, requests }
    }

    /// One group of at most [`BATCH`] ids: BatchGetSecretValue, or GetSecretValue calls once
    /// it was refused. Returns the answers and the requests sent.
    async fn fetch_group<'a>(
        &self,
        ids: &[&'a str],
        fallback: usize,
    ) -> (Vec<(&'a str, Result<SecretVersion>)>, usize) {
        if self.batch_denied.load(Ordering::Relaxed) {
            (self.fetch_each(ids, fallback).await, ids.len())
        } else {
            self.fetch_chunk(ids, fallback).await
        }
    }

    /// One BatchGetSecretValue call (following NextToken, should AWS page) for at most
    /// [`BATCH`] distinct ids.
    /// Returns the answers and the requests sent.
    async fn fetch_chunk<'a>(
        &self,
        ids: &[&'a str],
        fallback: usize,
    ) -> (Vec<(&'a str, Result<SecretVersion>)>, usize) {
        let mut requests = 0;
        let mut pages = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.iter().map(|s| s.to_string()).collect()))
            .into_paginator()
            .send();
        let mut found: Vec<(&'a str, Result<SecretVersion>)> = Vec::new();
        while let Some(page) = pages.next().await {
            requests += 1;
            let page = match page {
                Ok(page) => {
                    self.batch_answered.store(true, Ordering::Relaxed);
                    page
                }
                Err(e) => {
                    let list = ids.join(", ");
                    let err = map_sdk_error(&e, GET_MANY.name, &list);
                    if found.is_empty()
                        && (matches!(
                            err.kind(),
                            ErrorKind::PermissionDenied | ErrorKind::Unsupported
                        ) || err.code().is_some_and(|c| {
                            c == "UnknownOperationException" || c == "InvalidAction"
                        }))
                    {
                        tracing::debug!(
                            code = err.code().unwrap_or(""),
                            "BatchGetSecretValue refused; reading with GetSecretValue"
                        );
                        self.batch_denied.store(true, Ordering::Relaxed);
                        return (self.fetch_each(ids, fallback).await, requests + ids.len());
                    }
                    // The whole call failed: every id not yet answered gets the error.
                    for id in ids {
                        if !found.iter().any(|(f, _)| f == id) {
                            let err = map_sdk_error(&e, GET_MANY.name, &list).with_secret(id);
                            found.push((id, Err(err)));
                        }
                    }
                    return (found, requests);
                }
            };
            for entry in page.secret_values() {
                let arn = entry.arn().unwrap_or_default();
                let name = entry.name().unwrap_or_default();
                let (created_date, created_date_nanos) = date_parts(entry.created_date());
                let result = value_of(
                    entry.secret_string().map(str::to_owned),
                    entry.secret_binary().cloned(),
                )
                .map(|(value, binary)| SecretVersion {
                    arn: arn.to_owned(),
                    name: name.to_owned(),
                    version_id: entry.version_id().unwrap_or_default().to_owned(),
                    version_stages: entry.version_stages().to_vec(),
                    created_date,
                    created_date_nanos,
                    value,
                    binary,
                });
                // A name and an ARN of one secret may both have been asked for.
                for id in ids.iter().filter(|id| names_secret(id, name, arn)) {
                    found.push((id, result.clone().ok_or_else(|| no_value(id))));
                }
            }
            for error in page.errors() {
                let Some(id) = ids.iter().find(|id| Some(**id) == error.secret_id()) else {
                    continue;
                };
                let err = map_service_error(
                    error.error_code().unwrap_or(""),
                    error.message().unwrap_or(""),
                    None,
                    GET_MANY.name,
                    id,
                );
                found.push((id, Err(err)));
            }
        }
        (found, requests)
    }

    /// GetSecretValue for each id, `concurrency` at a time.
    async fn fetch_each<'a>(
        &self,
        ids: &[&'a str],
        concurrency: usize,
    ) -> Vec<(&'a str, Result<SecretVersion>)> {
        use futures_util::StreamExt;
        let calls: Vec<_> = ids.iter().map(|id| self.fetch_one(id)).collect();
        futures_util::stream::iter(calls)
            .buffered(concurrency)
            .collect()
            .await
    }

    async fn fetch_one<'a>(&self, id: &'a str) -> (&'a str, Result<SecretVersion>) {
        (id, self.fetch_version(id, &Version::Current).await)
    }
}

/// Whether a BatchGetSecretValue entry with `name` and `arn` answers the requested `id`: by
/// name, by full ARN, or by ARN without AWS's `-xxxxxx` suffix.
fn names_secret(id: &str, name: &str, arn: &str) -> bool {
    id == name
        || id == arn
        || (Arn::looks_like(id)
            && arn
                .strip_prefix(id)
                .is_some_and(|suffix| suffix.len() == 7 && suffix.starts_with('-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_entries_match_names_and_arns() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf";
        assert!(names_secret("app/db", "app/db", arn));
        assert!(names_secret(arn, "app/db", arn));
        assert!(names_secret(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db",
            "app/db",
            arn
        ));
        assert!(!names_secret("app/d", "app/db", arn));
        assert!(!names_secret(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/d",
            "app/db",
            arn
        ));
    }
}
