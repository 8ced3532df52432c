//! What the man pages say beyond `--help`: a description, the config keys, ENVIRONMENT,
//! FILES, EXIT STATUS and EXAMPLES for lockbox(1) and each command's page.

/// The extra text of one page.
pub struct Page {
    /// The DESCRIPTION paragraph.
    pub description: &'static str,
    /// CONFIGURATION: key and meaning (empty: no section).
    pub config: &'static [(&'static str, &'static str)],
    /// ENVIRONMENT beyond the common ones: name and meaning.
    pub environment: &'static [(&'static str, &'static str)],
    /// FILES: path and meaning.
    pub files: &'static [(&'static str, &'static str)],
    /// EXIT STATUS beyond 0, 1 and 2: code and meaning.
    pub exit: &'static [(&'static str, &'static str)],
    /// EXAMPLES: command line and what it does.
    pub examples: &'static [(&'static str, &'static str)],
}

/// Every page's ENVIRONMENT.
pub const COMMON_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "RUST_LOG",
        "Log filter for messages on stderr (default: warnings).",
    ),
    (
        "LOCKBOX_LOG_CREDENTIALS",
        "1 lifts the caps that keep credentials out of trace logs (debugging only).",
    ),
];

/// Every page's EXIT STATUS.
pub const COMMON_EXIT: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "An error: one line on stderr, or {\"error\": ...} with --json.",
    ),
    (
        "2",
        "A usage error (a bad or missing argument), also as {\"error\", \"usage\"} with --json.",
    ),
];

const AWS_ENV: &[(&str, &str)] = &[
    (
        "AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE",
        "The AWS region and profile (aws-config's chain).",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Credentials; the default chain also reads the profile, SSO, web identity and instance metadata.",
    ),
    (
        "AWS_ENDPOINT_URL",
        "A custom AWS endpoint (an emulator); a config's server_url wins.",
    ),
];

const SOURCE_ENV: &[(&str, &str)] = &[
    (
        "CHAMBER_SECRET_BACKEND",
        "For a SERVICE: chamber's backend, any case: ssm (the default) or secretsmanager (one secret per service, read-only); s3 and s3-kms are refused.",
    ),
    (
        "CHAMBER_KMS_KEY_ALIAS",
        "For a SERVICE: the KMS key values are written with [default: alias/parameter_store_key; alias/ put before a bare name].",
    ),
    (
        "CHAMBER_AWS_REGION",
        "For a SERVICE: the region, ahead of AWS_REGION and the rest of the chain.",
    ),
    (
        "CHAMBER_AWS_SSM_ENDPOINT",
        "For a SERVICE: a custom SSM endpoint.",
    ),
    (
        "CHAMBER_AWS_SECRETS_MANAGER_ENDPOINT",
        "For a SERVICE with the secretsmanager backend: a custom Secrets Manager endpoint.",
    ),
    (
        "AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL",
        "The AWS region, profile and endpoint (aws-config's chain).",
    ),
];

const CONFIG_KEYS: &[(&str, &str)] = &[
    (
        "type",
        "local, aws-ssm, aws-secretsmanager, hashicorp-vault or gcp-ssm (keys match in any case: Type, Name, Extra).",
    ),
    (
        "name",
        "The node's name: the path segment its secrets live under.",
    ),
    (
        "server_url",
        "A custom endpoint (an emulator, the Vault server).",
    ),
    ("token", "The Vault token (or LOCKBOX_TOKEN / VAULT_TOKEN)."),
    ("namespace", "The Vault namespace."),
    (
        "extra",
        "local: path; aws-ssm: region, ssm-parameter-path, kms-key-id; aws-secretsmanager: region, secrets-manager-path, kms-key-id.",
    ),
];

const CONFIG_FILES: &[(&str, &str)] = &[
    (
        "secretsManagerConfig.json",
        "The config a --config FILE names (Polygon Edge's format).",
    ),
    (
        "DIR/consensus/validator.key, DIR/consensus/validator-bls.key, DIR/libp2p/libp2p.key",
        "A --data-dir's node keys (files 0600, directories 0700).",
    ),
];

const SOURCE_FILES: &[(&str, &str)] = &[
    ("secretsManagerConfig.json", "A --config source."),
    (
        "DIR/secrets.sealed, DIR.key",
        "A --store source and its default key file.",
    ),
];

