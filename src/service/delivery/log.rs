//! Provider `log`: the channel's sends stay in the outbox and the feed and
//! go nowhere else — no attempt, no outcome event. What a channel without
//! a `[channels.<name>]` table gets, so a project runs before any provider
//! is set up (SERVICE.md §6).

use serde::Deserialize;

use super::{BoxFuture, Message, Outcome, Provider};

/// Sends nothing.
#[derive(Debug, Default)]
pub struct LogProvider;

/// `log` takes no settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

impl LogProvider {
    pub fn from_settings(settings: &toml::Table) -> Result<LogProvider, String> {
        let Settings {} = super::settings(settings)?;
        Ok(LogProvider)
    }
}

impl Provider for LogProvider {
    /// Never called by the engine ([`Provider::delivers`] is `false`); says
    /// so if called.
    fn deliver<'a>(&'a self, _message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(async {
            Outcome::Sent {
                response: "kept in the outbox (provider `log`)".into(),
            }
        })
    }

    fn delivers(&self) -> bool {
        false
    }
}
