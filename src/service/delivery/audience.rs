//! What the audience providers ([`super::meta`], [`super::google_ads`])
//! share: the customer's email and phone as their project reads them, the
//! normalising and hashing the ad networks ask for, the `audiences` table
//! that binds a journey's audience to the network's list, and the
//! [`Batcher`] that gathers single syncs into one request per batch.
//!
//! An `audience` action (`add to audience cart_retargeting`) names a
//! customer and an audience; the engine gives it to the table that syncs
//! that audience as one attempt ([`super::Message`], `vars.op` and
//! `vars.audience`, `to` = [`contact`]), with the same retry, backoff and
//! rate as a send. The provider gathers attempts into batches — one per
//! list and operation, sent when `batch_size` are waiting or `batch_wait`
//! after the first — and each attempt gets its batch's outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{BoxFuture, Message, Outcome, Provider};
use crate::compile::artifact::sha256_hex;
use crate::runtime::Runtime;
use crate::runtime::eval::Scope;
use crate::service::config::duration_key;
use crate::service::core::Core;
use crate::service::partitions::partition_of;

/// The project's channels whose addresses an audience sync reads.
const EMAIL_CHANNEL: &str = "email";
const PHONE_CHANNEL: &str = "sms";

/// The customer's email and phone, as their partition holds them now:
/// [`contact_in`] of the partition's runtime, asked between entries.
pub async fn contact(core: &Core, user_key: &str) -> Result<Value, String> {
    let partition = partition_of(user_key, core.partitions());
    let key = user_key.to_string();
    core.inspect_partition(partition, move |runtime| contact_in(runtime, &key))
        .await
        .map_err(|e| match e {
            crate::service::core::IngestError::Overloaded => "the service is busy".to_string(),
            crate::service::core::IngestError::Unavailable(why) => why,
        })
}

/// The customer's email and phone as `runtime` (their partition's) holds
/// them: `{"email": ..., "phone": ...}`, each the address the project's
/// `email` and `sms` channels read (`profile.email` and `profile.phone`
/// unless a `channel` declaration says otherwise), `null` when absent.
/// One machine asks it of its worker ([`contact`]), `--nats` of the
/// partition's owner.
pub fn contact_in(runtime: &Runtime, user_key: &str) -> Value {
    let program = runtime.program();
    let store = runtime.store();
    let Some(id) = crate::runtime::Store::find_user(store, user_key) else {
        return json!({"email": null, "phone": null});
    };
    let state = crate::runtime::Store::user(store, id);
    let scope = Scope {
        profile: &state.profile,
        event: &[],
        instance: None,
        now: runtime.now().unwrap_or(0),
        channels: &program.channels,
        unsubscribed: None,
        zone: Default::default(),
    };
    let address = |name: &str| {
        let expr = program
            .channels
            .iter()
            .find(|c| &*c.name == name)
            .and_then(|c| c.address.as_ref());
        match expr.map(|e| scope.value(e, &mut 0)) {
            Some(crate::value::Value::String(s)) if !s.trim().is_empty() => {
                Value::from(s.to_string())
            }
            _ => Value::Null,
        }
    };
    json!({"email": address(EMAIL_CHANNEL), "phone": address(PHONE_CHANNEL)})
}

/// An email as the ad networks hash it: trimmed and lowercased.
pub fn normalise_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    (email.contains('@') && !email.contains(char::is_whitespace)).then_some(email)
}

/// A phone number in E.164 (`+` and 8 to 15 digits, the country code
/// first): separators dropped, an international `00` read as `+`. A number
/// without its country code cannot be told from one with it; the profile
/// must hold numbers with theirs.
pub fn normalise_phone(phone: &str) -> Option<String> {
    let phone = phone.trim();
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = if phone.starts_with('+') {
        digits
    } else {
        digits.strip_prefix("00").unwrap_or(&digits).to_string()
    };
    (allowed && (8..=15).contains(&digits.len()) && !digits.starts_with('0'))
        .then(|| format!("+{digits}"))
}

