//! Provider `smtp`: email through lettre's pooled async SMTP client
//! (SERVICE.md §6). `smtp://` is plain and upgraded with STARTTLS when the
//! server offers it; `smtps://` is TLS from the start; `user:pass@` in the
//! URL authenticates. Each email is `multipart/alternative` (the text
//! `body`, and the `html` when the template has one), with `Subject`,
//! `X-Journey-Message-Id` = the `message_id` verbatim and `Message-ID` =
//! `<hex(SHA-256(message_id))@from-domain>`: the same on every attempt, so
//! a receiving system can recognise a resend.
//!
//! With tracking configured, an [`EmailDecorator`] gives the HTML to send
//! and the unsubscribe URL, sent as `List-Unsubscribe` with
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
//!
//! SMTP 4xx answers, connection and TLS failures and timeouts are
//! transient; 5xx answers and an address that is not one are permanent.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::{BoxFuture, EmailDecorator, Message, Outcome, Provider};
use crate::compile::envelope::sha256_hex;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// `smtp://[user:pass@]host[:port]` or `smtps://...`.
    url: String,
    /// The sender: `Shop <hello@shop.example>` or `hello@shop.example`.
    from: String,
    /// A PEM file of certificates to trust besides the public roots (a
    /// private CA, a self-signed relay).
    tls_ca: Option<String>,
    /// Idle connections kept open, at most (default 8).
    pool_size: Option<u32>,
}

pub struct SmtpProvider {
    from: Mailbox,
    /// `from`'s domain, for `Message-ID`.
    domain: String,
    /// The transport as configured; built on first use, inside the async
    /// runtime (its pool starts a task).
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    decorator: Option<Arc<dyn EmailDecorator>>,
}

/// An SMTP answer that does not come is a transient failure after this.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl SmtpProvider {
    pub fn from_settings(
        settings: &toml::Table,
        decorator: Option<Arc<dyn EmailDecorator>>,
    ) -> Result<SmtpProvider, String> {
        let settings: Settings = super::settings(settings)?;
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| "`from` is not an email address (write `Shop <hello@shop.example>`)")?;
        let domain = from.email.domain().to_string();
        let ca = match &settings.tls_ca {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("`tls_ca`: cannot read `{path}`: {e}"))?;
                Some(
                    Certificate::from_pem(&pem)
                        .map_err(|_| format!("`tls_ca`: `{path}` holds no PEM certificate"))?,
                )
            }
        };
        let mut builder = transport(&settings.url, ca)?;
        builder = builder
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(settings.pool_size.unwrap_or(8).max(1)));
        Ok(SmtpProvider {
            from,
            domain,
            builder,
            transport: OnceLock::new(),
            decorator,
        })
    }
}

/// The transport of an `smtp://` or `smtps://` URL. Errors never repeat
/// the URL: it may hold a password.
fn transport(url: &str, ca: Option<Certificate>) -> Result<AsyncSmtpTransportBuilder, String> {
    let wrong = "`url` must be `smtp://[user:pass@]host[:port]` or `smtps://...`";
    let url = url::Url::parse(url).map_err(|_| wrong)?;
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or(wrong)?;
    // An IPv6 literal comes bracketed; the socket and TLS want it bare.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tls = || -> Result<TlsParameters, String> {
        let mut params = TlsParameters::builder(host.clone());
        if let Some(ca) = ca.clone() {
            params = params.add_root_certificate(ca);
        }
        params
            .build_rustls()
            .map_err(|e| format!("`url`: TLS cannot be set up: {e}"))
    };
    let (port, tls) = match url.scheme() {
        "smtp" => (25, Tls::Opportunistic(tls()?)),
        "smtps" => (465, Tls::Wrapper(tls()?)),
        _ => return Err(wrong.into()),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(port))
        .tls(tls);
    if !url.username().is_empty() {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let password = url.password().map(decode).unwrap_or_default();
        builder = builder.credentials(Credentials::new(decode(url.username()), password));
    }
    Ok(builder)
}

impl Provider for SmtpProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
    }
}

impl SmtpProvider {
    async fn send(&self, message: &Message) -> Outcome {
        let email = match self.email(message) {
            Ok(email) => email,
            Err(error) => return Outcome::Fail { error },
        };
        let transport = self.transport.get_or_init(|| self.builder.clone().build());
        match transport.send(email).await {
            Ok(response) => Outcome::Sent {
                response: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string(),
            },
            Err(e) if e.is_permanent() => Outcome::Fail {
                error: e.to_string(),
            },
            // 4xx, a timeout, a connection or TLS failure: another try.
            Err(e) => Outcome::Retry {
                error: e.to_string(),
                after: None,
            },
        }
    }

