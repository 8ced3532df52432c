//! What the AWS services' listings share: reading every page of one, and the version record
//! a version listing comes to.

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::DateTime;
use lockbox_core::{Error, Result, VersionInfo};

/// Every page an SDK paginator (`.into_paginator().send()`) answers, in order. The first page
/// that fails ends the read, with the error `map_err` (the service crate's mapping) makes of it.
pub async fn all_pages<O, E>(
    pages: PaginationStream<std::result::Result<O, SdkError<E, HttpResponse>>>,
    map_err: impl FnOnce(&SdkError<E, HttpResponse>) -> Error,
) -> Result<Vec<O>> {
    pages
        .collect::<std::result::Result<Vec<O>, _>>()
        .await
        .map_err(|e| map_err(&e))
}

/// What lockbox keeps of one version an AWS listing answers: its id or number, its labels
/// (SSM parameter labels, Secrets Manager staging labels) and when it was written.
pub fn version_info(
    version: impl Into<String>,
    labels: &[String],
    written: Option<&DateTime>,
) -> VersionInfo {
    let mut info = VersionInfo::new(version);
    info.labels = labels.to_vec();
    info.created = written.map(DateTime::secs);
    info
}

#[cfg(test)]
mod tests {
    use aws_smithy_async::future::pagination_stream::fn_stream::FnStream;
    use aws_smithy_types::error::ErrorMetadata;
    use lockbox_core::ErrorKind;

    use super::*;

    type Page = std::result::Result<u32, SdkError<ErrorMetadata, HttpResponse>>;

    fn stream(pages: Vec<Page>) -> PaginationStream<Page> {
        PaginationStream::new(FnStream::new(|tx| {
            Box::pin(async move {
                for page in pages {
                    if tx.send(page).await.is_err() {
                        return;
                    }
                }
            })
        }))
    }

    fn mapped(e: &SdkError<ErrorMetadata, HttpResponse>) -> Error {
        Error::new(ErrorKind::Unavailable, "aws-test", e.to_string())
    }

    #[tokio::test]
    async fn every_page_in_order_or_the_first_failure() {
        let pages = all_pages(stream(vec![Ok(1), Ok(2), Ok(3)]), mapped).await;
        assert_eq!(pages.unwrap(), [1, 2, 3]);
        let failed = all_pages(
            stream(vec![
                Ok(1),
                Err(SdkError::timeout_error("slow")),
                Err(SdkError::construction_failure("never read")),
            ]),
            mapped,
        )
        .await
        .unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::Unavailable);
        assert!(!failed.to_string().contains("never read"), "{failed}");
    }

    #[test]
    fn a_version_keeps_its_labels_and_date() {
        let info = version_info(
            "3",
            &["prod".to_string()],
            Some(&DateTime::from_secs_and_nanos(1_700_000_000, 5)),
        );
        assert_eq!(info.version, "3");
        assert_eq!(info.labels, ["prod"]);
        assert_eq!(info.created, Some(1_700_000_000));
        assert_eq!((info.changed_by, info.deleted), (None, false));
    }
}