/// Lowercase hex SHA-256 of `text`, as both networks want their hashes.
pub fn hash(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// One customer's identifiers, normalised and hashed.
#[derive(Clone, Debug, PartialEq)]
pub struct Hashed {
    pub email: Option<String>,
    /// Of the E.164 number (`+` included).
    pub phone_e164: Option<String>,
    /// Of the digits only (Meta's form: the country code, no `+`).
    pub phone_digits: Option<String>,
}

/// Whether an attempt adds or removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Add,
    Remove,
}

/// What an audience attempt asks: the network's list, the operation, and
/// the customer's hashed identifiers; or the outcome it already has.
pub fn read_attempt(
    message: &Message,
    lists: &BTreeMap<String, String>,
) -> Result<(String, Op, Hashed), Outcome> {
    let fail = |error: String| Outcome::Fail { error };
    let audience = message
        .vars
        .get("audience")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let list = lists.get(audience).ok_or_else(|| {
        fail(format!(
            "audience `{audience}` is not in this table's `audiences`"
        ))
    })?;
    let op = match message.vars.get("op").and_then(Value::as_str) {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        other => return Err(fail(format!("not an audience operation: {other:?}"))),
    };
    let text = |key: &str| message.to.get(key).and_then(Value::as_str);
    let email = text("email").and_then(normalise_email);
    let phone = text("phone").and_then(normalise_phone);
    if email.is_none() && phone.is_none() {
        return Err(fail(
            "the customer has no email or phone number (in E.164) to match on".into(),
        ));
    }
    let hashed = Hashed {
        email: email.as_deref().map(hash),
        phone_digits: phone.as_deref().map(|p| hash(&p[1..])),
        phone_e164: phone.as_deref().map(hash),
    };
    Ok((list.clone(), op, hashed))
}

/// An audience provider (`meta`, `google_ads`): the lists it syncs and
/// the batcher that sends them through the network's own request. What
/// differs between networks is only that request ([`SendBatch`]) and the
/// settings it reads.
pub struct AudienceProvider {
    lists: BTreeMap<String, String>,
    batch_size: usize,
    batcher: Batcher,
}

impl AudienceProvider {
    pub fn new(common: Common, send: SendBatch) -> AudienceProvider {
        AudienceProvider {
            batcher: Batcher::new(common.batch_size, common.batch_wait, send),
            lists: common.lists,
            batch_size: common.batch_size,
        }
    }
}

