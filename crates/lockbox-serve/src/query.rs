//! The agent's and the extension's query rules, parsed into borrowed requests.

use std::borrow::Cow;

use crate::rejection::Rejection;
use crate::request::RequestRef;

/// A parsed read: what to read, and whether to skip the cache (`refreshNow`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    /// The read.
    pub(crate) request: RequestRef<'a>,
    /// `refreshNow=true`.
    pub(crate) refresh: bool,
}

/// The query's name/value pairs, exactly as `form_urlencoded::parse` gives them. A query with
/// no `%` and no `+` has nothing to decode, so it is only split (no decoding pass, no UTF-8
/// check: it is already a `str`): the common case on the hot path.
fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let plain = !query.bytes().any(|b| b == b'%' || b == b'+');
    let split = plain.then(|| {
        query.split('&').filter(|p| !p.is_empty()).map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (Cow::Borrowed(k), Cow::Borrowed(v))
        })
    });
    let decoded = (!plain).then(|| form_urlencoded::parse(query.as_bytes()));
    split
        .into_iter()
        .flatten()
        .chain(decoded.into_iter().flatten())
}

fn parse_bool(value: &str, what: &str) -> Result<bool, Rejection> {
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Ok(false)
    } else {
        Err(Rejection::BadQuery(format!("invalid {what} value")))
    }
}

impl<'a> Query<'a> {
    /// The agent's rules: `secretId` (only on `/secretsmanager/get`; `path_id` is the id of
    /// `<path_prefix><id>`), `versionId`, `versionStage`, `refreshNow`; anything else is
    /// refused by name.
    pub(crate) fn secret(query: &'a str, path_id: Option<&'a str>) -> Result<Self, Rejection> {
        let mut id: Option<Cow<'a, str>> = path_id.map(Cow::Borrowed);
        let (mut version_id, mut stage, mut refresh) = (None, None, false);
        for (k, v) in pairs(query) {
            match k.as_ref() {
                "secretId" if path_id.is_none() => id = Some(v),
                "versionId" => version_id = Some(v),
                "versionStage" => stage = Some(v),
                "refreshNow" => refresh = parse_bool(&v, "refreshNow")?,
                p => return Err(Rejection::BadQuery(format!("unknown parameter: {p}"))),
            }
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Rejection::BadQuery("missing parameter secretId".into()))?;
        Ok(Self {
            request: RequestRef::Secret {
                id,
                version_id,
                stage,
            },
            refresh,
        })
    }

    /// The extension's rules: `name` (required), `version` or `label` (not both),
    /// `withDecryption`; lockbox adds `refreshNow`.
    pub(crate) fn parameter(query: &'a str) -> Result<Self, Rejection> {
        let (mut name, mut version, mut label, mut decrypt, mut refresh) =
            (None, None, None, false, false);
        for (k, v) in pairs(query) {
            match k.as_ref() {
                "name" => name = Some(v),
                "version" => version = Some(v),
                "label" => label = Some(v),
                "withDecryption" => decrypt = parse_bool(&v, "withDecryption")?,
                "refreshNow" => refresh = parse_bool(&v, "refreshNow")?,
                p => return Err(Rejection::BadQuery(format!("unknown parameter: {p}"))),
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Rejection::BadQuery("missing parameter name".into()))?;
        let selector = match (version, label) {
            (Some(_), Some(_)) => {
                return Err(Rejection::BadQuery(
                    "version and label cannot both be given".into(),
                ));
            }
            (Some(v), None) => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Rejection::BadQuery("invalid version value".into()));
                }
                Some(v)
            }
            (None, Some(l)) if l.is_empty() => {
                return Err(Rejection::BadQuery("invalid label value".into()));
            }
            (None, l) => l,
        };
        Ok(Self {
            request: RequestRef::Parameter {
                name,
                selector,
                decrypt,
            },
            refresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(r: Result<Query<'_>, Rejection>) -> String {
        match r {
            Err(Rejection::BadQuery(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn queries_follow_the_agent() {
        let q =
            Query::secret("secretId=a%2Fb&versionStage=AWSPREVIOUS&refreshNow=1", None).unwrap();
        assert!(q.refresh);
        assert_eq!(
            q.request,
            RequestRef::Secret {
                id: "a/b".into(),
                version_id: None,
                stage: Some("AWSPREVIOUS".into())
            }
        );
        assert_eq!(
            bad(Query::secret("versionId=x", None)),
            "missing parameter secretId"
        );
        assert_eq!(
            bad(Query::secret("secretId=a&foo=1", None)),
            "unknown parameter: foo"
        );
        assert_eq!(
            bad(Query::secret("secretId=a", Some("b"))),
            "unknown parameter: secretId"
        );
        assert_eq!(
            bad(Query::secret("refreshNow=maybe", Some("b"))),
            "invalid refreshNow value"
        );
        let q = Query::parameter("name=/a/b&label=prod&withDecryption=true").unwrap();
        assert_eq!(
            q.request,
            RequestRef::Parameter {
                name: "/a/b".into(),
                selector: Some("prod".into()),
                decrypt: true
            }
        );
        assert!(Query::parameter("name=a&version=1&label=x").is_err());
        assert!(Query::parameter("version=1").is_err());
        assert!(Query::parameter("name=a&version=x").is_err());
    }

    proptest::proptest! {
        /// The split fast path gives exactly form_urlencoded's pairs, on any query.
        #[test]
        fn pairs_are_form_urlencodeds(q in "[a-zA-Z0-9=&%+/._~ -]{0,40}") {
            let ours: Vec<_> = pairs(&q).collect();
            let theirs: Vec<_> = form_urlencoded::parse(q.as_bytes()).collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn plain_values_are_borrowed_not_copied() {
        let q = Query::secret("secretId=plain", None).unwrap();
        let RequestRef::Secret { id, .. } = q.request else {
            panic!("a secret read")
        };
        assert!(matches!(id, Cow::Borrowed("plain")));
    }
}
