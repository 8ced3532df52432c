//! The raw GetSecretValue (id, version id and stage as given) against a real AWS emulator.

use lockbox_aws::AwsFailure;
use lockbox_core::ErrorKind;
use lockbox_secretsmanager::{SecretsManagerClient, error_is_gone};
use lockbox_testkit::aws::{ATTEMPT_TIMEOUT, secretsmanager_client, setup_config};
use lockbox_testkit::{emulator, prefix};

#[tokio::test]
async fn it_get_secret_value_forwards_id_version_and_stage() {
    let Some(endpoint) = emulator("it_get_secret_value_forwards_id_version_and_stage") else {
        return;
    };
    let raw = aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint));
    let name = format!("lockbox-it/{}", prefix("gsv"));
    raw.create_secret()
        .name(&name)
        .secret_string("one")
        .send()
        .await
        .unwrap();
    let two = raw
        .put_secret_value()
        .secret_id(&name)
        .secret_string("two")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let client =
        SecretsManagerClient::from_client(secretsmanager_client(&endpoint, ATTEMPT_TIMEOUT));

    let current = client.get_secret_value(&name, None, None).await.unwrap();
    assert_eq!(current.value.expose_str(), Some("two"));
    assert_eq!(current.version_id, two);
    assert!(current.version_stages.iter().any(|s| s == "AWSCURRENT"));
    assert!(current.created_epoch_seconds().is_some());

    let previous = client
        .get_secret_value(&name, None, Some("AWSPREVIOUS"))
        .await
        .unwrap();
    assert_eq!(previous.value.expose_str(), Some("one"));

    let both = client
        .get_secret_value(&name, Some(&two), Some("AWSCURRENT"))
        .await
        .unwrap();
    assert_eq!(both.value.expose_str(), Some("two"));

    let e = client
        .get_secret_value(&format!("{name}-absent"), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(error_is_gone(&e));
    let f = AwsFailure::of(&e).expect("the AWS answer rides on the error");
    assert_eq!(f.code, "ResourceNotFoundException");
    assert!(f.status.is_some(), "{f:?}"); // AWS answers 400, moto 404

    // No local check: an empty id goes to AWS, which answers.
    let e = client.get_secret_value("", None, None).await.unwrap_err();
    assert!(AwsFailure::of(&e).is_some(), "{e:?}");

    raw.delete_secret().secret_id(&name).send().await.unwrap();
    let e = client
        .get_secret_value(&name, None, None)
        .await
        .unwrap_err();
    assert!(error_is_gone(&e), "{e:?}");
    assert!(!e.is_not_found(), "a deleted secret is not absent: {e:?}");
}
