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
//!
//! The SMTP dialogue is lettre's ([`AsyncSmtpConnection`]); the
//! connections and their pool are this module's, because lettre 0.11.23
//! leaves Nagle's algorithm on: it writes a message's body and its final
//! `.` in two writes, and the second waits for the server's delayed ACK,
//! 40 ms a message (580 emails/s at 32 connections instead of the
//! thousands they can carry). Upstream has fixed it (lettre PR #1159);
//! once a release has it, its `AsyncSmtpTransport` and pool can take over
//! again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::{BoxFuture, EmailDecorator, Message, Outcome, Provider};
use crate::compile::artifact::sha256_hex;

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
    server: Server,
    /// Connections between two messages, with when each was last used.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    pool_size: usize,
    decorator: Option<Arc<dyn EmailDecorator>>,
}

/// Where and how to connect.
struct Server {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
}

enum Security {
    /// `smtp://`: STARTTLS when the server offers it.
    StartTls(TlsParameters),
    /// `smtps://`: TLS from the first byte.
    Tls(TlsConnector, ServerName<'static>),
}

/// Connecting, and TLS, take at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection older than this is closed, not reused (servers
/// close idle sessions after a few minutes).
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// An idle connection older than this is asked `NOOP` before it is reused.
const IDLE_CHECK: Duration = Duration::from_secs(5);

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
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("`tls_ca`: cannot read `{path}`: {e}"))?,
            ),
        };
        Ok(SmtpProvider {
            from,
            domain,
            server: server(&settings.url, ca.as_deref())?,
            idle: Mutex::new(Vec::new()),
            pool_size: settings.pool_size.unwrap_or(8).max(1) as usize,
            decorator,
        })
    }
}

/// The server of an `smtp://` or `smtps://` URL, and the CA to trust
/// besides the public roots (PEM). Errors never repeat the URL: it may
/// hold a password.
fn server(url: &str, ca: Option<&[u8]>) -> Result<Server, String> {
    let wrong = "`url` must be `smtp://[user:pass@]host[:port]` or `smtps://...`";
    let url = url::Url::parse(url).map_err(|_| wrong)?;
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or(wrong)?;
    // An IPv6 literal comes bracketed; the socket and TLS want it bare.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let no_pem = "`tls_ca` holds no PEM certificate";
    let (port, security) = match url.scheme() {
        "smtp" => {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(pem) = ca {
                params =
                    params.add_root_certificate(Certificate::from_pem(pem).map_err(|_| no_pem)?);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("`url`: TLS cannot be set up: {e}"))?;
            (25, Security::StartTls(params))
        }
        "smtps" => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(pem) = ca {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<_, _>>()
                    .map_err(|_| no_pem)?;
                if certs.is_empty() {
                    return Err(no_pem.into());
                }
                for cert in certs {
                    roots.add(cert).map_err(|_| no_pem)?;
                }
            }
            // aws-lc-rs, as lettre's and reqwest's TLS in this build: one
            // provider in the process, so none has to be chosen at run time.
            let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("`url`: TLS cannot be set up: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(host.clone()).map_err(|_| wrong)?;
            (
                465,
                Security::Tls(TlsConnector::from(Arc::new(config)), name),
            )
        }
        _ => return Err(wrong.into()),
    };
    let credentials = (!url.username().is_empty()).then(|| {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        Credentials::new(
            decode(url.username()),
            url.password().map(decode).unwrap_or_default(),
        )
    });
    Ok(Server {
        host,
        port: url.port().unwrap_or(port),
        security,
        credentials,
    })
}

impl Server {
    /// A new session: connected (Nagle off), TLS as configured, greeted,
    /// authenticated.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Outcome> {
        let retry = |error: String| Outcome::Retry { error, after: None };
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| retry("could not connect: timed out".into()))?
        .map_err(|e| retry(format!("could not connect: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| retry(format!("could not connect: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::StartTls(_) => Box::new(tcp),
            Security::Tls(connector, name) => {
                let tls =
                    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                        .await
                        .map_err(|_| retry("TLS failed: timed out".into()))?
                        .map_err(|e| retry(format!("TLS failed: {e}")))?;
                Box::new(Tls(tls))
            }
        };
        let hello = ClientId::default();
        let mut session = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(classify)?;
        if let Security::StartTls(params) = &self.security
            && session.can_starttls()
        {
            session
                .starttls(params.clone(), &hello)
                .await
                .map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            session
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(session)
    }
}

/// A TLS stream as lettre takes one.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for Tls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
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
        let mut session = match self.session().await {
            Ok(session) => session,
            Err(outcome) => return outcome,
        };
        let sent = session.send(email.envelope(), &email.formatted()).await;
        if !session.has_broken() {
            self.put_back(session);
        }
        match sent {
            Ok(response) => Outcome::Sent {
                response: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string(),
            },
            Err(e) => classify(e),
        }
    }

    /// An idle session that still answers, or a new one (or the outcome
    /// of failing to open one: a refused AUTH, 535, is permanent).
    async fn session(&self) -> Result<AsyncSmtpConnection, Outcome> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some((mut session, since)) = idle else {
                break;
            };
            let age = since.elapsed();
            if age < IDLE_CHECK || (age < IDLE_LIMIT && session.test_connected().await) {
                return Ok(session);
            }
            session.abort().await;
        }
        self.server.connect().await
    }

    fn put_back(&self, session: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.pool_size
        {
            idle.push((session, Instant::now()));
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

/// An SMTP failure: a 5xx answer is permanent; 4xx, a timeout, a
/// connection or TLS failure are worth another try.
fn classify(e: lettre::transport::smtp::Error) -> Outcome {
    if e.is_permanent() {
        Outcome::Fail {
            error: e.to_string(),
        }
    } else {
        Outcome::Retry {
            error: e.to_string(),
            after: None,
        }
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
