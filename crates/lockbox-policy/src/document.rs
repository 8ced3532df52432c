//! The IAM policy document and its JSON form.

use std::collections::BTreeMap;

use serde::Serialize;

/// The policy language version every generated document declares.
pub const POLICY_VERSION: &str = "2012-10-17";

/// An identity-based IAM policy document.
///
/// It serialises with its keys in a fixed order (`Version`, `Statement`; in each statement
/// `Sid`, `Effect`, `Action`, `Resource`, `Condition`), whatever features serde_json is built
/// with, so the same inputs always give byte-identical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    /// Always [`POLICY_VERSION`].
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// The statements, in a fixed order.
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
    /// Actions a backend calls that the document leaves out (not part of the JSON).
    #[serde(skip)]
    pub omitted: Vec<OmittedAction>,
}

/// An action a backend calls that a generated policy leaves out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OmittedAction {
    /// The IAM action, such as `secretsmanager:ListSecrets`.
    pub action: &'static str,
    /// Why it is left out and what that means for the node.
    pub reason: String,
}

/// What a statement does; generated policies only allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// Grants the actions on the resources.
    Allow,
}

/// Condition operator -> condition key -> values, all sorted.
pub type Condition = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One statement: some actions on some resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Statement id: letters and digits only, unique in the document.
    #[serde(rename = "Sid")]
    pub sid: String,
    /// Always [`Effect::Allow`].
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// IAM actions such as `ssm:GetParameter`, sorted; never a wildcard.
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    /// Resource ARNs (patterns with `*` / `?` in the resource part at most), sorted; never `*`.
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    /// Conditions, when the resources alone cannot say it (a KMS key named by its alias).
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

impl Statement {
    /// An Allow statement with sorted, de-duplicated actions and resources.
    pub fn allow(
        sid: impl Into<String>,
        actions: impl IntoIterator<Item = impl Into<String>>,
        resources: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut actions: Vec<String> = actions.into_iter().map(Into::into).collect();
        actions.sort();
        actions.dedup();
        let mut resources: Vec<String> = resources.into_iter().map(Into::into).collect();
        resources.sort();
        resources.dedup();
        Self {
            sid: sid.into(),
            effect: Effect::Allow,
            actions,
            resources,
            condition: None,
        }
    }

    /// The same statement with a condition.
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }
}

impl PolicyDocument {
    /// A document holding `statements`.
    pub fn new(statements: Vec<Statement>) -> Self {
        Self {
            version: POLICY_VERSION,
            statements,
            omitted: Vec::new(),
        }
    }

    /// Pretty JSON (two-space indent, no trailing newline), the form `lockbox policy` prints.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy document always serialises")
    }

    /// The statement with this Sid.
    pub fn statement(&self, sid: &str) -> Option<&Statement> {
        self.statements.iter().find(|s| s.sid == sid)
    }

    /// Every action of every statement, sorted and de-duplicated.
    pub fn actions(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .statements
            .iter()
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Every resource of every statement, sorted and de-duplicated.
    pub fn resources(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .statements
            .iter()
            .flat_map(|s| s.resources.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_keep_their_order() {
        let doc = PolicyDocument::new(vec![
            Statement::allow("B", ["x:B", "x:A", "x:A"], ["arn:r2", "arn:r1"]).with_condition(
                Condition::from([(
                    "StringEquals".to_string(),
                    BTreeMap::from([("k".to_string(), vec!["v".to_string()])]),
                )]),
            ),
        ]);
        let expected = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "B",
      "Effect": "Allow",
      "Action": [
        "x:A",
        "x:B"
      ],
      "Resource": [
        "arn:r1",
        "arn:r2"
      ],
      "Condition": {
        "StringEquals": {
          "k": [
            "v"
          ]
        }
      }
    }
  ]
}"#;
        assert_eq!(doc.to_json(), expected);
        assert_eq!(doc.actions(), ["x:A", "x:B"]);
        assert_eq!(doc.resources(), ["arn:r1", "arn:r2"]);
        assert!(doc.statement("B").is_some() && doc.statement("A").is_none());
    }
}
