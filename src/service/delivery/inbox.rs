//! The `inbox` provider of the `in_app` channel (SERVICE.md §6): a send is
//! kept, durably, in its customer's inbox until it expires, for the app to
//! read from `GET /v1/inbox/{user_key}` ([`crate::service::inbox_http`])
//! with the per-user token [`InboxKeys`] makes. Bounded: at most
//! `max_per_user` messages a customer (the oldest go first), and expired
//! ones are dropped as new ones are kept.
//!
//! Where the inboxes are kept is an [`InboxStore`]: one machine's
//! [`Storage`] (a table of its redb file), or, under `--nats`, a JetStream
//! bucket ([`crate::service::nats`]). Both keep them by the same rules,
//! here: [`make_room`], [`shown`], [`mark_record`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::tracking::MIN_SECRET_CHARS;
use super::{BoxFuture, Message, Outcome, Provider};
use crate::service::config::{self, duration_key};
use crate::service::core::Core;
use crate::service::core::wall_ms;
use crate::service::storage::{
    DeliveryBatch, InboxKeep, InboxMark, InboxRecord, Storage, StorageError,
};
use crate::value::format_timestamp;

/// How long a message stays when `ttl` is not set: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Messages kept a customer when `max_per_user` is not set.
pub const DEFAULT_MAX_PER_USER: usize = 100;
/// The most `max_per_user` may be: an inbox is read whole.
pub const MAX_PER_USER_LIMIT: usize = 1_000;

/// The provider's settings (`[channels.in_app]`, besides the engine's),
/// as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    /// How long a message stays, from its send's commit (`30d`).
    ttl: Option<String>,
    /// How many messages a customer's inbox keeps, at most.
    max_per_user: Option<usize>,
}

/// The provider's settings, checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// How long a message stays, from its send's commit.
    pub ttl: Duration,
    /// How many messages a customer's inbox keeps, at most.
    pub max_per_user: usize,
}

impl Settings {
    /// `ttl` and `max_per_user` from the channel's table (any other key is
    /// refused, by name).
    pub fn read(settings: &toml::Table) -> Result<Settings, String> {
        let written: Written = settings
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| format!("provider `inbox`: {}", e.message()))?;
        let ttl = match written.ttl.as_deref() {
            None => DEFAULT_TTL,
            Some(text) => duration_key("ttl", Some(text), 0, "30d")?,
        };
        let max_per_user = written.max_per_user.unwrap_or(DEFAULT_MAX_PER_USER);
        if !(1..=MAX_PER_USER_LIMIT).contains(&max_per_user) {
            return Err(format!(
                "`max_per_user = {max_per_user}`: an inbox keeps 1 to {MAX_PER_USER_LIMIT} \
                 messages"
            ));
        }
        Ok(Settings { ttl, max_per_user })
    }
}

/// Which of a customer's messages keeping one more drops, as indices into
/// `theirs` (`(sent, expires, message id)` of each message the customer's
/// inbox holds): the expired ones, then the oldest until at most
/// `max_per_user - 1` remain.
pub fn make_room(theirs: &[(i64, i64, &str)], max_per_user: usize, now_ms: i64) -> Vec<usize> {
    let mut oldest_first: Vec<usize> = (0..theirs.len()).collect();
    oldest_first.sort_by_key(|&i| (theirs[i].0, theirs[i].2));
    let live = theirs.iter().filter(|(_, exp, _)| *exp > now_ms).count();
    let mut over = (live + 1).saturating_sub(max_per_user.max(1));
    let mut dropped = Vec::new();
    for i in oldest_first {
        let expired = theirs[i].1 <= now_ms;
        if expired || over > 0 {
            if !expired {
                over -= 1;
            }
            dropped.push(i);
        }
    }
    dropped
}