impl Provider for AudienceProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match read_attempt(message, &self.lists) {
                Ok((list, op, user)) => self.batcher.submit(list, op, user).await,
                Err(outcome) => outcome,
            }
        })
    }

    fn audiences(&self) -> Vec<String> {
        self.lists.keys().cloned().collect()
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// The settings every audience provider reads besides its own:
/// `audiences` (the journeys' audience names to the network's list ids),
/// `batch_size` and `batch_wait`.
pub struct Common {
    pub lists: BTreeMap<String, String>,
    pub batch_size: usize,
    pub batch_wait: Duration,
}

impl Common {
    /// Checks them: at least one audience, each list id `id_ok`, a batch
    /// of 1 to `max_batch`.
    pub fn read(
        lists: Option<BTreeMap<String, String>>,
        batch_size: Option<usize>,
        batch_wait: Option<&str>,
        max_batch: usize,
        id_ok: fn(&str) -> bool,
    ) -> Result<Common, String> {
        let lists = lists.unwrap_or_default();
        if lists.is_empty() {
            return Err(
                "`audiences` is missing: name the journeys' audiences and their lists, \
                 `audiences = { cart_retargeting = \"<list id>\" }`"
                    .into(),
            );
        }
        if let Some((name, _)) = lists.iter().find(|(_, id)| !id_ok(id)) {
            return Err(format!(
                "`audiences.{name}` is not a list id (digits, as the network shows it)"
            ));
        }
        let batch_size = batch_size.unwrap_or(DEFAULT_BATCH.min(max_batch));
        if !(1..=max_batch).contains(&batch_size) {
            return Err(format!("`batch_size` must be from 1 to {max_batch}"));
        }
        let batch_wait = duration_key("batch_wait", batch_wait, 1, "1s")?;
        Ok(Common {
            lists,
            batch_size,
            batch_wait,
        })
    }
}

/// Customers a request carries unless `batch_size` says otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// Whether `id` is all digits (an ad network's numeric id).
pub fn digits(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// One batch's worth of attempts of one list and operation.
pub struct Batch {
    pub list: String,
    pub op: Op,
    pub users: Vec<Hashed>,
}

/// What sends a batch: one request (or a few) for all its customers.
pub type SendBatch = Arc<dyn Fn(Batch) -> BoxFuture<'static, Outcome> + Send + Sync>;

type Waiting = (Hashed, oneshot::Sender<Outcome>);

/// Gathers attempts into batches per list and operation; a batch goes
/// when it holds `size` attempts, or `wait` after its first. One task
/// (started with the first attempt, on the engine's runtime) gathers;
/// each batch is sent on a task of its own, so batches of different lists
/// go at once. An attempt whose caller stopped waiting (its timeout) is
/// still sent with its batch: adding or removing twice changes nothing.
pub struct Batcher {
    size: usize,
    wait: Duration,
    send: SendBatch,
    queue: OnceLock<mpsc::UnboundedSender<(String, Op, Waiting)>>,
}

impl Batcher {
    pub fn new(size: usize, wait: Duration, send: SendBatch) -> Batcher {
        Batcher {
            size,
            wait,
            send,
            queue: OnceLock::new(),
        }
    }

    /// The outcome of the batch this attempt goes out in.
    pub async fn submit(&self, list: String, op: Op, user: Hashed) -> Outcome {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(gather(rx, self.size, self.wait, self.send.clone()));
            tx
        });
        let (answer, answered) = oneshot::channel();
        if queue.send((list, op, (user, answer))).is_err() {
            return Outcome::Retry {
                error: "the audience batcher has stopped".into(),
                after: None,
            };
        }
        answered.await.unwrap_or_else(|_| Outcome::Retry {
            error: "the audience request was dropped".into(),
            after: None,
        })
    }
}

/// The gathering task: batches by list and operation, each sent when full
/// or when its first attempt has waited `wait`.
async fn gather(
    mut queue: mpsc::UnboundedReceiver<(String, Op, Waiting)>,
    size: usize,
    wait: Duration,
    send: SendBatch,
) {
    let mut open: FxHashMap<(String, Op), (tokio::time::Instant, Vec<Waiting>)> =
        FxHashMap::default();
    loop {
        let due = open.values().map(|(at, _)| *at).min();
        let next = match due {
            Some(at) => tokio::select! {
                next = queue.recv() => next.map(Some),
                _ = tokio::time::sleep_until(at) => Some(None),
            },
            None => queue.recv().await.map(Some),
        };
        let Some(next) = next else {
            // The provider is gone: what is open still goes.
            for ((list, op), (_, waiting)) in open.drain() {
                flush(&send, list, op, waiting);
            }
            return;
        };
        if let Some((list, op, waiting)) = next {
            let key = (list, op);
            let entry = open
                .entry(key.clone())
                .or_insert_with(|| (tokio::time::Instant::now() + wait, Vec::new()));
            entry.1.push(waiting);
            if entry.1.len() >= size
                && let Some((_, waiting)) = open.remove(&key)
            {
                flush(&send, key.0, key.1, waiting);
            }
        }
        let now = tokio::time::Instant::now();
        let ripe: Vec<(String, Op)> = open
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ripe {
            if let Some((_, waiting)) = open.remove(&key) {
                flush(&send, key.0, key.1, waiting);
            }
        }
    }
}

