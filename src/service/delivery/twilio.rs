//! Provider `twilio`: sms and whatsapp through Twilio's Messages API, and
//! what its delivery-status callbacks mean (their `X-Twilio-Signature`,
//! the outcome event a status is). docs/delivery-providers.md tells the
//! set-up.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use super::http::{self, Answer, Clock};
use super::{BoxFuture, Message, Outcome, Provider};
use crate::compile::artifact::sha256_hex;

/// The channels of `channels` bound to Twilio, whose status callbacks
/// `/webhooks/twilio` takes.
pub fn providers(channels: &[super::Channel]) -> Vec<std::sync::Arc<TwilioProvider>> {
    channels
        .iter()
        .filter_map(|c| {
            let provider: std::sync::Arc<dyn std::any::Any + Send + Sync> = c.provider.clone();
            provider.downcast::<TwilioProvider>().ok()
        })
        .collect()
}

/// Where `journey serve` takes Twilio's status callbacks; the public URL
/// of it is a channel's `status_callback`.
pub const CALLBACK_ROUTE: &str = "/webhooks/twilio";

/// Twilio's API, unless `base_url` says otherwise.
const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Twilio error codes that say "not now" rather than "never": 20429 too
/// many requests, 21611 the sender's queue is full.
const TRANSIENT_CODES: [u64; 2] = [20429, 21611];

/// The `[channels.<name>]` keys of a `twilio` channel.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    account_sid: String,
    auth_token: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    base_url: Option<String>,
    status_callback: Option<String>,
    whatsapp: Option<bool>,
}

/// Where a message comes from: a number (or WhatsApp sender) or a
/// Messaging Service that picks one.
enum Sender {
    From(String),
    Service(String),
}

/// Sends sms and whatsapp messages through Twilio.
pub struct TwilioProvider {
    client: reqwest::Client,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    /// `{base_url}/2010-04-01/Accounts/{sid}/Messages.json`.
    messages_url: String,
    status_callback: Option<reqwest::Url>,
    /// `Some` when the setting decides; `None`: the channel's name does.
    whatsapp: Option<bool>,
    clock: Clock,
}

impl TwilioProvider {
    /// The provider of one channel, from its settings: `account_sid`,
    /// `auth_token`, `from` or `messaging_service_sid`, and optionally
    /// `base_url`, `status_callback` (a URL) and `whatsapp` (a boolean).
    pub fn from_settings(table: &toml::Table, client: reqwest::Client) -> Result<Self, String> {
        let s: Settings = http::settings(table)?;
        for (key, value) in [
            ("account_sid", &s.account_sid),
            ("auth_token", &s.auth_token),
        ] {
            if value.trim().is_empty() {
                return Err(format!("`{key}` is empty"));
            }
        }
        let sender = match (s.from, s.messaging_service_sid) {
            (Some(from), None) if !from.trim().is_empty() => Sender::From(from),
            (None, Some(sid)) if !sid.trim().is_empty() => Sender::Service(sid),
            (Some(_), Some(_)) => {
                return Err("set `from` or `messaging_service_sid`, not both".to_string());
            }
            _ => return Err("`from` (or `messaging_service_sid`) is missing".to_string()),
        };
        let base = http::base_url(
            "base_url",
            s.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        let status_callback = match s.status_callback {
            Some(text) => {
                http::base_url("status_callback", &text)?;
                Some(reqwest::Url::parse(&text).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(TwilioProvider {
            client,
            messages_url: format!("{base}/2010-04-01/Accounts/{}/Messages.json", s.account_sid),
            account_sid: s.account_sid,
            auth_token: s.auth_token,
            sender,
            status_callback,
            whatsapp: s.whatsapp,
            clock: http::wall_clock(),
        })
    }

    /// The same provider reading another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether a status callback is Twilio's: `raw_query` is the query of
    /// the URL it was posted to (`message_id=...`, as [`callback_url`]
    /// made it), `form` its form pairs, `signature` its
    /// `X-Twilio-Signature`. The signed URL is rebuilt from the configured
    /// `status_callback`, not from the request's `Host`, so a proxy in
    /// front of `journey serve` does not break it. `false` when no
    /// `status_callback` is configured.
    pub fn verify_callback(
        &self,
        raw_query: Option<&str>,
        form: &[(String, String)],
        signature: &str,
    ) -> bool {
        let Some(callback) = &self.status_callback else {
            return false;
        };
        let mut url = callback.clone();
        url.set_query(raw_query);
        verify_signature(&self.auth_token, url.as_str(), form, signature)
    }

    /// The form of one message, or why it cannot be sent.
    fn form(&self, message: &Message) -> Result<Vec<(&'static str, String)>, String> {
        let to = match &message.to {
            serde_json::Value::String(to) if !to.trim().is_empty() => to.trim(),
            _ => return Err("twilio: the message has no phone number (`to`)".to_string()),
        };
        let body = match message.body.as_deref() {
            Some(body) if !body.is_empty() => body,
            _ => return Err("twilio: the template has no `body` to send".to_string()),
        };
        let whatsapp = self.whatsapp.unwrap_or(message.channel == "whatsapp");
        let mut form = vec![("To", address(to, whatsapp)), ("Body", body.to_string())];
        match &self.sender {
            Sender::From(from) => form.push(("From", address(from, whatsapp))),
            Sender::Service(sid) => form.push(("MessagingServiceSid", sid.clone())),
        }
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback_url(callback, message)));
        }
        Ok(form)
    }

    async fn send(&self, message: &Message) -> Outcome {
        let form = match self.form(message) {
            Ok(form) => form,
            Err(error) => return Outcome::Fail { error },
        };
        let response = self
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("Idempotency-Key", idempotency_key(&message.message_id))
            .form(&form)
            .send()
            .await;
        match response {
            Ok(response) => match Answer::read(response).await {
                Ok(answer) => classify(&answer, (self.clock)()),
                Err(e) => http::transport_error("twilio", &e),
            },
            Err(e) => http::transport_error("twilio", &e),
        }
    }
}

impl Provider for TwilioProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
    }
}

