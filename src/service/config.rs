//! The service's config file (SERVICE.md §7): TOML, unknown keys refused,
//! `${VAR}` taken from the environment (a missing variable is an error
//! that names it). Secrets are kept out of `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::syntax::parse_duration;

/// The keys this build reads.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub ingest: Ingest,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub checkpoint: Checkpoint,
    #[serde(default)]
    pub feed: Feed,
    #[serde(default)]
    pub journal: Journal,
    /// `[nats]`: the deployment in NATS JetStream (`--nats` overrides its
    /// `url`).
    #[serde(default)]
    pub nats: Nats,
    /// Link and open tracking, and the unsubscribe page (SERVICE.md §6).
    pub tracking: Option<Tracking>,
    /// The in-app inbox's read API (`GET /v1/inbox/{user_key}`).
    pub inbox: Option<Inbox>,
    /// `[channels.<name>]`: each channel's provider and its settings, read
    /// by [`crate::service::delivery::channels`] (SERVICE.md §7).
    #[serde(default)]
    pub channels: BTreeMap<String, toml::Table>,
    /// `[audiences.<name>]`: an ad network's provider (`meta`,
    /// `google_ads`) and the journeys' audiences it syncs, read by
    /// [`crate::service::delivery::channels`].
    #[serde(default)]
    pub audiences: BTreeMap<String, toml::Table>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// Accepted write keys; none: ingest is open (loopback only).
    #[serde(default)]
    pub write_keys: Vec<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// The Bearer token of `/admin/*` and `/v1/actions`.
    pub token: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// How often each partition is checkpointed (a duration, `60s`).
    pub every: Option<String>,
    /// ... or after how many of its journal entries, whichever is first.
    pub entries: Option<u64>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// How long committed actions stay in `/v1/actions` (a duration,
    /// default `7d`).
    pub retention: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// How long journal entries a checkpoint covers are kept (a duration;
    /// by default they are dropped with the checkpoint's commit).
    pub retention: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nats {
    /// The server (`nats://127.0.0.1:4222`); absent: the data directory.
    pub url: Option<String>,
    /// How long a partition's lease outlives its last heartbeat (a
    /// duration, default `3s`; fixed when the deployment is created).
    pub lease_ttl: Option<String>,
    /// JetStream's replicas of every stream and bucket (default 1; fixed
    /// when the deployment is created).
    pub replicas: Option<usize>,
    /// Deliveries of one action by the delivery consumer, at most
    /// (default 20); then it is dead-lettered.
    pub max_deliver: Option<i64>,
    /// How long a delivering process has to answer for an action before
    /// JetStream gives it to another (a duration, default `30s`).
    pub ack_wait: Option<String>,
    /// How often the in-app inboxes' expired messages are swept (a
    /// duration, default `1m`).
    pub inbox_sweep_every: Option<String>,
}

/// `[tracking]`, read by [`crate::service::delivery::tracking::Tracking::new`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    /// Where `/t/c/`, `/t/o/` and `/u/` of this service are reached from
    /// a customer's mail client (`https://t.shop.example`).
    pub base_url: String,
    /// The key of the links' signatures.
    pub secret: String,
    /// What an unsubscribe records: `consent` (`consent.<channel> =
    /// false`, the default) or `unsubscribed` (`unsubscribed = true`).
    pub opt_out: Option<String>,
}