    /// The email of one attempt: the same bytes but `Date` on every attempt.
    fn email(&self, message: &Message) -> Result<lettre::Message, String> {
        let to: Mailbox = match &message.to {
            serde_json::Value::String(address) => address
                .parse()
                .map_err(|_| "`to` is not an email address".to_string())?,
            _ => return Err("the send has no email address".into()),
        };
        let (html, unsubscribe) = match &self.decorator {
            Some(decorator) => decorator.decorate(message, message.html.clone()),
            None => (message.html.clone(), None),
        };
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone().unwrap_or_default())
            .message_id(Some(message_id_header(&message.message_id, &self.domain)))
            .raw_header(header("X-Journey-Message-Id", &message.message_id));
        if let Some(url) = unsubscribe {
            builder = builder
                .raw_header(header("List-Unsubscribe", &format!("<{url}>")))
                .raw_header(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click",
                ));
        }
        let text = SinglePart::plain(message.body.clone().unwrap_or_default());
        let built = match html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::html(html)),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| format!("the email cannot be built: {e}"))
    }
}

/// `Message-ID`: `<hex(SHA-256(message_id))@domain>` (a message id's `:`
/// is not allowed there).
fn message_id_header(message_id: &str, domain: &str) -> String {
    format!("<{}@{domain}>", sha256_hex(message_id.as_bytes()))
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tracking;

    impl EmailDecorator for Tracking {
        fn decorate(
            &self,
            message: &Message,
            html: Option<String>,
        ) -> (Option<String>, Option<String>) {
            (
                html.map(|h| h.replace("https://shop.example/", "https://t.example/c/1")),
                Some(format!("https://t.example/u/{}", message.template)),
            )
        }
    }

    fn message() -> Message {
        Message {
            message_id: "welcome:ana:1:3".into(),
            user_id: "ana".into(),
            journey: "welcome".into(),
            template: "hello".into(),
            channel: "email".into(),
            to: serde_json::json!("ana@example.com"),
            subject: Some("Hello Ana".into()),
            body: Some("Hi Ana".into()),
            html: Some("<a href=\"https://shop.example/\">shop</a>".into()),
            vars: serde_json::Map::new(),
            line: String::new(),
            attempt: 1,
            committed_ms: 0,
        }
    }

    fn provider(decorator: Option<Arc<dyn EmailDecorator>>) -> SmtpProvider {
        let settings: toml::Table = toml::from_str(
            "url = \"smtp://127.0.0.1:2525\"\nfrom = \"Shop <hello@shop.example>\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        SmtpProvider::from_settings(&settings, decorator).unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(email: &lettre::Message) -> String {
        String::from_utf8_lossy(&email.formatted()).into_owned()
    }

    #[test]
    fn an_email_carries_its_ids_and_both_parts() {
        let email = provider(None)
            .email(&message())
            .unwrap_or_else(|e| panic!("{e}"));
        let text = text(&email);
        let id = sha256_hex(b"welcome:ana:1:3");
        assert!(
            text.contains(&format!("Message-ID: <{id}@shop.example>")),
            "{text}"
        );
        assert!(
            text.contains("X-Journey-Message-Id: welcome:ana:1:3"),
            "{text}"
        );
        assert!(text.contains("Subject: Hello Ana"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("Hi Ana") && text.contains("https://shop.example/"),
            "{text}"
        );
        assert!(!text.contains("List-Unsubscribe"), "{text}");
    }

    #[test]
    fn a_decorator_gives_the_html_and_the_one_click_unsubscribe() {
        let email = provider(Some(Arc::new(Tracking)))
            .email(&message())
            .unwrap_or_else(|e| panic!("{e}"));
        let text = text(&email);
        assert!(
            text.contains("List-Unsubscribe: <https://t.example/u/hello>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{text}"
        );
        assert!(
            text.contains("https://t.example/c/1") && !text.contains("https://shop.example/"),
            "{text}"
        );
    }

    #[test]
    fn without_html_the_email_is_text_only_and_a_bad_address_fails() {
        let mut plain = message();
        plain.html = None;
        let text = text(
            &provider(None)
                .email(&plain)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(
            text.contains("text/plain") && !text.contains("multipart"),
            "{text}"
        );
        plain.to = serde_json::json!("not an address");
        assert!(provider(None).email(&plain).is_err());
        plain.to = serde_json::Value::Null;
        assert!(provider(None).email(&plain).is_err());
    }
}