/// The `Idempotency-Key` of every attempt of one message: hex SHA-256 of
/// its `message_id` (always a valid header value, whatever the user key).
pub fn idempotency_key(message_id: &str) -> String {
    sha256_hex(message_id.as_bytes())
}

/// A phone number as Twilio wants it on this channel: `whatsapp:` first
/// for WhatsApp (unless the setting already has it).
fn address(number: &str, whatsapp: bool) -> String {
    if whatsapp && !number.starts_with("whatsapp:") {
        format!("whatsapp:{number}")
    } else {
        number.to_string()
    }
}

/// The status callback URL of one message: the configured URL with the
/// message's `message_id`, `user_id`, `journey`, `template` and `channel`
/// added to its query. That is how a callback names the message and its
/// recipient; the signature covers the URL, so they cannot be forged.
pub fn callback_url(base: &reqwest::Url, message: &Message) -> String {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("message_id", &message.message_id)
        .append_pair("user_id", &message.user_id)
        .append_pair("journey", &message.journey)
        .append_pair("template", &message.template)
        .append_pair("channel", &message.channel);
    url.into()
}

/// Twilio's error body (`{"code", "message", "more_info", "status"}`).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u64>,
    message: Option<String>,
}

/// A created message (`201`, `{"sid", "status", ...}`).
#[derive(Deserialize)]
struct Created {
    sid: String,
    status: Option<String>,
}

/// What Twilio's answer means: 2xx sent; 429, 5xx, 408 and the codes of
/// [`TRANSIENT_CODES`] again later; any other 4xx never (21211 an invalid
/// `To`, 21610 an unsubscribed recipient, 20003 bad credentials, ...).
fn classify(answer: &Answer, now_ms: i64) -> Outcome {
    let status = answer.status;
    if status.is_success() {
        let response = match serde_json::from_str::<Created>(&answer.body) {
            Ok(created) => format!("{} {}", created.sid, created.status.unwrap_or_default()),
            Err(_) => format!("{status}"),
        };
        return Outcome::Sent {
            response: response.trim_end().to_string(),
        };
    }
    let parsed = serde_json::from_str::<ErrorBody>(&answer.body).ok();
    let code = parsed.as_ref().and_then(|e| e.code);
    let error = match (&code, parsed.as_ref().and_then(|e| e.message.as_deref())) {
        (Some(code), Some(text)) => format!("twilio: {} (error {code}): {text}", status.as_u16()),
        _ => format!("twilio: {}: {}", status.as_u16(), answer.body_excerpt()),
    };
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
    if transient {
        answer.retry(error, now_ms)
    } else {
        Outcome::Fail { error }
    }
}

