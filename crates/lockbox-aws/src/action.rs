//! The action-table type.

/// An AWS API action a backend calls, and whether read-only use needs it. Each backend keeps
/// one table of these, from which IAM policies are derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// IAM action name, such as `ssm:GetParameter`.
    pub name: &'static str,
    /// True when read-only use (`get`, `list`, `has`, sync) calls it.
    pub read: bool,
}
