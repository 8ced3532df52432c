//! The raw SSM client (full records, selectors, batches, paths) against a real AWS emulator.

use aws_sdk_ssm::types::ParameterType as SdkType;
use lockbox_aws::AwsFailure;
use lockbox_core::ErrorKind;
use lockbox_ssm::{ParameterType, SsmClient};
use lockbox_testkit::aws::{ATTEMPT_TIMEOUT, setup_config, ssm_client};
use lockbox_testkit::{emulator, prefix};

async fn put(raw: &aws_sdk_ssm::Client, name: &str, value: &str, kind: SdkType) {
    raw.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn it_records_are_full_and_selectors_pass_through() {
    let Some(endpoint) = emulator("it_records_are_full_and_selectors_pass_through") else {
        return;
    };
    let raw = aws_sdk_ssm::Client::new(&setup_config(&endpoint));
    let base = format!("/lockbox-it/{}", prefix("client"));
    let secure = format!("{base}/secure");
    put(&raw, &secure, "one", SdkType::SecureString).await;
    put(&raw, &secure, "two", SdkType::SecureString).await;
    put(&raw, &format!("{base}/plain"), "p", SdkType::String).await;
    put(
        &raw,
        &format!("{base}/deep/list"),
        "a,b",
        SdkType::StringList,
    )
    .await;
    let client = SsmClient::from_client(ssm_client(&endpoint, ATTEMPT_TIMEOUT));

    let p = client.get_parameter(&secure, true).await.unwrap();
    assert_eq!(p.name, secure);
    assert_eq!(p.value.expose_str(), Some("two"));
    assert_eq!(p.version, 2);
    assert_eq!(p.kind, Some(ParameterType::SecureString));
    assert!(
        p.arn.as_deref().is_some_and(|a| a.ends_with(&secure)),
        "{p:?}"
    );
    assert!(p.last_modified_date.is_some());
    assert!(!format!("{p:?}").contains("two"));

    let v1 = client
        .get_parameter(&format!("{secure}:1"), true)
        .await
        .unwrap();
    assert_eq!((v1.value.expose_str(), v1.version), (Some("one"), 1));
    // AWS echoes the selector (`:1`); moto 5 leaves it out of GetParameter's answer.
    assert!(
        matches!(v1.selector.as_deref(), None | Some(":1")),
        "{v1:?}"
    );

    let e = client
        .get_parameter(&format!("{base}/absent"), true)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let f = AwsFailure::of(&e).expect("the AWS answer rides on the error");
    assert_eq!(
        (f.status, f.code.as_str()),
        (Some(400), "ParameterNotFound")
    );

    let names = vec![
        format!("{base}/plain"),
        format!("{secure}:1"),
        format!("{base}/absent"),
        secure.clone(),
        format!("{secure}:9"),
    ];
    let got = client.get_parameters(&names, true).await;
    assert_eq!(got.len(), names.len());
    assert_eq!(got[0].as_ref().unwrap().value.expose_str(), Some("p"));
    assert_eq!(got[0].as_ref().unwrap().kind, Some(ParameterType::String));
    assert_eq!(got[1].as_ref().unwrap().value.expose_str(), Some("one"));
    assert!(got[2].as_ref().unwrap_err().is_not_found());
    assert_eq!(got[3].as_ref().unwrap().value.expose_str(), Some("two"));
    assert!(got[4].as_ref().unwrap_err().is_not_found(), "{:?}", got[4]);

    let mut all = client
        .get_parameters_by_path(&base, true, true)
        .await
        .unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let found: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|p| (p.name.as_str(), p.value.expose_str()))
        .collect();
    let (deep, plain) = (format!("{base}/deep/list"), format!("{base}/plain"));
    assert_eq!(
        found,
        [
            (deep.as_str(), Some("a,b")),
            (plain.as_str(), Some("p")),
            (secure.as_str(), Some("two"))
        ]
    );
    let top = client
        .get_parameters_by_path(&base, false, true)
        .await
        .unwrap();
    assert_eq!(top.len(), 2, "{top:?}");
}

#[tokio::test]
async fn it_many_names_keep_their_order_across_calls() {
    let Some(endpoint) = emulator("it_many_names_keep_their_order_across_calls") else {
        return;
    };
    let raw = aws_sdk_ssm::Client::new(&setup_config(&endpoint));
    let base = format!("/lockbox-it/{}", prefix("many"));
    let mut names = Vec::new();
    for i in 0..23 {
        let name = format!("{base}/p{i}");
        if i % 5 != 0 {
            put(&raw, &name, &format!("v{i}"), SdkType::String).await;
        }
        names.push(name);
    }
    let client = SsmClient::from_client(ssm_client(&endpoint, ATTEMPT_TIMEOUT));
    let got = client.get_parameters(&names, false).await;
    for (i, r) in got.iter().enumerate() {
        if i % 5 == 0 {
            assert!(r.as_ref().unwrap_err().is_not_found(), "{i}");
        } else {
            assert_eq!(
                r.as_ref().unwrap().value.expose_str(),
                Some(format!("v{i}").as_str())
            );
        }
    }
}