/// Whether `signature` (the `X-Twilio-Signature` header) is Twilio's for a
/// request to `url` (exactly as Twilio called it, query included) with
/// these form `params`: base64 of HMAC-SHA1, keyed with the auth token,
/// over the URL followed by each distinct parameter's name and value,
/// sorted. Like Twilio's own libraries, a URL that differs only by its
/// scheme's default port (`:443`, `:80`) is accepted too.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    url_variants(url).iter().any(|url| {
        let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
            return false;
        };
        mac.update(url.as_bytes());
        for (name, value) in &pairs {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        // A constant-time comparison.
        mac.verify_slice(&expected).is_ok()
    })
}

/// `url` as given, and with its scheme's default port added (when it has
/// no port) or removed (when it names that port).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port follows the last `:` after any user info and IPv6 brackets.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host = &authority[host_start..];
    let port_colon = host.rfind(':').filter(|&i| !host[i..].contains(']'));
    match port_colon {
        Some(i) if &host[i + 1..] == default_port => {
            variants.push(format!("{scheme}://{}{tail}", &authority[..host_start + i]));
        }
        Some(_) => {}
        None => variants.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    variants
}

/// What a status callback reports: the outcome event's name and what it
/// is about.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusEvent {
    /// `message.delivered`, `message.bounced`, `message.failed` or
    /// `message.opened`.
    pub event: &'static str,
    pub message_id: String,
    pub user_id: String,
    pub journey: String,
    pub template: String,
    pub channel: String,
    /// For a bounce or a failure: Twilio's status, code and message.
    pub error: Option<String>,
}

