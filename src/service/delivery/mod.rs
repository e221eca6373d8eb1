//! Delivery: every `send` of the outbox through the provider its channel
//! is bound to (SERVICE.md §6). This module names what a provider is given
//! and answers, reads a channel's `[channels.<name>]` table, and holds the
//! one registry of providers ([`provider`]); the engine that feeds
//! providers from the outbox, and the providers themselves, live beside it.
//!
//! - [`engine`]: the outbox → per-channel queues (rate, concurrency) →
//!   attempts (retries, backoff) → records and outcome events.
//! - [`log`], [`webhook`], [`smtp`], [`twilio`], [`fcm`], [`apns`],
//!   [`inbox`]: providers of sends; [`meta`], [`google_ads`]: providers of
//!   `audience` actions, batched by [`audience`].

pub mod apns;
pub mod audience;
pub mod fcm;
pub mod google_ads;
pub mod http;
pub mod meta;
pub mod twilio;

pub mod engine;
pub mod log;
pub mod smtp;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub mod inbox;
pub mod tracking;
use crate::service::config::duration;
use inbox::InboxStore;

/// A boxed future, for providers behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One attempt of one `send` action, as a provider sees it.
#[derive(Clone, Debug)]
pub struct Message {
    /// The send's `message_id`, verbatim.
    pub message_id: String,
    pub user_id: String,
    pub journey: String,
    pub template: String,
    pub channel: String,
    /// The address (a string), `null` for a channel without one.
    pub to: serde_json::Value,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub html: Option<String>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// The send action's JSON line, verbatim.
    pub line: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Wall-clock milliseconds when the action was committed to the outbox.
    pub committed_ms: i64,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The provider accepted it (`message.sent`); `response` is what it
    /// said, kept in the attempt's record.
    Sent { response: String },
    /// Transient (a connection error, a timeout, 5xx, 429, SMTP 4xx): try
    /// again, no sooner than `after` when the provider said (`Retry-After`).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Permanent (4xx, SMTP 5xx, an invalid address): `message.failed` at
    /// once.
    Fail { error: String },
}

/// Delivers messages of one channel (or, for an audience provider, the
/// `audience` actions of the audiences it syncs). `Any`, so that a route
/// can reach its provider's own API (Twilio's callbacks).
pub trait Provider: std::any::Any + Send + Sync + 'static {
    /// Delivers one attempt. Every attempt of one message carries the same
    /// idempotency key, derived from [`Message::message_id`], wherever the
    /// provider has a place for it.
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome>;

    /// Whether sends go anywhere. `false` only for [`log::LogProvider`]:
    /// its sends stay in the outbox and feed, with no attempt and no
    /// outcome event.
    fn delivers(&self) -> bool {
        true
    }

    /// The journeys' audiences (`add to audience <name>`) whose `audience`
    /// actions this provider syncs; empty for a provider of sends.
    fn audiences(&self) -> Vec<String> {
        Vec::new()
    }

    /// How many attempts the provider gathers into one request at most
    /// (1: each its own). A channel whose table does not set `concurrency`
    /// lets twice this many be in flight, so that one batch fills while
    /// another is sent.
    fn batch_size(&self) -> usize {
        1
    }
}

/// What tracking does to an email before it goes out: its HTML with links
/// rewritten and an open pixel added, and the one-click unsubscribe URL for
/// `List-Unsubscribe` (SERVICE.md §6, `[tracking]`).
pub trait EmailDecorator: Send + Sync + 'static {
    /// The HTML to send and the unsubscribe URL, for this message.
    fn decorate(&self, message: &Message, html: Option<String>)
    -> (Option<String>, Option<String>);
}

/// What every provider of a deployment shares.
#[derive(Clone)]
pub struct Shared {
    /// The one HTTP client of the HTTP providers (rustls; redirects are
    /// not followed: a signed request goes where it was configured to, or
    /// fails).
    pub client: reqwest::Client,
    /// Tracking's link rewriting and unsubscribe URL for email, when
    /// `[tracking]` is configured.
    pub email_decorator: Option<Arc<dyn EmailDecorator>>,
}

