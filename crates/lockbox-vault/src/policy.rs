//! The least-privilege Vault policy a node needs.

/// The Vault policy (HCL) for node `node_name`'s secrets in KV v2 mount `mount` (usually
/// `secret`).
///
/// Read-write (what `init` needs, including the rollback of a failed init): `create` and
/// `read` on `<mount>/data/<node>/*`, `read`, `list` and `delete` on
/// `<mount>/metadata/<node>/*`. No `update`: a node's secrets are never overwritten (`put
/// --overwrite` is refused). Read-only (what `output` needs): `read` on the data paths and
/// `list` on the metadata paths. The caller passes a checked node name and mount (plain
/// segments of `A-Z a-z 0-9 _ . -`, as [`crate::VaultBackend::connect`] requires).
pub fn node_policy_hcl(mount: &str, node_name: &str, read_only: bool) -> String {
    let mount = mount.trim_matches('/');
    let (data, metadata, what) = if read_only {
        (r#"["read"]"#, r#"["list"]"#, "read-only")
    } else {
        (
            r#"["create", "read"]"#,
            r#"["read", "list", "delete"]"#,
            "read-write",
        )
    };
    format!(
        r#"# lockbox: {what} access to node "{node_name}"'s secrets in KV v2 mount "{mount}"
path "{mount}/data/{node_name}/*" {{
  capabilities = {data}
}}

path "{mount}/metadata/{node_name}/*" {{
  capabilities = {metadata}
}}
"#
    )
}

impl crate::VaultSettings {
    /// [`node_policy_hcl`] for these settings' mount and node, after checking both are plain
    /// path segments (a `*` or `+` in a node name would widen the policy).
    pub fn policy_hcl(&self, read_only: bool) -> lockbox_core::Result<String> {
        Ok(node_policy_hcl(
            &self.checked_mount()?,
            &self.checked_node()?,
            read_only,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_policy_covers_the_nodes_paths_only() {
        let hcl = node_policy_hcl("secret", "node1", false);
        assert_eq!(
            hcl,
            r#"# lockbox: read-write access to node "node1"'s secrets in KV v2 mount "secret"
path "secret/data/node1/*" {
  capabilities = ["create", "read"]
}

path "secret/metadata/node1/*" {
  capabilities = ["read", "list", "delete"]
}
"#
        );
    }

    #[test]
    fn settings_policy_refuses_names_that_would_widen_it() {
        let ok = crate::VaultSettings::new("http://127.0.0.1:8200", "node1");
        assert_eq!(
            ok.policy_hcl(true).unwrap(),
            node_policy_hcl("secret", "node1", true)
        );
        let e = crate::VaultSettings::new("http://127.0.0.1:8200", "node*")
            .policy_hcl(false)
            .unwrap_err();
        assert_eq!(e.kind(), lockbox_core::ErrorKind::InvalidConfig);
    }

    #[test]
    fn read_only_policy_reads_and_lists() {
        let hcl = node_policy_hcl("/kv/", "n", true);
        assert!(hcl.contains(r#"path "kv/data/n/*" {"#), "{hcl}");
        assert!(hcl.contains(r#"capabilities = ["read"]"#), "{hcl}");
        assert!(hcl.contains(r#"capabilities = ["list"]"#), "{hcl}");
        assert!(!hcl.contains("create") && !hcl.contains("delete"), "{hcl}");
    }
}
