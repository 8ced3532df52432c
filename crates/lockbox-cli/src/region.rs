//! The AWS region when no flag or config names one.

/// aws-config's region chain: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
/// AWS config files, instance metadata. `None` when none of them names a region.
pub async fn from_chain() -> Option<String> {
    let chain = aws_config::default_provider::region::DefaultRegionChain::builder().build();
    chain
        .region()
        .await
        .filter(|r| !r.as_ref().is_empty())
        .map(|r| r.to_string())
}