/// What a status callback reports, as an outcome event; the message and
/// its recipient come from the callback URL's query ([`callback_url`]).
///
/// `params` are the callback's query pairs and its form pairs, in one
/// list. `delivered` is `message.delivered`; `read` (WhatsApp's read
/// receipt) `message.opened`; `undelivered` (the carrier could not deliver
/// it) `message.bounced`; `failed` (it could not be sent after Twilio
/// accepted it: a queue overflow, a suspended account, ...)
/// `message.failed`. Every other status (`queued`, `sending`, `sent`,
/// `accepted`, `scheduled`, `canceled`, ...) is a step on the way and is
/// `None`, as is a callback without a `message_id` and a `user_id`.
pub fn status_event(params: &[(String, String)]) -> Option<StatusEvent> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let message_id = param("message_id")?.to_string();
    let user_id = param("user_id")?.to_string();
    let status = param("MessageStatus").or_else(|| param("SmsStatus"))?;
    let event = match status {
        "delivered" => "message.delivered",
        "read" => "message.opened",
        "undelivered" => "message.bounced",
        "failed" => "message.failed",
        _ => return None,
    };
    let error = matches!(status, "undelivered" | "failed").then(|| {
        let mut error = format!("twilio: {status}");
        if let Some(code) = param("ErrorCode") {
            error.push_str(&format!(" (error {code})"));
        }
        if let Some(text) = param("ErrorMessage") {
            error.push_str(&format!(": {text}"));
        }
        error
    });
    let text = |name: &str| param(name).unwrap_or_default().to_string();
    Some(StatusEvent {
        event,
        message_id,
        user_id,
        journey: text("journey"),
        template: text("template"),
        channel: text("channel"),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Twilio's documented example (its request-validation guide and the
    /// test suites of its helper libraries): auth token `12345`.
    fn documented() -> Vec<(String, String)> {
        pairs(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ])
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn the_documented_signature_verifies() {
        assert!(verify_signature(
            "12345",
            URL,
            &documented(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // The libraries' vector with repeated parameters: each distinct
        // pair once, sorted by name then value.
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert!(verify_signature(
            "12345",
            URL,
            &repeated,
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        ));
        // The host's case is signed as Twilio called it.
        let mixed = "https://MyCompany.com/myapp.php?foo=1&bar=2";
        assert!(verify_signature(
            "12345",
            mixed,
            &documented(),
            "g9IN/x4Cft2g517EjYvEvM/W7LU="
        ));
    }

    #[test]
    fn anything_changed_fails() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify_signature("12346", URL, &documented(), good));
        assert!(!verify_signature(
            "12345",
            &format!("{URL}&x=1"),
            &documented(),
            good
        ));
        let mut tampered = documented();
        tampered[0].1 = "9999".to_string();
        assert!(!verify_signature("12345", URL, &tampered, good));
        assert!(!verify_signature("12345", URL, &documented(), ""));
        assert!(!verify_signature(
            "12345",
            URL,
            &documented(),
            "not base64 王"
        ));
    }

    #[test]
    fn the_default_port_is_optional() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(verify_signature("12345", with_port, &documented(), good));
        let other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
        assert!(!verify_signature("12345", other_port, &documented(), good));
        assert_eq!(
            url_variants("http://u@[::1]/x"),
            ["http://u@[::1]/x", "http://u@[::1]:80/x"]
        );
    }

    #[test]
    fn statuses_become_outcome_events() {
        let callback = |status: &str, extra: &[(&str, &str)]| {
            let mut p = pairs(&[
                ("message_id", "j:ana:1:0"),
                ("user_id", "ana"),
                ("journey", "j"),
                ("template", "t"),
                ("channel", "sms"),
                ("MessageSid", "SM1"),
                ("MessageStatus", status),
            ]);
            p.extend(pairs(extra));
            status_event(&p)
        };
        assert_eq!(
            callback("delivered", &[]),
            Some(StatusEvent {
                event: "message.delivered",
                message_id: "j:ana:1:0".into(),
                user_id: "ana".into(),
                journey: "j".into(),
                template: "t".into(),
                channel: "sms".into(),
                error: None,
            })
        );
        assert_eq!(callback("read", &[]).unwrap().event, "message.opened");
        let bounced = callback("undelivered", &[("ErrorCode", "30003")]).unwrap();
        assert_eq!(bounced.event, "message.bounced");
        assert_eq!(
            bounced.error.as_deref(),
            Some("twilio: undelivered (error 30003)")
        );
        let failed = callback(
            "failed",
            &[("ErrorCode", "30001"), ("ErrorMessage", "Queue overflow")],
        )
        .unwrap();
        assert_eq!(failed.event, "message.failed");
        assert_eq!(
            failed.error.as_deref(),
            Some("twilio: failed (error 30001): Queue overflow")
        );
        for on_the_way in ["queued", "sending", "sent", "accepted", "canceled"] {
            assert_eq!(callback(on_the_way, &[]), None);
        }
        assert_eq!(
            status_event(&pairs(&[
                ("MessageStatus", "delivered"),
                ("message_id", "m")
            ])),
            None,
            "no recipient"
        );
    }

    #[test]
    fn the_callback_url_names_the_message() {
        let base = reqwest::Url::parse("https://j.example/webhooks/twilio?k=1").unwrap();
        let message = Message {
            message_id: "j:ana b:1:0".into(),
            user_id: "ana b".into(),
            journey: "j".into(),
            template: "t".into(),
            channel: "sms".into(),
            to: serde_json::Value::Null,
            subject: None,
            body: None,
            html: None,
            vars: serde_json::Map::new(),
            line: String::new(),
            attempt: 1,
            committed_ms: 0,
        };
        assert_eq!(
            callback_url(&base, &message),
            "https://j.example/webhooks/twilio?k=1&message_id=j%3Aana+b%3A1%3A0&user_id=ana+b\
             &journey=j&template=t&channel=sms"
        );
    }

    #[test]
    fn callbacks_are_checked_against_the_configured_url() {
        let settings = "account_sid = \"AC1\"\nauth_token = \"12345\"\nfrom = \"+1\"\n\
                        status_callback = \"https://mycompany.com/myapp.php\"";
        let provider =
            TwilioProvider::from_settings(&settings.parse().unwrap(), reqwest::Client::new())
                .unwrap();
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(provider.verify_callback(Some("foo=1&bar=2"), &documented(), good));
        assert!(!provider.verify_callback(Some("foo=1&bar=3"), &documented(), good));
        assert!(!provider.verify_callback(None, &documented(), good));
    }

    #[test]
    fn settings_are_checked() {
        let table = |text: &str| text.parse::<toml::Table>().unwrap();
        let client = reqwest::Client::new();
        let err = |text: &str| {
            TwilioProvider::from_settings(&table(text), client.clone())
                .err()
                .unwrap()
        };
        assert!(err("auth_token = \"t\"\nfrom = \"+1\"").contains("account_sid"));
        assert!(err("account_sid = \"AC1\"\nauth_token = \"t\"").contains("`from`"));
        assert!(
            err("account_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\"\nmessaging_service_sid = \"MG1\"")
                .contains("not both")
        );
        assert!(
            err("account_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\"\nfrom_number = \"+1\"")
                .contains("from_number")
        );
        assert!(
            err("account_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\"\nstatus_callback = \"nope\"")
                .contains("status_callback")
        );
        assert!(
            TwilioProvider::from_settings(
                &table("account_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+1\""),
                client
            )
            .is_ok()
        );
    }
}