/// Keeps `record` among `inbox`, its customer's messages, by the rules of
/// [`Storage::inbox_keep`]: nothing changes when a message of its id is
/// there already (false); else [`make_room`]'s messages leave and it is
/// added (true).
pub fn keep_in(
    inbox: &mut Vec<InboxRecord>,
    record: InboxRecord,
    max_per_user: usize,
    now_ms: i64,
) -> bool {
    if inbox.iter().any(|r| r.message_id == record.message_id) {
        return false;
    }
    let theirs: Vec<(i64, i64, &str)> = inbox
        .iter()
        .map(|r| (r.sent_ms, r.expires_ms, r.message_id.as_str()))
        .collect();
    let mut dropped = make_room(&theirs, max_per_user, now_ms);
    dropped.sort_unstable();
    for i in dropped.into_iter().rev() {
        inbox.remove(i);
    }
    inbox.push(record);
    true
}

/// What a customer's inbox shows at `now_ms`: its messages neither expired
/// nor dismissed, newest first.
pub fn shown(records: impl IntoIterator<Item = InboxRecord>, now_ms: i64) -> Vec<InboxRecord> {
    let mut out: Vec<InboxRecord> = records
        .into_iter()
        .filter(|r| r.expires_ms > now_ms && r.dismissed_ms.is_none())
        .collect();
    out.sort_by(|a, b| (b.sent_ms, &b.message_id).cmp(&(a.sent_ms, &a.message_id)));
    out
}

/// Marks `record` read or dismissed at `at_ms`: `None` when it has expired
/// (it cannot be marked), else whether this mark is new (the first one
/// counts; a repeat changes nothing).
pub fn mark_record(record: &mut InboxRecord, mark: InboxMark, at_ms: i64) -> Option<bool> {
    if record.expires_ms <= at_ms {
        return None;
    }
    let slot = match mark {
        InboxMark::Read => &mut record.read_ms,
        InboxMark::Dismissed => &mut record.dismissed_ms,
    };
    let new = slot.is_none();
    if new {
        *slot = Some(at_ms);
    }
    Some(new)
}

/// Where the customers' inboxes are kept, by the rules above: one
/// machine's [`Storage`], or `--nats`'s bucket.
pub trait InboxStore: Send + Sync + 'static {
    /// Keeps `record` in its customer's inbox, durably ([`keep_in`]'s
    /// rules); whether it was kept now (false: it was there already).
    fn keep(
        &self,
        record: InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<bool, StorageError>>;
    /// What the customer's inbox [`shown`] at `now_ms`.
    fn list<'a>(
        &'a self,
        user_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<InboxRecord>, StorageError>>;
    /// Marks a message ([`mark_record`]); the message, and whether this
    /// mark is new, unless it is absent or expired.
    fn mark<'a>(
        &'a self,
        user_key: &'a str,
        message_id: &'a str,
        mark: InboxMark,
        at_ms: i64,
    ) -> BoxFuture<'a, Result<Option<(InboxRecord, bool)>, StorageError>>;
}

/// One machine's inboxes, each keep a transaction of its own: for a data
/// directory no service runs on (`journey serve` keeps through its writer,
/// [`ServedInbox`]). Written off the async workers (a durable write
/// blocks).
impl InboxStore for Arc<dyn Storage> {
    fn keep(
        &self,
        record: InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<bool, StorageError>> {
        let storage = self.clone();
        blocking(move || storage.inbox_keep(&record, max_per_user, now_ms))
    }

    fn list<'a>(
        &'a self,
        user_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<InboxRecord>, StorageError>> {
        let (storage, user_key) = (self.clone(), user_key.to_string());
        blocking(move || storage.inbox_list(&user_key, now_ms))
    }

    fn mark<'a>(
        &'a self,
        user_key: &'a str,
        message_id: &'a str,
        mark: InboxMark,
        at_ms: i64,
    ) -> BoxFuture<'a, Result<Option<(InboxRecord, bool)>, StorageError>> {
        let storage = self.clone();
        let (user_key, message_id) = (user_key.to_string(), message_id.to_string());
        blocking(move || storage.inbox_mark(&user_key, &message_id, mark, at_ms))
    }
}

