//! The soak's data: the secrets it puts on the emulator (the same ARNs and version ids after
//! every restart), the paths its clients read, which bodies are right, and serve's files.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::emulator::fnv1a64;
use crate::util::http::secrets_manager_call;

/// Secrets wrk and the checker read.
pub const SECRETS: usize = 8;
/// Moto's tag that fixes the ARN's random suffix, so a restarted emulator gives the same ARN.
const CUSTOM_ID_TAG: &str = "_custom_id_";

/// One path a client reads, and the secret it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// Path and query, e.g. `/secretsmanager/get?secretId=NAME&versionStage=AWSPREVIOUS`.
    pub path: String,
    /// Index of the secret asked (`SECRETS` is the consumer's own secret).
    pub secret: usize,
}

/// The run's secrets: `SECRETS` read by wrk and the checker, and the consumer's own.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Prefix of every name and value (unique per run).
    pub tag: String,
    /// Names, index `SECRETS` being the consumer's secret.
    pub names: Vec<String>,
    /// ARNs, as the emulator answered the first CreateSecret.
    pub arns: Vec<String>,
}

impl Fixture {
    /// Names for a run tagged `tag`.
    pub fn new(tag: &str) -> Fixture {
        let mut names: Vec<String> = (0..SECRETS).map(|i| format!("{tag}-s{i}")).collect();
        names.push(format!("{tag}-consumer"));
        Fixture {
            tag: tag.to_owned(),
            names,
            arns: Vec::new(),
        }
    }

    /// Index of the consumer's own secret.
    pub fn consumer_secret(&self) -> usize {
        SECRETS
    }

    /// The value of secret `i` at epoch `n` (test data, not a secret).
    pub fn value(&self, i: usize, n: u64) -> String {
        format!("{}-{i}-v{n}", self.tag)
    }

    /// The version id of secret `i` at epoch `n` (UUID-shaped: moto wants 32 to 64 characters).
    pub fn version_id(&self, i: usize, n: u64) -> String {
        let h = fnv1a64(self.tag.as_bytes());
        format!("{:08x}-{i:04x}-4000-8000-{n:012x}", h as u32)
    }

    /// The six letters moto puts after the name in the ARN.
    fn suffix(&self, i: usize) -> String {
        let mut h = fnv1a64(format!("{}-{i}", self.tag).as_bytes());
        (0..6)
            .map(|_| {
                let c = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[(h % 52) as usize];
                h /= 52;
                char::from(c)
            })
            .collect()
    }

