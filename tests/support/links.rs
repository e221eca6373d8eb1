//! Tracking links made as the SMTP provider makes them, for the tests of
//! tracking: a send action of the feed as a provider is given it, and the
//! links of the HTML [`Tracking`] decorated.
//!
//! [`Tracking`]: journey::service::delivery::tracking::Tracking
#![allow(dead_code)]

use journey::service::core::wall_ms;
use journey::service::delivery::Message;
use serde_json::Value;

/// A send action of the feed as a provider is given it.
pub fn message_of(action: &Value) -> Message {
    let text = |key: &str| action[key].as_str().map(str::to_string);
    Message {
        message_id: text("message_id").expect("a message id"),
        user_id: text("user_id").expect("a user"),
        journey: text("journey").expect("a journey"),
        template: text("template").expect("a template"),
        channel: text("channel").expect("a channel"),
        to: action["to"].clone(),
        subject: text("subject"),
        body: text("body"),
        html: text("html"),
        vars: action["vars"].as_object().cloned().unwrap_or_default(),
        line: action.to_string(),
        attempt: 1,
        committed_ms: wall_ms(),
    }
}

/// Every link in `html` to `https://t.shop.example{prefix}`, as the path
/// to request from the service.
pub fn links(html: &str, prefix: &str) -> Vec<String> {
    let base = "https://t.shop.example";
    html.match_indices(&format!("{base}{prefix}"))
        .map(|(i, _)| {
            let rest = &html[i + base.len()..];
            rest[..rest.find(['"', '\'']).unwrap_or(rest.len())].to_string()
        })
        .collect()
}