/// One machine's inboxes while `journey serve` runs: a send is kept in
/// the service writer's next transaction, with the journal and delivery's
/// records (one stream of fsyncs on the disk, and no write lock held by
/// delivery's idle-priority threads that the writer would wait for);
/// lists and marks are the storage's own.
pub struct ServedInbox {
    storage: Arc<dyn Storage>,
    core: OnceLock<Arc<Core>>,
}

impl ServedInbox {
    pub fn new(storage: Arc<dyn Storage>) -> Arc<ServedInbox> {
        Arc::new(ServedInbox {
            storage,
            core: OnceLock::new(),
        })
    }

    /// Keeps go through `core`'s writer from now on (before, they fail:
    /// delivery starts after the core).
    pub fn serve(&self, core: Arc<Core>) {
        let _ = self.core.set(core);
    }
}

impl InboxStore for ServedInbox {
    fn keep(
        &self,
        record: InboxRecord,
        max_per_user: usize,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<bool, StorageError>> {
        Box::pin(async move {
            let Some(core) = self.core.get() else {
                return Err(StorageError("the service has not started".into()));
            };
            // Delivery attempts a send once at a time, so a message found
            // here was kept by an attempt before a crash or a stop.
            let (storage, user, id) = (
                self.storage.clone(),
                record.user_key.clone(),
                record.message_id.clone(),
            );
            if blocking(move || storage.inbox_has(&user, &id)).await? {
                return Ok(false);
            }
            let keep = InboxKeep {
                record,
                max_per_user,
                now_ms,
            };
            core.record_deliveries(DeliveryBatch {
                inbox: vec![keep],
                ..DeliveryBatch::default()
            })
            .await
            .map_err(StorageError)?;
            Ok(true)
        })
    }

    fn list<'a>(
        &'a self,
        user_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<InboxRecord>, StorageError>> {
        self.storage.list(user_key, now_ms)
    }

    fn mark<'a>(
        &'a self,
        user_key: &'a str,
        message_id: &'a str,
        mark: InboxMark,
        at_ms: i64,
    ) -> BoxFuture<'a, Result<Option<(InboxRecord, bool)>, StorageError>> {
        self.storage.mark(user_key, message_id, mark, at_ms)
    }
}

/// `work` on tokio's blocking threads.
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> BoxFuture<'static, Result<T, StorageError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|e| Err(StorageError(format!("the inbox's storage stopped: {e}"))))
    })
}

/// What the inbox keeps of a message: the rendered parts of its template
/// and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub journey: String,
    pub template: String,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default)]
    pub vars: Map<String, Value>,
}

impl Content {
    /// The content a record holds; `None` when it does not read (a record
    /// of another build).
    pub fn of(record: &InboxRecord) -> Option<Content> {
        serde_json::from_slice(&record.content).ok()
    }
}

/// Keeps `in_app` sends in the customers' inboxes.
#[derive(Clone)]
pub struct InboxProvider {
    store: Arc<dyn InboxStore>,
    ttl_ms: i64,
    max_per_user: usize,
}

impl InboxProvider {
    /// The provider over the deployment's inboxes, with `ttl` and
    /// `max_per_user` from `settings` (any other key is refused).
    pub fn from_settings(
        settings: &toml::Table,
        store: Arc<dyn InboxStore>,
    ) -> Result<InboxProvider, String> {
        Ok(InboxProvider::new(Settings::read(settings)?, store))
    }

    /// The provider over the deployment's inboxes.
    pub fn new(settings: Settings, store: Arc<dyn InboxStore>) -> InboxProvider {
        InboxProvider {
            store,
            ttl_ms: i64::try_from(settings.ttl.as_millis()).unwrap_or(i64::MAX),
            max_per_user: settings.max_per_user,
        }
    }