    /// Puts every secret on the (empty) emulator at `127.0.0.1:port` as it is at `epoch`
    /// (>= 1): AWSPREVIOUS the value of `epoch - 1`, AWSCURRENT that of `epoch`. Returns the
    /// ARNs; after the first time, checks the emulator gave the same ARNs again.
    pub fn put_epoch(&self, port: u16, epoch: u64) -> Result<Vec<String>> {
        let mut arns = Vec::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            let created = secrets_manager_call(
                port,
                "CreateSecret",
                &json!({
                    "Name": name,
                    "SecretString": self.value(i, epoch - 1),
                    "ClientRequestToken": self.version_id(i, epoch - 1),
                    "Tags": [{"Key": CUSTOM_ID_TAG, "Value": self.suffix(i)}],
                }),
            )?;
            secrets_manager_call(
                port,
                "PutSecretValue",
                &json!({
                    "SecretId": name,
                    "SecretString": self.value(i, epoch),
                    "ClientRequestToken": self.version_id(i, epoch),
                }),
            )?;
            let arn = created["ARN"]
                .as_str()
                .with_context(|| format!("CreateSecret of {name} answered no ARN"))?;
            arns.push(arn.to_owned());
        }
        if !self.arns.is_empty() && self.arns != arns {
            bail!(
                "the restarted emulator gave the secrets other ARNs ({} instead of {}): \
                 the `{CUSTOM_ID_TAG}` tag no longer fixes them",
                arns[0],
                self.arns[0]
            );
        }
        Ok(arns)
    }

    /// The paths most requests read (cache hits).
    pub fn hot(&self) -> Vec<Read> {
        let n = &self.names;
        vec![
            read(0, format!("/secretsmanager/get?secretId={}", n[0])),
            read(
                1,
                format!(
                    "/secretsmanager/get?secretId={}&versionStage=AWSPREVIOUS",
                    n[1]
                ),
            ),
            read(2, format!("/v1/{}", n[2])),
            read(3, format!("/secretsmanager/get?secretId={}", self.arns[3])),
        ]
    }

    /// More keys than serve's cache holds: reads of these are mostly misses (the cloud when it
    /// answers, the store when it does not).
    pub fn cold(&self) -> Vec<Read> {
        (0..SECRETS)
            .flat_map(|i| {
                let (name, arn) = (&self.names[i], &self.arns[i]);
                [
                    format!("/secretsmanager/get?secretId={name}&versionStage=AWSCURRENT"),
                    format!("/secretsmanager/get?secretId={arn}&versionStage=AWSPREVIOUS"),
                    format!("/v1/{name}?versionStage=AWSPREVIOUS"),
                    format!("/v1/{arn}"),
                ]
                .map(|path| read(i, path))
            })
            .collect()
    }

    /// `None` when a `status` answer with `body` to a read of secret `i` is right: anything but a
    /// 200, or a 200 whose `Name` is the secret's and whose `SecretString` is its value at some
    /// epoch up to `epoch` (the current value or a previous one). Else why it is wrong.
    pub fn verdict(&self, i: usize, status: u16, body: &str, epoch: u64) -> Option<String> {
        if status != 200 {
            return None;
        }
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            return Some(format!("{}: a 200 whose body is not JSON", self.names[i]));
        };
        if json["Name"].as_str() != Some(self.names[i].as_str()) {
            return Some(format!(
                "{}: a 200 naming another secret ({})",
                self.names[i], json["Name"]
            ));
        }
        let Some(value) = json["SecretString"].as_str() else {
            return Some(format!("{}: a 200 without SecretString", self.names[i]));
        };
        let prefix = format!("{}-{i}-v", self.tag);
        match value.strip_prefix(&prefix).map(str::parse::<u64>) {
            Some(Ok(n)) if n <= epoch => None,
            Some(Ok(n)) => Some(format!(
                "{}: the value of epoch {n}, never written (now {epoch})",
                self.names[i]
            )),
            _ => Some(format!(
                "{}: a value that was never this secret's",
                self.names[i]
            )),
        }
    }

    /// A Greengrass v2 manifest naming every secret.
    pub fn manifest(&self) -> String {
        let entries: Vec<Value> = self.names.iter().map(|n| json!({"arn": n})).collect();
        json!({ "cloudSecrets": entries }).to_string()
    }

    /// Two consumers: `soak` (this process's `uid`: wrk, the checker) reads the wrk secrets;
    /// `cycler` (its own `token`) reads only its own secret.
    pub fn consumers(&self, uid: u32, token: &str) -> String {
        let policy = |names: &[String]| -> Vec<Value> {
            names
                .iter()
                .map(|n| json!({"ResourceId": n, "Permission": "ro"}))
                .collect()
        };
        json!({"Consumers": [
            {"Name": "soak", "Uid": uid, "ResourceAccessPolicies": policy(&self.names[..SECRETS])},
            {"Name": "cycler", "Token": token,
             "ResourceAccessPolicies": policy(&self.names[SECRETS..])},
        ]})
        .to_string()
    }
}

fn read(secret: usize, path: String) -> Read {
    Read { path, secret }
}

/// serve's config: the agent's keys and `[lockbox]` with the offline store and consumers.
pub fn serve_config(port: u16, endpoint: &str, work: &Path) -> String {
    let p = |name: &str| work.join(name).display().to_string();
    format!(
        "http_port = {port}\nlog_level = \"error\"\nttl_seconds = 5\ncache_size = 16\n\
         max_conn = 128\nvalidate_credentials = false\n\n[lockbox]\n\
         endpoint_url = \"{endpoint}\"\nmanifest = \"{}\"\nstore = \"{}\"\n\
         sync_interval_seconds = 20\nconsumers = \"{}\"\n",
        p("manifest.json"),
        p("store"),
        p("consumers.json")
    )
}