impl Shared {
    /// The shared client, with no decorator.
    pub fn new() -> Result<Shared, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Shared {
            client,
            email_decorator: None,
        })
    }
}

/// What a provider's constructor is given besides its settings.
pub struct Context<'a> {
    /// The channel's name (`email`, `sms`, ...).
    pub channel: &'a str,
    pub shared: &'a Shared,
    /// Where the deployment keeps the customers' inboxes, for the
    /// provider that keeps what it delivers (`inbox`); `None` while the
    /// settings are only checked (`--check-config`, which opens no data
    /// directory).
    pub inbox: Option<&'a Arc<dyn InboxStore>>,
}

/// What a provider's constructor made of its settings.
pub enum Built {
    /// The provider, ready to deliver.
    Ready(Arc<dyn Provider>),
    /// The settings are right; the provider needs [`Context::inbox`],
    /// which a check does not give.
    Checked,
}

fn ready<P: Provider>(provider: P) -> Result<Built, String> {
    Ok(Built::Ready(Arc::new(provider)))
}

/// A provider's constructor: its settings (the channel's table less the
/// engine's keys, `${VAR}`s expanded) to the provider, or what is wrong
/// with them. Building a provider is checking its settings: `--check-config`
/// builds every configured one.
type Constructor = fn(&toml::Table, &Context<'_>) -> Result<Built, String>;

/// Every provider, by the name a channel's `provider = "..."` gives: the
/// one place providers are named. A new provider is one line here.
const PROVIDERS: &[(&str, Constructor)] = &[
    ("log", |settings, _| {
        ready(log::LogProvider::from_settings(settings)?)
    }),
    ("webhook", |settings, cx| {
        ready(webhook::WebhookProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
    ("smtp", |settings, cx| {
        ready(smtp::SmtpProvider::from_settings(
            settings,
            cx.shared.email_decorator.clone(),
        )?)
    }),
    ("twilio", |settings, cx| {
        ready(twilio::TwilioProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
    ("fcm", |settings, cx| {
        ready(fcm::FcmProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
    ("apns", |settings, cx| {
        ready(apns::ApnsProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
    ("inbox", |settings, cx| {
        let settings = inbox::Settings::read(settings)?;
        match cx.inbox {
            Some(store) => ready(inbox::InboxProvider::new(settings, store.clone())),
            None => Ok(Built::Checked),
        }
    }),
    ("meta", |settings, cx| {
        ready(meta::MetaProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
    ("google_ads", |settings, cx| {
        ready(google_ads::GoogleAdsProvider::from_settings(
            settings,
            cx.shared.client.clone(),
        )?)
    }),
];

/// The provider `name` with its `settings`.
pub fn provider(name: &str, settings: &toml::Table, cx: &Context<'_>) -> Result<Built, String> {
    match PROVIDERS.iter().find(|(n, _)| *n == name) {
        Some((_, make)) => make(settings, cx),
        None => {
            let known: Vec<String> = PROVIDERS.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(format!(
                "unknown provider `{name}` (known: {})",
                known.join(", ")
            ))
        }
    }
}

/// A send rate: at most `per_second` on average, in bursts of at most one
/// second's worth (at least one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
}

impl Rate {
    /// `"100/s"`, `"5000/m"`, `"20000/h"`.
    pub fn parse(text: &str) -> Option<Rate> {
        let (n, unit) = text.trim().split_once('/')?;
        let n: u32 = n.trim().parse().ok().filter(|&n| n > 0)?;
        let secs = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            _ => return None,
        };
        Some(Rate {
            per_second: f64::from(n) / secs,
        })
    }
}

/// How the engine drives one channel: its table's generic keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// `rate`: none, no limit.
    pub rate: Option<Rate>,
    /// `concurrency`: attempts in flight at once, at most.
    pub concurrency: usize,
    /// `max_attempts`: then `message.failed`.
    pub max_attempts: u32,
    /// `max_age`: wall time from the send's commit; no attempt starts after
    /// it, and none is scheduled past it.
    pub max_age: Duration,
    /// `backoff`: the wait after the first transient failure; each next
    /// one doubles, up to `backoff_max`, with jitter.
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// `timeout`: an attempt without an answer by then is a transient
    /// failure.
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            rate: None,
            concurrency: 8,
            max_attempts: 10,
            max_age: Duration::from_secs(86_400),
            backoff: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3_600),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The engine's keys of a channel's table; the rest is the provider's.
const POLICY_KEYS: &[&str] = &[
    "provider",
    "rate",
    "concurrency",
    "max_attempts",
    "max_age",
    "backoff",
    "backoff_max",
    "timeout",
];

/// One channel bound to its provider, or (its name `audiences.<table>`)
/// the audiences an audience provider syncs.
#[derive(Clone)]
pub struct Channel {
    pub name: String,
    /// The provider's name, as configured (`log` for a channel without a
    /// table).
    pub provider_name: String,
    pub provider: Arc<dyn Provider>,
    pub policy: Policy,
}

impl Channel {
    /// The lane of `[audiences.<table>]`'s syncs: its records' `channel`.
    pub fn audience_lane(table: &str) -> String {
        format!("{AUDIENCE_LANE_PREFIX}{table}")
    }

    /// Whether a record's `channel` is an audience table's lane.
    pub fn is_audience_lane(name: &str) -> bool {
        name.starts_with(AUDIENCE_LANE_PREFIX)
    }
}

/// What an audience table's lane is named with (`audiences.meta`).
const AUDIENCE_LANE_PREFIX: &str = "audiences.";

impl std::fmt::Debug for Channel {
    // Settings hold secrets: only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("provider", &self.provider_name)
            .field("policy", &self.policy)
            .finish()
    }
}

/// The config's delivery tables: `[channels.<name>]` (a channel's sends)
/// and `[audiences.<name>]` (`audience` actions, to an ad network).
#[derive(Clone, Copy)]
pub struct Tables<'a> {
    pub channels: &'a BTreeMap<String, toml::Table>,
    pub audiences: &'a BTreeMap<String, toml::Table>,
}

/// Every configured channel and audience table, its provider built and
/// its settings checked: what is wrong is named (`channels.email.url`,
/// `audiences.meta.access_token`), and no error repeats a setting's value
/// (it may be a secret). With `inbox` `None` (a check), a provider that
/// needs the inboxes has its settings checked and is left out.
pub fn channels(
    tables: Tables<'_>,
    shared: &Shared,
    inbox: Option<&Arc<dyn InboxStore>>,
) -> Result<Vec<Channel>, String> {
    let mut built = Vec::new();
    for (name, table) in tables.channels {
        let channel =
            channel(name, table, shared, inbox).map_err(|e| format!("`channels.{name}`: {e}"))?;
        if let Some(channel) = channel {
            if !channel.provider.audiences().is_empty() {
                return Err(format!(
                    "`channels.{name}`: provider `{}` syncs audiences: bind it in \
                     `[audiences.<name>]`",
                    channel.provider_name
                ));
            }
            built.push(channel);
        }
    }
    let mut synced: BTreeMap<String, &str> = BTreeMap::new();
    for (name, table) in tables.audiences {
        let lane = Channel::audience_lane(name);
        let channel =
            channel(&lane, table, shared, inbox).map_err(|e| format!("`audiences.{name}`: {e}"))?;
        let Some(channel) = channel else { continue };
        let audiences = channel.provider.audiences();
        if audiences.is_empty() {
            return Err(format!(
                "`audiences.{name}`: provider `{}` does not sync audiences (`meta`, \
                 `google_ads` do)",
                channel.provider_name
            ));
        }
        for audience in audiences {
            if let Some(other) = synced.insert(audience.clone(), name) {
                return Err(format!(
                    "`audiences.{name}`: audience `{audience}` is already synced by \
                     `audiences.{other}`; an audience is synced by one table"
                ));
            }
        }
        built.push(channel);
    }
    Ok(built)
}

fn channel(
    name: &str,
    table: &toml::Table,
    shared: &Shared,
    inbox: Option<&Arc<dyn InboxStore>>,
) -> Result<Option<Channel>, String> {
    let provider_name = match table.get("provider") {
        Some(toml::Value::String(p)) => p.clone(),
        Some(_) => return Err("`provider` must be a string".into()),
        None => return Err("`provider` is missing (`log`, `smtp`, `webhook`, ...)".into()),
    };
    let mut policy = policy(table)?;
    let settings: toml::Table = table
        .iter()
        .filter(|(k, _)| !POLICY_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cx = Context {
        channel: name,
        shared,
        inbox,
    };
    let provider = match provider(&provider_name, &settings, &cx)? {
        Built::Ready(provider) => provider,
        Built::Checked if inbox.is_none() => return Ok(None),
        Built::Checked => return Err(format!("provider `{provider_name}` was not built")),
    };
    if !table.contains_key("concurrency") {
        policy.concurrency = policy
            .concurrency
            .max(provider.batch_size().saturating_mul(2))
            .min(MAX_CONCURRENCY);
    }
    Ok(Some(Channel {
        name: name.to_string(),
        provider_name,
        provider,
        policy,
    }))
}

/// The most `concurrency` may be.
const MAX_CONCURRENCY: usize = 1_024;

/// The generic keys of a channel's table.
fn policy(table: &toml::Table) -> Result<Policy, String> {
    let mut policy = Policy::default();
    let text = |key: &str| -> Result<Option<&str>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let count = |key: &str, max: i64| -> Result<Option<i64>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if (1..=max).contains(n) => Ok(Some(*n)),
            Some(_) => Err(format!("`{key}` must be a whole number from 1 to {max}")),
        }
    };
    let span = |key: &str, example: &str| -> Result<Option<Duration>, String> {
        text(key)?
            .map(|t| {
                duration(t).ok_or_else(|| {
                    format!("`{key} = \"{t}\"` is not a duration above zero (write `{example}`)")
                })
            })
            .transpose()
    };
    if let Some(rate) = text("rate")? {
        policy.rate = Some(Rate::parse(rate).ok_or_else(|| {
            format!("`rate = \"{rate}\"` is not a rate (write `100/s`, `5000/m` or `20000/h`)")
        })?);
    }
    if let Some(n) = count("concurrency", MAX_CONCURRENCY as i64)? {
        policy.concurrency = n as usize;
    }
    if let Some(n) = count("max_attempts", 1_000)? {
        policy.max_attempts = n as u32;
    }
    if let Some(d) = span("max_age", "1d")? {
        policy.max_age = d;
    }
    if let Some(d) = span("backoff", "5s")? {
        policy.backoff = d;
    }
    if let Some(d) = span("backoff_max", "1h")? {
        policy.backoff_max = d;
    }
    if let Some(d) = span("timeout", "30s")? {
        policy.timeout = d;
    }
    if policy.backoff_max < policy.backoff {
        return Err("`backoff_max` is shorter than `backoff`".into());
    }
    Ok(policy)
}

/// `Retry-After`'s wait (RFC 9110 §10.2.3): delay-seconds, or an
/// HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`) counted from `now_ms`; a
/// date already past is no wait.
pub fn retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value)
        .ok()?
        .timestamp()
        .as_millisecond();
    Some(Duration::from_millis(
        u64::try_from(at - now_ms).unwrap_or(0),
    ))
}

/// The most bytes of an answer kept in an attempt's record.
pub const EXCERPT_BYTES: usize = 512;

/// The status and the start of an HTTP answer's body, for an attempt's
/// record (a body is read no further than [`EXCERPT_BYTES`]).
pub async fn answer_excerpt(mut response: reqwest::Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(EXCERPT_BYTES);
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {text}")
    }
}

/// A request that got no answer, in words, without its URL (a URL may hold
/// a secret).
pub fn request_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    // The source chain says why (reset, refused, TLS), without the URL.
    let mut why = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {why}")
    }
}

/// A provider's settings as its own struct: unknown keys refused, a wrong
/// type named by its key (serde's message names the key).
pub fn settings<T: serde::de::DeserializeOwned>(settings: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(settings.clone())).map_err(|e| {
        // toml's message for a table value ends with a newline and may
        // quote nothing of the value; keep its first line.
        e.to_string().lines().next().unwrap_or_default().to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> BTreeMap<String, toml::Table> {
        let parsed: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        parsed
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::Table(t) => (k, t),
                _ => panic!("a table"),
            })
            .collect()
    }

    fn shared() -> Shared {
        Shared::new().unwrap_or_else(|e| panic!("{e}"))
    }

    fn build(text: &str) -> Result<Vec<Channel>, String> {
        let channels_ = table(text);
        let none = BTreeMap::new();
        let tables = Tables {
            channels: &channels_,
            audiences: &none,
        };
        channels(tables, &shared(), None)
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn rates_read_per_second_minute_and_hour() {
        assert_eq!(Rate::parse("100/s"), Some(Rate { per_second: 100.0 }));
        assert_eq!(Rate::parse("6000/m"), Some(Rate { per_second: 100.0 }));
        assert_eq!(Rate::parse("3600/h"), Some(Rate { per_second: 1.0 }));
        for bad in ["0/s", "100", "100/d", "x/s", "-1/s", "1.5/s"] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_channel_reads_its_policy_and_hands_the_rest_to_its_provider() {
        let built = build(
            "[hooks]\nprovider = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nrate = \"50/s\"\n\
             concurrency = 2\nmax_attempts = 3\nbackoff = \"200ms\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let hooks = &built[0];
        assert_eq!(hooks.name, "hooks");
        assert_eq!(hooks.provider_name, "webhook");
        assert_eq!(hooks.policy.rate, Some(Rate { per_second: 50.0 }));
        assert_eq!(hooks.policy.concurrency, 2);
        assert_eq!(hooks.policy.max_attempts, 3);
        assert_eq!(hooks.policy.backoff, Duration::from_millis(200));
        assert_eq!(hooks.policy.max_age, Policy::default().max_age);
        assert!(hooks.provider.delivers());
        let debug = format!("{hooks:?}");
        assert!(!debug.contains("whsec"), "{debug}");
    }

    #[test]
    fn what_is_wrong_is_named_without_the_secret() {
        let cases = [
            (
                "[email]\nurl = \"smtp://x\"\n",
                "`channels.email`: `provider` is missing",
            ),
            ("[sms]\nprovider = \"twilo\"\n", "unknown provider `twilo`"),
            (
                "[hooks]\nprovider = \"webhook\"\nurl = \"http://h/\"\nsecret = \"whsec_%%%\"\n",
                "`secret`",
            ),
            (
                "[hooks]\nprovider = \"webhook\"\nurl = \"not a url\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
                "`url`",
            ),
            (
                "[hooks]\nprovider = \"webhook\"\nurl = \"http://h/\"\n",
                "`secret`",
            ),
            (
                "[hooks]\nprovider = \"log\"\nrate = \"fast\"\n",
                "`rate = \"fast\"`",
            ),
            (
                "[hooks]\nprovider = \"log\"\nconcurrency = 0\n",
                "`concurrency`",
            ),
            ("[hooks]\nprovider = \"log\"\nurl = \"x\"\n", "url"),
            (
                "[email]\nprovider = \"smtp\"\nurl = \"smtp://u:hunter2@127.0.0.1:25\"\n",
                "`from`",
            ),
            (
                "[email]\nprovider = \"smtp\"\nurl = \"http://u:hunter2@127.0.0.1:25\"\nfrom = \"a@b.c\"\n",
                "`url`",
            ),
        ];
        for (text, expected) in cases {
            let error = build(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(
                !error.contains("hunter2") && !error.contains("%%%"),
                "{error}"
            );
        }
    }
}
