//! The table of SSM actions the backend calls.

pub use lockbox_aws::Action;

pub(crate) const GET: Action = Action {
    name: "ssm:GetParameter",
    read: true,
};
pub(crate) const GET_MANY: Action = Action {
    name: "ssm:GetParameters",
    read: true,
};
pub(crate) const LIST: Action = Action {
    name: "ssm:GetParametersByPath",
    read: true,
};
pub(crate) const HISTORY: Action = Action {
    name: "ssm:GetParameterHistory",
    read: true,
};
pub(crate) const DESCRIBE: Action = Action {
    name: "ssm:DescribeParameters",
    read: true,
};
pub(crate) const PUT: Action = Action {
    name: "ssm:PutParameter",
    read: false,
};
pub(crate) const DELETE: Action = Action {
    name: "ssm:DeleteParameter",
    read: false,
};

/// Every SSM action the backend calls: the single table IAM policies are derived from. Each
/// call site names its action from these constants.
pub const ACTIONS: [Action; 5] = [GET, GET_MANY, LIST, PUT, DELETE];

/// Actions only operator commands call (`lockbox history`): left out of the node's policy on
/// purpose. A node never needs them, and GetParameterHistory with decryption would return
/// every old value.
pub const OPERATOR_ACTIONS: [Action; 1] = [HISTORY];

/// Actions a watch's polls call to tell what changed without reading values
/// ([`lockbox_core::SecretsManager::version_tags`]). DescribeParameters takes no resource
/// (it needs `"Resource": "*"`), so it is not in the node's policy; without it a watch
/// reads every value each poll (and says so once).
pub const WATCH_ACTIONS: [Action; 1] = [DESCRIBE];
