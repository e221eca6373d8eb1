//! Delivery: every `send` of the outbox through the provider its channel
//! is bound to (SERVICE.md §6). This module names what a provider is given
//! and answers; the engine that feeds providers from the outbox, and the
//! providers themselves, live beside it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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

/// Delivers messages of one channel.
pub trait Provider: Send + Sync + 'static {
    /// Delivers one attempt. Every attempt of one message carries the same
    /// idempotency key, derived from [`Message::message_id`], wherever the
    /// provider has a place for it.
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome>;
}

/// What tracking does to an email before it goes out: its HTML with links
/// rewritten and an open pixel added, and the one-click unsubscribe URL for
/// `List-Unsubscribe` (SERVICE.md §6, `[tracking]`).
pub trait EmailDecorator: Send + Sync + 'static {
    /// The HTML to send and the unsubscribe URL, for this message.
    fn decorate(&self, message: &Message, html: Option<String>) -> (Option<String>, Option<String>);
}