const STORE_FILES: &[(&str, &str)] = &[
    ("DIR/secrets.sealed", "The sealed (encrypted) store."),
    (
        "DIR.key",
        "Its key [default], created 0600 on the first sync; a copy of the store is unreadable without it.",
    ),
    (
        "KEY_FILE.generation",
        "The newest store generation seen (rollback protection).",
    ),
];

const MANIFEST_KEYS: &[(&str, &str)] = &[
    (
        "cloudSecrets",
        "[{\"arn\": \"<ARN or name>\", \"labels\": [...]}]: the secrets and extra staging labels (AWSCURRENT always).",
    ),
    (
        "periodicRefreshIntervalMin",
        "Keep running and sync again every that many minutes.",
    ),
    (
        "Resources",
        "The Greengrass v1 form: a resource definition's SecretsManagerSecretResourceData entries.",
    ),
];

const NONE: &[(&str, &str)] = &[];

/// The page of `command` (`None`: lockbox(1)).
pub fn page(command: Option<&str>) -> Page {
    let p = |description, config, environment, files, exit, examples| Page {
        description,
        config,
        environment,
        files,
        exit,
        examples,
    };
    match command {
        None => p(
            "lockbox keeps and fetches secrets on local disk, AWS SSM Parameter Store, AWS Secrets Manager and HashiCorp Vault/OpenBao. Node keys (Polygon Edge): generate, init, output. One secret: get, put, delete, list, history. Secrets into programs (chamber): exec, env, export, import. Secrets that rotate: exec --watch, render. Greengrass-style sealed store: sync, read. Airflow lookups: lookup. Least-privilege IAM: policy. The AWS Secrets Manager Agent and Lambda extension endpoint: serve. Help: completions, man. Each command has its own page: lockbox man COMMAND.",
            CONFIG_KEYS,
            AWS_ENV,
            CONFIG_FILES,
            &[
                ("3", "lookup found nothing."),
                (
                    "126, 127",
                    "exec could not run / find its program (otherwise exec exits with the program's code).",
                ),
                (
                    "69, 75",
                    "exec --watch: --fail-after acted on stale values with --on-change exit (69); --on-change exit acted on a change (75).",
                ),
            ],
            &[
                (
                    "lockbox generate --type aws-ssm --name node1 --extra ssm-parameter-path=/edge",
                    "Write secretsManagerConfig.json for SSM.",
                ),
                (
                    "lockbox exec myapp -- ./server",
                    "Run ./server with chamber service myapp's secrets.",
                ),
                ("lockbox man sync | man -l -", "Read a command's page."),
            ],
        ),
        Some("generate") => p(
            "Writes a secretsManagerConfig.json describing where a node's secrets live. --dir takes a file path, or an existing directory (then DIR/secretsManagerConfig.json). The AWS types take the region from --extra region=..., else from the AWS chain. An existing file is replaced only with --force.",
            CONFIG_KEYS,
            &[
                (
                    "LOCKBOX_TOKEN",
                    "The Vault token (keeps it off the command line).",
                ),
                (
                    "AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE",
                    "The region when --extra names none.",
                ),
            ],
            CONFIG_FILES,
            NONE,
            &[
                (
                    "lockbox generate --type aws-ssm --name node1 --extra region=us-east-1,ssm-parameter-path=/edge",
                    "An SSM config.",
                ),
                (
                    "LOCKBOX_TOKEN=... lockbox generate --type hashicorp-vault --name node1 --server-url http://127.0.0.1:8200 --dir cfg/",
                    "A Vault config in cfg/secretsManagerConfig.json.",
                ),
            ],
        ),
        Some("init") => p(
            "Creates the node's validator (secp256k1), BLS (BLS12-381) and network (libp2p) keys in the backend, as Polygon Edge's secrets init does; refuses if any exists, and leaves none behind when a later one fails.",
            CONFIG_KEYS,
            AWS_ENV,
            CONFIG_FILES,
            NONE,
            &[
                (
                    "lockbox init --data-dir node1 --insecure",
                    "Keys on local disk.",
                ),
                (
                    "lockbox --json init --config secretsManagerConfig.json",
                    "Keys in the config's backend; prints address, bls_pubkey and node_id (Polygon Edge's names).",
                ),
            ],
        ),
        Some("output") => p(
            "Prints the node's address (EIP-55), BLS public key and node ID from its stored keys. The JSON key is bls here and bls_pubkey from init, as Polygon Edge names them.",
            CONFIG_KEYS,
            AWS_ENV,
            CONFIG_FILES,
            NONE,
            &[(
                "lockbox output --data-dir node1 --validator",
                "Print only the address.",
            )],
        ),
        Some(c @ ("get" | "put" | "delete" | "list")) => p(
            match c {
                "get" => {
                    "Prints a secret's value: raw bytes when piped, with a newline added only when stdout is a terminal. NAME:3 reads SSM version 3, NAME:label the version with that label."
                }
                "put" => {
                    "Stores a secret read from stdin or --from-file, never from the command line (argv is visible to other users)."
                }
                "delete" => "Deletes a secret.",
                _ => "Lists secret names, optionally only those starting with PREFIX.",
            },
            CONFIG_KEYS,
            AWS_ENV,
            CONFIG_FILES,
            NONE,
            match c {
                "get" => &[(
                    "lockbox get --config secretsManagerConfig.json validator-key",
                    "Print a key.",
                )],
                "put" => &[(
                    "printf %s hunter2 | lockbox put --config c.json db-password",
                    "Store a value from stdin.",
                )],
                "delete" => &[(
                    "lockbox delete --data-dir node1 network-key",
                    "Delete a key.",
                )],
                _ => &[(
                    "lockbox --json list --config c.json",
                    "Every name, as JSON.",
                )],
            },
        ),
        Some("policy") => p(
            "Prints the least-privilege IAM policy (or, for a hashicorp-vault config, the Vault policy) a node, a manifest's sync or a serve config needs. IAM policies need the account (--account or AWS_ACCOUNT_ID).",
            CONFIG_KEYS,
            &[(
                "AWS_ACCOUNT_ID",
                "The account of the resources (--account).",
            )],
            CONFIG_FILES,
            NONE,
            &[
                (
                    "lockbox policy --config c.json --account 123456789012",
                    "The node's IAM policy.",
                ),
                (
                    "lockbox policy --manifest manifest.json --account 123456789012",
                    "What a sync needs.",
                ),
            ],
        ),
        Some("sync") => p(
            "Fetches the cloud secrets a Greengrass-style manifest names from AWS Secrets Manager into the sealed local store, in one atomic write. A secret that does not exist fails the sync and keeps the previous store. With --interval (or the manifest's periodicRefreshIntervalMin) it keeps running, says when the next sync is, and stops on SIGINT/SIGTERM.",
            MANIFEST_KEYS,
            AWS_ENV,
            STORE_FILES,
            NONE,
            &[
                (
                    "lockbox sync --manifest manifest.json --store /var/lib/lockbox",
                    "Sync once.",
                ),
                (
                    "lockbox sync --manifest manifest.json --store /var/lib/lockbox --interval 300",
                    "Sync every 5 minutes until Ctrl-C.",
                ),
            ],
        ),
        Some("read") => p(
            "Reads a secret from the sealed store offline, by name or ARN, with --version-stage or --version-id. --json prints lockbox's snake_case fields (arn, name, version_id, secret_string or secret_binary, version_stages, created_date); with --aws-fields the agent's (ARN, Name, VersionId, SecretString or SecretBinary, VersionStages, CreatedDate).",
            MANIFEST_KEYS,
            NONE,
            STORE_FILES,
            NONE,
            &[(
                "lockbox read --store /var/lib/lockbox --secret-id db",
                "Print db's AWSCURRENT value.",
            )],
        ),
        Some("lookup") => p(
            "Looks up an Airflow connection, variable or config value as Airflow's SSM or Secrets Manager secrets backend would, with the same settings (backend kwargs).",
            &[
                (
                    "connections_prefix, variables_prefix, config_prefix",
                    "Where each kind lives; null disables that kind (no AWS call).",
                ),
                (
                    "connections_lookup_pattern, variables_lookup_pattern, config_lookup_pattern",
                    "Only ids matching (case-insensitive, anchored at the start) are looked up.",
                ),
                (
                    "sep",
                    "Secrets Manager: the separator between prefix and id [default: /].",
                ),
                (
                    "role_arn, region_name, profile_name, endpoint_url",
                    "AWS access.",
                ),
            ],
            &[
                (
                    "AIRFLOW__SECRETS__BACKEND",
                    "The backend (--backend): aws-ssm, aws-secretsmanager or Airflow's class path.",
                ),
                (
                    "AIRFLOW__SECRETS__BACKEND_KWARGS",
                    "The backend kwargs JSON (--backend-kwargs).",
                ),
                (
                    "AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL",
                    "AWS access when the kwargs do not say.",
                ),
            ],
            &[(
                "@FILE",
                "--backend-kwargs @FILE reads the kwargs from FILE.",
            )],
            &[("3", "Nothing found (a note on stderr says why).")],
            &[(
                "lockbox lookup connection my_db --backend aws-ssm",
                "Print my_db's connection URI from /airflow/connections/my_db.",
            )],
        ),
        Some(c @ ("exec" | "env" | "export" | "import" | "history")) => p(
            match c {
                "exec" => {
                    "Runs COMMAND with the secrets of its sources in its environment, as chamber exec does; lockbox becomes COMMAND (same process id, signals and exit code). A SERVICE is a chamber service: SSM parameters /SERVICE/KEY, one level deep (--recursive reads sub-paths too). Later sources win. With --watch[=INTERVAL] (default 60s, each wait jittered by up to 10%) lockbox stays as a supervisor of COMMAND (in its own process group), re-reads the sources every INTERVAL and, only when COMMAND's environment would change, does what --on-change says: signal:NAME (default signal:HUP), restart (SIGTERM, --grace, SIGKILL, start again with the new environment) or exit (stop COMMAND, exit 75). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 go to COMMAND. A failed poll keeps COMMAND running with what it has and warns naming the source; --max-stale warns once the values are that old, and --fail-after then applies the --on-change action once."
                }
                "env" => {
                    "Prints the secrets as export NAME='value' lines for a POSIX shell, as chamber env does."
                }
                "export" => {
                    "Prints (or writes with -o, atomically, mode 0600) the secrets as json, yaml, dotenv, tfvars, java-properties, csv or tsv, as chamber export does. With --json, a json document prints as it is and other formats as {\"format\", \"document\"}."
                }
                "import" => {
                    "Stores every entry of a json, yaml or dotenv file into one source, as chamber import does; a file with a bad entry writes nothing, and existing secrets are replaced only with --overwrite."
                }
                _ => {
                    "Lists the versions of a secret (version, date, who changed it, labels), never values, as chamber history does."
                }
            },
            NONE,
            SOURCE_ENV,
            SOURCE_FILES,
            if c == "exec" {
                &[
                    (
                        "126, 127",
                        "COMMAND could not be run / found; otherwise the exit code is COMMAND's (with --watch, 128+N when signal N ended it).",
                    ),
                    (
                        "75",
                        "--watch with --on-change exit: a change stopped COMMAND.",
                    ),
                    (
                        "69",
                        "--watch with --fail-after and --on-change exit: the values went stale.",
                    ),
                ]
            } else {
                NONE
            },
            match c {
                "exec" => &[
                    (
                        "lockbox exec myapp other -- ./server",
                        "chamber exec myapp other -- ./server.",
                    ),
                    (
                        "lockbox exec --config app.json --store /var/lib/lockbox -- ./server",
                        "A config and the sealed store, the store winning.",
                    ),
                    (
                        "lockbox exec --watch=5m --on-change restart myapp -- ./server",
                        "Restart ./server when a secret of service myapp changes (polled every 5 minutes).",
                    ),
                ],
                "env" => &[(
                    "eval \"$(lockbox env myapp)\"",
                    "Load service myapp into the shell.",
                )],
                "export" => &[(
                    "lockbox export -f dotenv -o .env myapp",
                    "Write myapp's secrets as a dotenv file.",
                )],
                "import" => &[(
                    "lockbox import myapp secrets.json",
                    "chamber import myapp secrets.json.",
                )],
                _ => &[(
                    "lockbox history myapp db_password",
                    "chamber history myapp db_password.",
                )],
            },
        ),
        Some("render") => p(
            "Fills minijinja (Jinja) templates with the secrets of its sources and writes each output atomically (a reader sees the old file or the whole new one), owner-only unless --mode, and only when its bytes change, as Vault Agent templates and consul-template do. In a template: secret(\"NAME\"), secret(\"NAME\") | fromjson for a JSON secret, env(\"NAME\") or env(\"NAME\", \"default\"), and the escaping filters shell, json, yaml and dotenv. A missing secret fails naming it and the template line, and nothing is written. Several --template/--out pairs share one read of the sources. --on-change runs a command (split like a shell, run without one, killed after --on-change-timeout) after a round that wrote a file. With --watch[=INTERVAL] it keeps polling until SIGTERM or SIGINT; a failed round keeps the files as they are.",
            NONE,
            SOURCE_ENV,
            &[
                ("--template FILE", "A template (UTF-8, at most 1 MiB)."),
                (
                    "--out FILE",
                    "Its output, written atomically with --mode [default: 0600].",
                ),
                ("secretsManagerConfig.json", "A --config source."),
                (
                    "DIR/secrets.sealed, DIR.key",
                    "A --store source and its default key file.",
                ),
            ],
            NONE,
            &[
                (
                    "lockbox render myapp --template app.conf.j2 --out /etc/app.conf",
                    "Write /etc/app.conf from service myapp's secrets once.",
                ),
                (
                    "lockbox render --config app.json --template nginx.j2 --out nginx.conf --watch=5m --on-change 'systemctl reload nginx'",
                    "Keep nginx.conf current and reload nginx when it changes.",
                ),
            ],
        ),
        Some("serve") => p(
            "Serves Secrets Manager secrets and SSM parameters on a loopback HTTP endpoint, as the AWS Secrets Manager Agent (same --config file, paths and answers) and the Parameters and Secrets Lambda extension do. It refuses to start without a token (AWS_TOKEN, ...) and prints listening on ... on stdout when ready.",
            &[
                ("http_port", "Port on 127.0.0.1 [default: 2773]."),
                ("ttl_seconds", "Cache TTL, 0..3600 [default: 300]."),
                (
                    "cache_size, max_conn",
                    "Cached entries [1000] and connections [800].",
                ),
                (
                    "region, log_level, path_prefix",
                    "AWS region; log level; the /v1/ path prefix.",
                ),
                (
                    "ssrf_headers, ssrf_env_variables",
                    "Where the token header and token come from.",
                ),
                (
                    "ignore_transient_errors, validate_credentials",
                    "As in the agent [default: true].",
                ),
                (
                    "[lockbox] manifest, store, consumers, prefetch_secrets, prefetch_parameters",
                    "lockbox's own: a sealed store answered offline, per-program access, fetches at start.",
                ),
                (
                    "[lockbox] max_conn_per_peer, token_reserved_conn, write_timeout_seconds, max_pipelined_requests, allow_non_loopback",
                    "Connections without a token per uid [max_conn/2]; slots only token holders use [max_conn/4]; a client not reading its answers is dropped [10 s]; requests sent ahead [16]; a listen address other hosts reach [false].",
                ),
            ],
            &[
                (
                    "AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    "The token requests must carry (file://PATH is read).",
                ),
                ("AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL", "AWS access."),
            ],
            &[(
                "FILE",
                "The agent's TOML config (--config); unknown keys are refused.",
            )],
            NONE,
            &[(
                "AWS_TOKEN=$(head -c 32 /dev/urandom | base64) lockbox serve --config serve.toml",
                "Start the endpoint.",
            )],
        ),
        Some("completions") => p(
            "Prints a shell completion script (bash, zsh or fish) on stdout.",
            NONE,
            NONE,
            NONE,
            NONE,
            &[(
                "lockbox completions bash > /etc/bash_completion.d/lockbox",
                "Install bash completion.",
            )],
        ),
        Some(_) => p(
            "Prints the lockbox(1) man page, or a command's, as roff on stdout.",
            NONE,
            NONE,
            &[(
                "/usr/local/share/man/man1/lockbox.1",
                "Where to install the pages.",
            )],
            NONE,
            &[
                (
                    "lockbox man exec > /usr/local/share/man/man1/lockbox-exec.1",
                    "Install exec's page.",
                ),
                ("lockbox man | man -l -", "Read lockbox(1)."),
            ],
        ),
    }
}
