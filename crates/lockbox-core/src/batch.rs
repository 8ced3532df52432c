//! The body of a batching backend's `get_many`: names to the backend's keys, one batched
//! read, answers back in the names' order.

use std::future::Future;

use crate::{Result, SecretName, SecretValue};

/// For a backend's [`get_many`](crate::SecretsManager::get_many) override: maps each name to
/// the backend's own key with `key` (a name it refuses gets that error as its result), reads
/// all the keys with one call of `fetch`, which must answer one result per key in the order
/// given, and returns one result per name in the order of `names`, each error naming its
/// secret.
pub async fn get_many_by_key<K, Fut>(
    names: &[SecretName],
    key: impl Fn(&SecretName) -> Result<K>,
    fetch: impl FnOnce(Vec<K>) -> Fut,
) -> Vec<Result<SecretValue>>
where
    Fut: Future<Output = Vec<Result<SecretValue>>>,
{
    let mut results: Vec<Option<Result<SecretValue>>> = vec![None; names.len()];
    let mut slots = Vec::new();
    let mut keys = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match key(name) {
            Ok(k) => {
                slots.push(i);
                keys.push(k);
            }
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let answers = fetch(keys).await;
    for (i, answer) in slots.into_iter().zip(answers) {
        results[i] = Some(answer.map_err(|e| e.with_secret(&names[i])));
    }
    results
        .into_iter()
        .map(|r| r.expect("`fetch` answers every key"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ErrorKind};

    #[tokio::test]
    async fn refused_names_keep_their_slot_and_answers_name_their_secret() {
        let names: Vec<SecretName> = ["a", "bad", "c"]
            .iter()
            .map(|n| SecretName::new(*n).unwrap())
            .collect();
        let key = |n: &SecretName| match n.as_str() {
            "bad" => Err(Error::new(ErrorKind::InvalidName, "x", "refused").with_secret(n)),
            other => Ok(format!("/p/{other}")),
        };
        let results = get_many_by_key(&names, key, |keys| async move {
            assert_eq!(keys, ["/p/a", "/p/c"]);
            vec![
                Ok(SecretValue::from("1")),
                Err(Error::new(ErrorKind::NotFound, "x", "")),
            ]
        })
        .await;
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().expose_str(), Some("1"));
        let refused = results[1].as_ref().unwrap_err();
        assert_eq!(
            (refused.kind(), refused.secret()),
            (ErrorKind::InvalidName, Some("bad"))
        );
        let missing = results[2].as_ref().unwrap_err();
        assert_eq!(
            (missing.kind(), missing.secret()),
            (ErrorKind::NotFound, Some("c"))
        );
    }
}