    /// How long `message` stays: the send's own `ttl` (a `with { ttl:
    /// "7d" }` value, for a message whose template should not outlive its
    /// offer), else the channel's.
    fn ttl_ms(&self, message: &Message) -> Result<i64, String> {
        match message.vars.get("ttl") {
            None | Some(Value::Null) => Ok(self.ttl_ms),
            Some(Value::String(text)) => config::duration(text)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .ok_or_else(|| {
                    format!("the send's `ttl = \"{text}\"` is not a duration above zero (`7d`)")
                }),
            Some(other) => Err(format!(
                "the send's `ttl` is {other}, not a duration (`ttl: \"7d\"`)"
            )),
        }
    }

    /// The record `message` is kept as, delivered at `now_ms`: it expires
    /// `ttl` after its send was committed.
    fn record(&self, message: &Message, now_ms: i64, ttl_ms: i64) -> InboxRecord {
        let content = Content {
            journey: message.journey.clone(),
            template: message.template.clone(),
            channel: message.channel.clone(),
            subject: message.subject.clone(),
            body: message.body.clone(),
            html: message.html.clone(),
            vars: message.vars.clone(),
        };
        InboxRecord {
            user_key: message.user_id.clone(),
            message_id: message.message_id.clone(),
            sent_ms: now_ms,
            expires_ms: message.committed_ms.saturating_add(ttl_ms),
            read_ms: None,
            dismissed_ms: None,
            // Strings and a JSON map always serialise.
            content: serde_json::to_vec(&content).unwrap_or_default(),
        }
    }

    /// Keeps `message` at `now_ms`, durably.
    pub async fn keep(&self, message: &Message, now_ms: i64) -> Outcome {
        let ttl_ms = match self.ttl_ms(message) {
            Ok(ttl_ms) => ttl_ms,
            Err(error) => return Outcome::Fail { error },
        };
        let record = self.record(message, now_ms, ttl_ms);
        if record.expires_ms <= now_ms {
            return Outcome::Fail {
                error: format!(
                    "expired at {} before it could be kept",
                    format_timestamp(record.expires_ms)
                ),
            };
        }
        let expires_ms = record.expires_ms;
        match self.store.keep(record, self.max_per_user, now_ms).await {
            Ok(true) => Outcome::Sent {
                response: format!("kept in the inbox until {}", format_timestamp(expires_ms)),
            },
            Ok(false) => Outcome::Sent {
                response: "already in the inbox".into(),
            },
            Err(e) => Outcome::Retry {
                error: format!("the inbox could not be written: {e}"),
                after: None,
            },
        }
    }
}

impl Provider for InboxProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.keep(message, wall_ms()))
    }
}

/// The JSON `GET /v1/inbox/{user_key}` answers for one message.
pub fn view(record: &InboxRecord) -> Value {
    let content = Content::of(record);
    let mut out = json!({
        "message_id": record.message_id,
        "sent_at": format_timestamp(record.sent_ms),
        "expires_at": format_timestamp(record.expires_ms),
        "read_at": record.read_ms.map(format_timestamp),
    });
    if let (Some(content), Value::Object(map)) = (content, &mut out)
        && let Ok(Value::Object(parts)) = serde_json::to_value(content)
    {
        map.extend(parts);
    }
    out
}

/// The per-user tokens of `[inbox]`: `hex(HMAC-SHA256(secret, user_key))`,
/// which the embedding app computes for its signed-in customer.
#[derive(Clone)]
pub struct InboxKeys {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for InboxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboxKeys { secret: \"hidden\" }")
    }
}

impl InboxKeys {
    pub fn new(config: &config::Inbox) -> Result<InboxKeys, String> {
        if config.secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "`inbox.secret` must be at least {MIN_SECRET_CHARS} characters (make one with \
                 `openssl rand -hex 32`)"
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(config.secret.as_bytes())
            .map_err(|e| format!("`inbox.secret` cannot key HMAC-SHA256: {e}"))?;
        Ok(InboxKeys { mac })
    }