/// wrk's script: load.rs's (token header, the `LOCKBOX_LOAD` line), a path per request
/// (`miss` of them from `cold`, the rest from `hot`), and the statuses and socket errors
/// counted across threads (`LOCKBOX_STATUS 200=N ...`, `LOCKBOX_ERRORS connect=N ...`).
pub fn lua(token: &str, hot: &[Read], cold: &[Read], miss: f64) -> String {
    let list = |reads: &[Read]| -> String {
        reads
            .iter()
            .map(|r| format!("{:?}", r.path))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"{load}
local hot = {{ {hot} }}
local cold = {{ {cold} }}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
function init(args)
  statuses = {{}}
  math.randomseed(os.time() * 1000 + id)
end
function request()
  local list = hot
  if math.random() < {miss} then list = cold end
  return wrk.format(nil, list[math.random(#list)])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local load_done = done
done = function(summary, latency, requests)
  load_done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local line = "LOCKBOX_STATUS"
  for k, v in pairs(total) do line = line .. string.format(" %d=%d", k, v) end
  io.write(line .. "\n")
  local e = summary.errors
  io.write(string.format("LOCKBOX_ERRORS connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
end
"#,
        load = crate::load::generators::lua_script(token),
        hot = list(hot),
        cold = list(cold),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Fixture {
        let mut f = Fixture::new("soak-t");
        f.arns = f
            .names
            .iter()
            .map(|n| format!("arn:x:{n}-abcdef"))
            .collect();
        f
    }

    #[test]
    fn names_versions_and_suffixes_are_stable_and_distinct() {
        let f = fixture();
        assert_eq!(f.names.len(), SECRETS + 1);
        assert_eq!(f.names[f.consumer_secret()], "soak-t-consumer");
        let v = f.version_id(3, 7);
        assert_eq!(v.len(), 36);
        assert_eq!(v, fixture().version_id(3, 7));
        assert_ne!(v, f.version_id(3, 8));
        assert_ne!(f.version_id(2, 7), v);
        let s = f.suffix(1);
        assert_eq!(s.len(), 6);
        assert!(s.chars().all(|c| c.is_ascii_alphabetic()));
        assert_eq!(s, fixture().suffix(1));
    }

    #[test]
    fn a_body_is_right_only_for_its_secret_up_to_the_epoch() {
        let f = fixture();
        let body = |name: &str, value: &str| {
            json!({"Name": name, "SecretString": value, "ARN": "x"}).to_string()
        };
        let ok = body(&f.names[2], &f.value(2, 3));
        assert_eq!(f.verdict(2, 200, &ok, 3), None);
        assert_eq!(f.verdict(2, 200, &ok, 5), None, "a previous value is right");
        assert!(f.verdict(2, 200, &ok, 2).is_some(), "a value never written");
        // Another secret's value, or name; not JSON; no SecretString.
        assert!(
            f.verdict(2, 200, &body(&f.names[2], &f.value(1, 3)), 3)
                .is_some()
        );
        assert!(
            f.verdict(2, 200, &body(&f.names[1], &f.value(2, 3)), 3)
                .is_some()
        );
        assert!(f.verdict(2, 200, "healthy", 3).is_some());
        assert!(
            f.verdict(2, 200, &json!({"Name": f.names[2]}).to_string(), 3)
                .is_some()
        );
        // Errors are not wrong answers.
        assert_eq!(f.verdict(2, 502, "not json", 3), None);
        // The reason never carries the value.
        let why = f
            .verdict(2, 200, &body(&f.names[2], &f.value(1, 3)), 3)
            .unwrap();
        assert!(!why.contains(&f.value(1, 3)), "{why}");
    }

    #[test]
    fn paths_cover_hits_and_more_keys_than_the_cache() {
        let f = fixture();
        let (hot, cold) = (f.hot(), f.cold());
        assert_eq!(hot.len(), 4);
        assert_eq!(cold.len(), SECRETS * 4);
        assert!(cold.len() > 16, "more cold keys than cache_size");
        assert!(hot[3].path.contains("arn:x:"));
        assert!(cold.iter().all(|r| r.secret < SECRETS));
        let script = lua("tok-0123456789abcdef", &hot, &cold, 0.05);
        assert!(script.contains("X-Aws-Parameters-Secrets-Token"));
        assert!(script.contains(&format!("{:?}", cold[31].path)));
        assert!(script.contains("math.random() < 0.05"));
        assert!(script.contains("LOCKBOX_LOAD"));
    }

    #[test]
    fn files_name_every_secret_and_the_consumers() {
        let f = fixture();
        let m: Value = serde_json::from_str(&f.manifest()).unwrap();
        assert_eq!(m["cloudSecrets"].as_array().unwrap().len(), SECRETS + 1);
        let c: Value = serde_json::from_str(&f.consumers(0, "tok")).unwrap();
        let c = c["Consumers"].as_array().unwrap();
        assert_eq!(c[0]["Uid"], 0);
        assert_eq!(
            c[0]["ResourceAccessPolicies"].as_array().unwrap().len(),
            SECRETS
        );
        assert_eq!(
            c[1]["ResourceAccessPolicies"][0]["ResourceId"],
            "soak-t-consumer"
        );
        let config = serve_config(2773, "http://127.0.0.1:1", Path::new("/w"));
        assert!(config.contains("store = \"/w/store\""));
        assert!(config.contains("consumers = \"/w/consumers.json\""));
    }
}