/// `[inbox]`, read by [`crate::service::delivery::inbox::InboxKeys::new`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbox {
    /// The key of the per-user tokens the embedding app computes.
    pub secret: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "write_keys",
                &format!("{} hidden", self.ingest.write_keys.len()),
            )
            .field("admin_token", &self.admin.token.as_ref().map(|_| "hidden"))
            .field("checkpoint_every", &self.checkpoint.every)
            .field(
                "tracking",
                &self
                    .tracking
                    .as_ref()
                    .map(|t| (&t.base_url, "secret hidden")),
            )
            .field("inbox", &self.inbox.as_ref().map(|_| "secret hidden"))
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("audiences", &self.audiences.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Config {
    /// The delivery tables, for [`crate::service::delivery::channels`].
    pub fn delivery_tables(&self) -> crate::service::delivery::Tables<'_> {
        crate::service::delivery::Tables {
            channels: &self.channels,
            audiences: &self.audiences,
        }
    }

    /// Parses the file's text, expanding `${VAR}` from `env`.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let expanded = expand(text, env)?;
        let config: Config = toml::from_str(&expanded).map_err(|e| e.to_string())?;
        if config.ingest.write_keys.iter().any(String::is_empty) {
            return Err("`ingest.write_keys` holds an empty key".into());
        }
        if config.admin.token.as_deref() == Some("") {
            return Err("`admin.token` is empty".into());
        }
        config.checkpoint_every()?;
        config.feed_retention()?;
        if config.checkpoint.entries == Some(0) {
            return Err("`checkpoint.entries` must be at least 1".into());
        }
        config.tracking()?;
        config.inbox()?;
        config.lease_ttl()?;
        config.inbox_sweep_every()?;
        config.nats_delivery()?;
        if config.nats.replicas.is_some_and(|r| !(1..=5).contains(&r)) {
            return Err("`nats.replicas` must be between 1 and 5 (JetStream's limit)".into());
        }
        Ok(config)
    }

    /// `nats.lease_ttl` (default 3 s).
    pub fn lease_ttl(&self) -> Result<Duration, String> {
        let ttl = duration_key("nats.lease_ttl", self.nats.lease_ttl.as_deref(), 3, "3s")?;
        if ttl < Duration::from_millis(300) {
            return Err("`nats.lease_ttl` must be at least `300ms`".into());
        }
        Ok(ttl)
    }

    /// `nats.inbox_sweep_every` (default 1 min).
    pub fn inbox_sweep_every(&self) -> Result<Duration, String> {
        let every = duration_key(
            "nats.inbox_sweep_every",
            self.nats.inbox_sweep_every.as_deref(),
            60,
            "1m",
        )?;
        if every < Duration::from_secs(1) {
            return Err("`nats.inbox_sweep_every` must be at least `1s`".into());
        }
        Ok(every)
    }

    /// `nats.max_deliver` and `nats.ack_wait`.
    pub fn nats_delivery(&self) -> Result<crate::service::nats::delivery::Settings, String> {
        let max_deliver = self.nats.max_deliver.unwrap_or(20);
        if !(1..=10_000).contains(&max_deliver) {
            return Err("`nats.max_deliver` must be a whole number from 1 to 10000".into());
        }
        let ack_wait = duration_key("nats.ack_wait", self.nats.ack_wait.as_deref(), 30, "30s")?;
        if ack_wait < Duration::from_secs(1) {
            return Err("`nats.ack_wait` must be at least `1s`".into());
        }
        Ok(crate::service::nats::delivery::Settings {
            max_deliver,
            ack_wait,
        })
    }

    /// `[tracking]`, checked, when configured.
    pub fn tracking(&self) -> Result<Option<crate::service::delivery::tracking::Tracking>, String> {
        self.tracking
            .as_ref()
            .map(crate::service::delivery::tracking::Tracking::new)
            .transpose()
    }

    /// `[inbox]`, checked, when configured.
    pub fn inbox(&self) -> Result<Option<crate::service::delivery::inbox::InboxKeys>, String> {
        self.inbox
            .as_ref()
            .map(crate::service::delivery::inbox::InboxKeys::new)
            .transpose()
    }

    /// `feed.retention` (default 7 days).
    pub fn feed_retention(&self) -> Result<Duration, String> {
        duration_key(
            "feed.retention",
            self.feed.retention.as_deref(),
            7 * 86_400,
            "7d",
        )
    }

    /// `journal.retention` (default 0: the journal a checkpoint covers
    /// goes at once).
    pub fn journal_retention(&self) -> Result<Duration, String> {
        duration_key(
            "journal.retention",
            self.journal.retention.as_deref(),
            0,
            "7d",
        )
    }

    /// `checkpoint.every` (default 60 s).
    pub fn checkpoint_every(&self) -> Result<Duration, String> {
        duration_key(
            "checkpoint.every",
            self.checkpoint.every.as_deref(),
            60,
            "60s",
        )
    }
}

/// A duration key's value (`default_secs` when absent): above zero, in the
/// language's duration text.
pub(crate) fn duration_key(
    key: &str,
    text: Option<&str>,
    default_secs: u64,
    example: &str,
) -> Result<Duration, String> {
    match text {
        None => Ok(Duration::from_secs(default_secs)),
        Some(text) => duration(text).ok_or_else(|| {
            format!("`{key} = \"{text}\"` is not a duration above zero (write `{example}`)")
        }),
    }
}

/// A config duration: the language's duration text (`30s`, `1h30m`,
/// `7d`), or whole milliseconds (`250ms`); `None` unless above zero.
pub fn duration(text: &str) -> Option<Duration> {
    let ms = text
        .strip_suffix("ms")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let parsed = match ms {
        Some(n) => n.parse().ok().map(Duration::from_millis),
        None => parse_duration(text).ok().map(Duration::from_secs),
    };
    parsed.filter(|d| !d.is_zero())
}