    /// The token of `user_key`, as lowercase hex.
    pub fn token(&self, user_key: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(user_key.as_bytes());
        crate::compile::artifact::hex(&mac.finalize().into_bytes())
    }

    /// Whether `given` is `user_key`'s token (in time that does not depend
    /// on where it differs).
    pub fn verify(&self, user_key: &str, given: &str) -> bool {
        crate::service::http::constant_time_eq(&self.token(user_key), given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::storage::{InboxMark, RedbStorage};

    fn temp_storage(name: &str) -> (Arc<RedbStorage>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("journey-inbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let storage = RedbStorage::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(storage), dir)
    }

    fn message(user: &str, id: &str, committed_ms: i64) -> Message {
        Message {
            message_id: id.into(),
            user_id: user.into(),
            journey: "welcome".into(),
            template: "hello".into(),
            channel: "in_app".into(),
            to: Value::Null,
            subject: Some("Hi".into()),
            body: Some(format!("message {id}")),
            html: None,
            vars: Map::new(),
            line: String::new(),
            attempt: 1,
            committed_ms,
        }
    }

    fn store(storage: &Arc<RedbStorage>) -> Arc<dyn InboxStore> {
        let storage: Arc<dyn Storage> = storage.clone();
        Arc::new(storage)
    }

    fn provider(storage: &Arc<RedbStorage>, settings: &str) -> InboxProvider {
        let table: toml::Table = toml::from_str(settings).unwrap_or_else(|e| panic!("{e}"));
        InboxProvider::from_settings(&table, store(storage)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(storage: &RedbStorage, user: &str, now: i64) -> Vec<String> {
        storage
            .inbox_list(user, now)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|r| r.message_id)
            .collect()
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn the_per_user_token_is_standard_hmac_sha256_in_hex() {
        // RFC 4231, test case 2: the HMAC the tokens are made with.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap_or_else(|e| panic!("{e}"));
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            crate::compile::artifact::hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // `printf %s ana | openssl dgst -sha256 -hmac 0123456789abcdef-inbox`
        let keys = InboxKeys::new(&config::Inbox {
            secret: "0123456789abcdef-inbox".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let token = keys.token("ana");
        assert_eq!(
            token,
            "c2e546851f6066dc24cd65a76a23bdeb0884337b2aa98617286d9ac74ba08413"
        );
        assert!(keys.verify("ana", &token));
        assert!(!keys.verify("bob", &token));
        assert!(!keys.verify("ana", &token[1..]));
        assert!(!keys.verify("ana", &token.to_uppercase()));
        assert!(!format!("{keys:?}").contains("0123"));
        let short = InboxKeys::new(&config::Inbox {
            secret: "short".into(),
        });
        assert!(short.err().is_some_and(|e| e.contains("inbox.secret")));
    }

    #[tokio::test]
    async fn messages_are_kept_once_listed_newest_first_and_expire() {
        let (storage, dir) = temp_storage("keep");
        let inbox = provider(&storage, "ttl = \"2h\"");
        let t0 = 1_800_000_000_000;
        let sent = inbox.keep(&message("ana", "m1", t0), t0).await;
        assert!(matches!(sent, Outcome::Sent { .. }), "{sent:?}");
        let again = inbox.keep(&message("ana", "m1", t0), t0 + 10).await;
        assert_eq!(
            again,
            Outcome::Sent {
                response: "already in the inbox".into()
            }
        );
        inbox
            .keep(&message("ana", "m2", t0 + HOUR), t0 + HOUR)
            .await;
        inbox
            .keep(&message("anabel", "m3", t0 + HOUR), t0 + HOUR)
            .await;
        assert_eq!(ids(&storage, "ana", t0 + HOUR), vec!["m2", "m1"]);
        assert_eq!(ids(&storage, "anabel", t0 + HOUR), vec!["m3"]);
        // m1 expires two hours after its commit.
        assert_eq!(ids(&storage, "ana", t0 + 2 * HOUR), vec!["m2"]);
        let late = inbox.keep(&message("ana", "m4", t0), t0 + 3 * HOUR).await;
        assert!(matches!(late, Outcome::Fail { .. }), "{late:?}");

        let records = storage.inbox_list("ana", t0 + HOUR).unwrap_or_default();
        let shown = view(&records[0]);
        assert_eq!(shown["message_id"], "m2");
        assert_eq!(shown["body"], "message m2");
        assert_eq!(shown["subject"], "Hi");
        assert_eq!(shown["journey"], "welcome");
        assert_eq!(shown["read_at"], Value::Null);
        assert_eq!(shown["expires_at"], format_timestamp(t0 + 3 * HOUR));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_send_may_carry_its_own_ttl() {
        let (storage, dir) = temp_storage("ttl");
        let inbox = provider(&storage, "ttl = \"30d\"");
        let t0 = 1_800_000_000_000;
        let mut short = message("ana", "m1", t0);
        short.vars.insert("ttl".into(), Value::from("2h"));
        assert!(matches!(inbox.keep(&short, t0).await, Outcome::Sent { .. }));
        let kept = storage.inbox_list("ana", t0).unwrap_or_default();
        assert_eq!(kept[0].expires_ms, t0 + 2 * HOUR);
        for bad in [Value::from("soon"), Value::from(7)] {
            let mut wrong = message("ana", "m2", t0);
            wrong.vars.insert("ttl".into(), bad);
            match inbox.keep(&wrong, t0).await {
                Outcome::Fail { error } => assert!(error.contains("`ttl"), "{error}"),
                other => panic!("{other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_inbox_holds_at_most_max_per_user_and_the_sweep_drops_expired_ones() {
        let (storage, dir) = temp_storage("cap");
        let inbox = provider(&storage, "ttl = \"1h\"\nmax_per_user = 3");
        let t0 = 1_800_000_000_000;
        for i in 0..5 {
            inbox
                .keep(&message("ana", &format!("m{i}"), t0 + i), t0 + i)
                .await;
        }
        assert_eq!(ids(&storage, "ana", t0 + 10), vec!["m4", "m3", "m2"]);
        // bob's expired messages leave with anyone's next delivery.
        inbox.keep(&message("bob", "b1", t0), t0).await;
        inbox
            .keep(&message("cy", "c1", t0 + 2 * HOUR), t0 + 2 * HOUR)
            .await;
        let txn_rows = |user: &str| storage.inbox_list(user, i64::MIN).unwrap_or_default().len();
        assert_eq!(txn_rows("bob"), 0, "swept");
        assert_eq!(txn_rows("ana"), 0, "swept");
        assert_eq!(txn_rows("cy"), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn read_and_dismiss_are_recorded_once_and_a_dismissed_message_is_not_listed() {
        let (storage, dir) = temp_storage("mark");
        let inbox = provider(&storage, "");
        let t0 = 1_800_000_000_000;
        inbox.keep(&message("ana", "m1", t0), t0).await;
        let first = storage.inbox_mark("ana", "m1", InboxMark::Read, t0 + 5);
        let (record, new) = first.ok().flatten().unwrap_or_else(|| panic!("found"));
        assert!(new);
        assert_eq!(record.read_ms, Some(t0 + 5));
        let again = storage.inbox_mark("ana", "m1", InboxMark::Read, t0 + 9);
        let (record, new) = again.ok().flatten().unwrap_or_else(|| panic!("found"));
        assert!(!new);
        assert_eq!(record.read_ms, Some(t0 + 5), "the first read counts");
        assert_eq!(ids(&storage, "ana", t0 + 10), vec!["m1"]);
        let dismissed = storage.inbox_mark("ana", "m1", InboxMark::Dismissed, t0 + 11);
        assert!(dismissed.ok().flatten().is_some_and(|(_, new)| new));
        assert_eq!(ids(&storage, "ana", t0 + 12), Vec::<String>::new());
        let nobody = storage.inbox_mark("bob", "m1", InboxMark::Read, t0);
        assert!(nobody.ok().flatten().is_none());
        let expired = storage.inbox_mark("ana", "m1", InboxMark::Read, t0 + 31 * 86_400_000);
        assert!(expired.ok().flatten().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn record(user: &str, id: &str, sent_ms: i64, expires_ms: i64) -> InboxRecord {
        InboxRecord {
            user_key: user.into(),
            message_id: id.into(),
            sent_ms,
            expires_ms,
            read_ms: None,
            dismissed_ms: None,
            content: Vec::new(),
        }
    }

    #[test]
    fn the_rules_drop_the_expired_then_the_oldest_and_keep_an_id_once() {
        let t0 = 1_800_000_000_000;
        let mut inbox = Vec::new();
        // m0 expires first; the rest live an hour.
        assert!(keep_in(&mut inbox, record("ana", "m0", t0, t0 + 5), 3, t0));
        for i in 1..=3 {
            assert!(keep_in(
                &mut inbox,
                record("ana", &format!("m{i}"), t0 + i, t0 + HOUR),
                3,
                t0 + i
            ));
        }
        let ids = |inbox: &Vec<InboxRecord>, now| -> Vec<String> {
            shown(inbox.clone(), now)
                .into_iter()
                .map(|r| r.message_id)
                .collect()
        };
        assert_eq!(
            ids(&inbox, t0 + 4),
            vec!["m3", "m2", "m1"],
            "the oldest made room"
        );
        assert!(!keep_in(
            &mut inbox,
            record("ana", "m3", t0 + 9, t0 + HOUR),
            3,
            t0 + 9
        ));
        assert_eq!(inbox.len(), 3, "a redelivered send is kept once");
        // An expired one goes before any live one.
        inbox[0].expires_ms = t0 + 6;
        assert!(keep_in(
            &mut inbox,
            record("ana", "m4", t0 + 10, t0 + HOUR),
            3,
            t0 + 10
        ));
        assert_eq!(ids(&inbox, t0 + 10), vec!["m4", "m3", "m2"]);
        assert_eq!(inbox.len(), 3);

        let mut m = record("ana", "m9", t0, t0 + 10);
        assert_eq!(mark_record(&mut m, InboxMark::Read, t0 + 1), Some(true));
        assert_eq!(mark_record(&mut m, InboxMark::Read, t0 + 2), Some(false));
        assert_eq!(m.read_ms, Some(t0 + 1), "the first read counts");
        assert_eq!(
            mark_record(&mut m, InboxMark::Dismissed, t0 + 3),
            Some(true)
        );
        assert_eq!(shown(vec![m.clone()], t0 + 4), Vec::new(), "dismissed");
        assert_eq!(
            mark_record(&mut m, InboxMark::Read, t0 + 10),
            None,
            "expired"
        );
    }

    #[test]
    fn settings_are_checked() {
        let (storage, dir) = temp_storage("settings");
        let parse = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            InboxProvider::from_settings(&table, store(&storage)).err()
        };
        assert_eq!(parse("ttl = \"7d\"\nmax_per_user = 20"), None);
        assert!(parse("ttl = \"soon\"").is_some_and(|e| e.contains("ttl")));
        assert!(parse("max_per_user = 0").is_some_and(|e| e.contains("max_per_user")));
        assert!(parse("max_per_user = 5000").is_some_and(|e| e.contains("1000")));
        assert!(parse("tll = \"1d\"").is_some_and(|e| e.contains("tll")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