fn flush(send: &SendBatch, list: String, op: Op, waiting: Vec<Waiting>) {
    let (users, answers): (Vec<Hashed>, Vec<oneshot::Sender<Outcome>>) =
        waiting.into_iter().unzip();
    let request = send(Batch { list, op, users });
    tokio::spawn(async move {
        let outcome = request.await;
        for answer in answers {
            let _ = answer.send(outcome.clone());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn emails_and_phones_are_normalised_as_the_networks_ask() {
        assert_eq!(
            normalise_email("  Ana.Silva@Example.COM "),
            Some("ana.silva@example.com".into())
        );
        assert_eq!(normalise_email("not an email"), None);
        assert_eq!(
            normalise_phone("+1 (555) 010-0123"),
            Some("+15550100123".into())
        );
        assert_eq!(
            normalise_phone("0044 20 7946 0958"),
            Some("+442079460958".into())
        );
        assert_eq!(normalise_phone("+44 20 7946 0958 ext"), None);
        assert_eq!(normalise_phone("12"), None);
        // `python3 -c "import hashlib; print(hashlib.sha256(b'test@example.com').hexdigest())"`
        assert_eq!(
            hash("test@example.com"),
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
    }

    fn message(op: &str, to: Value) -> Message {
        let mut vars = serde_json::Map::new();
        vars.insert("op".into(), Value::from(op));
        vars.insert("audience".into(), Value::from("cart"));
        Message {
            message_id: "audience:cart:add:1".into(),
            user_id: "ana".into(),
            journey: "j".into(),
            template: "cart".into(),
            channel: "audiences.meta".into(),
            to,
            subject: None,
            body: None,
            html: None,
            vars,
            line: String::new(),
            attempt: 1,
            committed_ms: 0,
        }
    }

    #[test]
    fn an_attempt_reads_its_list_operation_and_hashes() {
        let lists: BTreeMap<String, String> = [("cart".to_string(), "123".to_string())].into();
        let to = json!({"email": " Test@Example.com", "phone": "+1 555 010 0123"});
        let (list, op, hashed) = read_attempt(&message("add", to), &lists).unwrap();
        assert_eq!((list.as_str(), op), ("123", Op::Add));
        assert_eq!(
            hashed.email.as_deref(),
            Some(hash("test@example.com").as_str())
        );
        assert_eq!(hashed.phone_e164, Some(hash("+15550100123")));
        assert_eq!(hashed.phone_digits, Some(hash("15550100123")));
        let none = json!({"email": null, "phone": null});
        assert!(matches!(
            read_attempt(&message("remove", none), &lists),
            Err(Outcome::Fail { .. })
        ));
        let mut other = message("add", json!({"email": "a@b.c"}));
        other
            .vars
            .insert("audience".into(), Value::from("elsewhere"));
        assert!(matches!(
            read_attempt(&other, &lists),
            Err(Outcome::Fail { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn batches_go_when_full_or_after_the_wait() {
        let sent: Arc<Mutex<Vec<(String, Op, usize)>>> = Arc::default();
        let seen = sent.clone();
        let send: SendBatch = Arc::new(move |batch: Batch| -> BoxFuture<'static, Outcome> {
            seen.lock()
                .unwrap()
                .push((batch.list.clone(), batch.op, batch.users.len()));
            Box::pin(async {
                Outcome::Sent {
                    response: "ok".into(),
                }
            })
        });
        let batcher = Arc::new(Batcher::new(3, Duration::from_secs(1), send));
        let user = Hashed {
            email: Some("h".into()),
            phone_e164: None,
            phone_digits: None,
        };
        let mut waiting = Vec::new();
        for i in 0..4 {
            let (b, u) = (batcher.clone(), user.clone());
            let op = if i == 3 { Op::Remove } else { Op::Add };
            waiting.push(tokio::spawn(
                async move { b.submit("L".into(), op, u).await },
            ));
        }
        for w in waiting {
            assert!(matches!(w.await.unwrap(), Outcome::Sent { .. }));
        }
        let mut sent = sent.lock().unwrap().clone();
        sent.sort();
        assert_eq!(
            sent,
            vec![("L".into(), Op::Add, 3), ("L".into(), Op::Remove, 1)]
        );
    }
}