/// Replaces each `${NAME}` with the variable's value.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("a `${` without its `}`".into());
        };
        let name = &after[..end];
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!("`${{{name}}}` is not a variable name"));
        }
        let value =
            env(name).ok_or_else(|| format!("the environment variable `{name}` is not set"))?;
        // The value goes into a TOML string: keep it one.
        out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cr\"et".to_string())
    }

    #[test]
    fn variables_expand_and_unknown_keys_are_refused() {
        let config = Config::parse(
            "[ingest]\nwrite_keys = [\"${KEY}\"]\n[admin]\ntoken = \"t\"\n[checkpoint]\nevery = \"30s\"\n",
            &env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.ingest.write_keys, vec!["s3cr\"et".to_string()]);
        assert_eq!(config.checkpoint_every(), Ok(Duration::from_secs(30)));
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cr") && !debug.contains("\"t\""),
            "{debug}"
        );
        let missing = Config::parse("[admin]\ntoken = \"${NOPE}\"\n", &env);
        assert_eq!(
            missing.err().as_deref(),
            Some("the environment variable `NOPE` is not set")
        );
        let unknown = Config::parse("[ingest]\nwrite_key = \"x\"\n", &env);
        assert!(unknown.err().is_some_and(|e| e.contains("write_key")));
        let bad = Config::parse("[checkpoint]\nevery = \"soon\"\n", &env);
        assert!(bad.err().is_some_and(|e| e.contains("soon")));
    }

    #[test]
    fn tracking_and_inbox_are_checked_and_their_secrets_hidden() {
        let text = "[tracking]\nbase_url = \"https://t.shop.example\"\nsecret = \"${KEY}-0123456789abcdef\"\n\
                    [inbox]\nsecret = \"inbox-0123456789abcdef\"\n";
        let config = Config::parse(text, &env).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.tracking().is_ok_and(|t| t.is_some()));
        assert!(config.inbox().is_ok_and(|i| i.is_some()));
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cr") && !debug.contains("inbox-0123"),
            "{debug}"
        );
        let unknown = Config::parse(
            "[tracking]\nbase_url = \"https://t.example\"\nsecret = \"0123456789abcdef\"\nsalt = \"x\"\n",
            &env,
        );
        assert!(unknown.err().is_some_and(|e| e.contains("salt")));
        let short = Config::parse("[inbox]\nsecret = \"x\"\n", &env);
        assert!(short.err().is_some_and(|e| e.contains("inbox.secret")));
    }

    #[test]
    fn the_nats_table_is_checked() {
        let config = Config::parse(
            "[nats]\nurl = \"nats://127.0.0.1:4222\"\nlease_ttl = \"1500ms\"\nreplicas = 3\n",
            &env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(config.lease_ttl(), Ok(Duration::from_millis(1_500)));
        assert_eq!(Config::default().lease_ttl(), Ok(Duration::from_secs(3)));
        let short = Config::parse("[nats]\nlease_ttl = \"100ms\"\n", &env);
        assert!(short.err().is_some_and(|e| e.contains("at least `300ms`")));
        let replicas = Config::parse("[nats]\nreplicas = 7\n", &env);
        assert!(replicas.err().is_some_and(|e| e.contains("nats.replicas")));
        assert_eq!(
            config.nats_delivery().map(|s| (s.max_deliver, s.ack_wait)),
            Ok((20, Duration::from_secs(30)))
        );
        let deliver = Config::parse("[nats]\nmax_deliver = 0\n", &env);
        assert!(
            deliver
                .err()
                .is_some_and(|e| e.contains("nats.max_deliver"))
        );
        let wait = Config::parse("[nats]\nack_wait = \"100ms\"\n", &env);
        assert!(wait.err().is_some_and(|e| e.contains("nats.ack_wait")));
        assert_eq!(config.inbox_sweep_every(), Ok(Duration::from_secs(60)));
        let sweep = Config::parse("[nats]\ninbox_sweep_every = \"5m\"\n", &env);
        assert_eq!(
            sweep.map(|c| c.inbox_sweep_every()),
            Ok(Ok(Duration::from_secs(300)))
        );
        let sweep = Config::parse("[nats]\ninbox_sweep_every = \"10ms\"\n", &env);
        assert!(
            sweep
                .err()
                .is_some_and(|e| e.contains("`nats.inbox_sweep_every` must be at least `1s`"))
        );
        let unknown = Config::parse("[nats]\nservers = []\n", &env);
        assert!(unknown.err().is_some_and(|e| e.contains("servers")));
    }

    #[test]
    fn durations_read_the_language_and_milliseconds() {
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("1h30m"), Some(Duration::from_secs(5_400)));
        for bad in ["0s", "0ms", "ms", "1.5s", "-1s", "soon", ""] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn channel_tables_are_kept_for_delivery_and_not_shown() {
        let config = Config::parse(
            "[channels.webhook]\nprovider = \"webhook\"\nsecret = \"${KEY}\"\n",
            &env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let table = &config.channels["webhook"];
        assert_eq!(table["provider"].as_str(), Some("webhook"));
        assert_eq!(table["secret"].as_str(), Some("s3cr\"et"));
        let debug = format!("{config:?}");
        assert!(
            debug.contains("webhook") && !debug.contains("s3cr"),
            "{debug}"
        );
    }
}
