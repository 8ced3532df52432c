//! The table of Secrets Manager actions this crate calls.

pub use lockbox_aws::Action;

pub(crate) const GET: Action = Action {
    name: "secretsmanager:GetSecretValue",
    read: true,
};
pub(crate) const GET_MANY: Action = Action {
    name: "secretsmanager:BatchGetSecretValue",
    read: true,
};
pub(crate) const DESCRIBE: Action = Action {
    name: "secretsmanager:DescribeSecret",
    read: true,
};
pub(crate) const LIST: Action = Action {
    name: "secretsmanager:ListSecrets",
    read: true,
};
pub(crate) const HISTORY: Action = Action {
    name: "secretsmanager:ListSecretVersionIds",
    read: true,
};
pub(crate) const CREATE: Action = Action {
    name: "secretsmanager:CreateSecret",
    read: false,
};
pub(crate) const PUT: Action = Action {
    name: "secretsmanager:PutSecretValue",
    read: false,
};
pub(crate) const DELETE: Action = Action {
    name: "secretsmanager:DeleteSecret",
    read: false,
};

/// Every Secrets Manager action this crate calls: the single table IAM policies are derived
/// from. Each call site names its action from these constants.
///
/// Notes for policies: BatchGetSecretValue also needs GetSecretValue on each secret it
/// returns; ListSecrets takes no resource (it needs `"Resource": "*"`); with a
/// customer-managed KMS key, writes also need `kms:GenerateDataKey` and reads `kms:Decrypt`
/// on that key.
pub const ACTIONS: [Action; 7] = [GET, GET_MANY, DESCRIBE, LIST, CREATE, PUT, DELETE];

/// Actions only operator commands call (`lockbox history`): left out of the node's policy on
/// purpose, since a node never needs them.
pub const OPERATOR_ACTIONS: [Action; 1] = [HISTORY];
