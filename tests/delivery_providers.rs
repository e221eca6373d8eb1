//! The SaaS providers (`twilio`, `fcm`, `apns`) against local fakes that
//! check what the real services check — Twilio's Basic auth and form, the
//! RS256 assertion of FCM's token endpoint and the access token it grants,
//! APNs' ES256 provider token over HTTP/2 on TLS — and answer with their
//! documented success and error bodies. Failures are injected (429 with
//! `Retry-After`, 5xx, no answer in time, a reset connection) and each
//! must come to the right [`Outcome`]. Keys and the TLS certificate are
//! generated here at run time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use journey::service::delivery::apns::{self, ApnsProvider};
use journey::service::delivery::fcm::{self, FcmProvider};
use journey::service::delivery::http::Clock;
use journey::service::delivery::twilio::{self, TwilioProvider};
use journey::service::delivery::{Message, Outcome, Provider};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

// ---------------------------------------------------------------- shared

/// How long the providers' client waits for an answer here.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1000);

/// One attempt of a message.
fn message(channel: &str, to: &str, message_id: &str, attempt: u32) -> Message {
    Message {
        message_id: message_id.to_string(),
        user_id: "ana".to_string(),
        journey: "welcome".to_string(),
        template: "hello".to_string(),
        channel: channel.to_string(),
        to: json!(to),
        subject: Some("Hello Ana".to_string()),
        body: Some("Your order has shipped".to_string()),
        html: None,
        vars: serde_json::Map::new(),
        line: "{}".to_string(),
        attempt,
        committed_ms: 0,
    }
}

/// The one client every provider shares, as in `journey serve`; it trusts
/// the fake APNs' certificate.
fn client(root: Option<&rcgen::Certificate>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(CLIENT_TIMEOUT);
    if let Some(root) = root {
        let cert = reqwest::Certificate::from_der(root.der()).unwrap();
        builder = builder.tls_certs_only([cert]);
    }
    builder.build().unwrap()
}

/// A clock the test moves, starting at the wall clock's now.
fn test_clock() -> (Arc<AtomicI64>, Clock) {
    let now = Arc::new(AtomicI64::new(journey::service::core::wall_ms()));
    let read = now.clone();
    (now, Arc::new(move || read.load(Ordering::SeqCst)))
}

fn table(text: &str) -> toml::Table {
    text.parse().unwrap()
}

/// A failure a fake serves instead of its own answer.
enum Inject {
    /// This status, body and optional `Retry-After`.
    Answer(StatusCode, Value, Option<&'static str>),
    /// No answer before the client gives up.
    Stall,
}

/// What every fake keeps: the failures to serve next.
#[derive(Default)]
struct Injections(Mutex<VecDeque<Inject>>);

impl Injections {
    fn push(&self, inject: Inject) {
        self.0.lock().unwrap().push_back(inject);
    }

    async fn next(&self) -> Option<Response> {
        let next = self.0.lock().unwrap().pop_front();
        match next? {
            Inject::Answer(status, body, retry_after) => {
                let mut response = (status, axum::Json(body)).into_response();
                if let Some(after) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", after.parse().unwrap());
                }
                Some(response)
            }
            Inject::Stall => {
                tokio::time::sleep(CLIENT_TIMEOUT * 3).await;
                Some(StatusCode::OK.into_response())
            }
        }
    }
}

/// Serves `router` over plain HTTP/1.1 on a free port; its base URL.
async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A server that reads the start of a request and resets the connection.
async fn resetting_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf).await;
            stream.set_zero_linger().unwrap();
            drop(stream);
        }
    });
    addr
}

/// One attempt, the message owned by the caller's future.
async fn deliver(provider: &dyn Provider, message: Message) -> Outcome {
    provider.deliver(&message).await
}

fn assert_retry(outcome: &Outcome, contains: &str, after: Option<Duration>) {
    match outcome {
        Outcome::Retry { error, after: a } => {
            assert!(
                error.contains(contains),
                "`{error}` does not say `{contains}`"
            );
            assert_eq!(*a, after, "{error}");
        }
        other => panic!("expected a retry ({contains}), got {other:?}"),
    }
}

fn assert_fail(outcome: &Outcome, contains: &str) {
    match outcome {
        Outcome::Fail { error } => assert!(
            error.contains(contains),
            "`{error}` does not say `{contains}`"
        ),
        other => panic!("expected a failure ({contains}), got {other:?}"),
    }
}

// ---------------------------------------------------------------- twilio

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-test-token";

/// One request as the fake Twilio saw it.
struct TwilioRequest {
    idempotency_key: Option<String>,
    form: Vec<(String, String)>,
}

#[derive(Default)]
struct FakeTwilio {
    seen: Mutex<Vec<TwilioRequest>>,
    inject: Injections,
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

/// An E.164 number, for SMS or (with `whatsapp:`) WhatsApp.
fn e164(address: &str) -> bool {
    let number = address.strip_prefix("whatsapp:").unwrap_or(address);
    number.len() >= 3
        && number.len() <= 16
        && number.starts_with('+')
        && number[1..].bytes().all(|b| b.is_ascii_digit())
        && !number[1..].starts_with('0')
}

/// `POST /2010-04-01/Accounts/{sid}/Messages.json`, as Twilio checks it.
async fn twilio_messages(
    State(fake): State<Arc<FakeTwilio>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    fake.seen.lock().unwrap().push(TwilioRequest {
        idempotency_key: headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_string()),
        form: form.clone(),
    });
    let expected = format!("Basic {}", BASE64.encode(format!("{SID}:{AUTH_TOKEN}")));
    let authorised =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let Some(account) = account.strip_suffix("/Messages.json") else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    if !authorised || account != SID {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if let Some(injected) = fake.inject.next().await {
        return injected;
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let to = field("To").unwrap_or_default();
    if !e164(&to) {
        let text = format!("The 'To' number {to} is not a valid phone number.");
        return twilio_error(StatusCode::BAD_REQUEST, 21211, &text);
    }
    let from = field("From");
    if from.is_none() && field("MessagingServiceSid").is_none() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    if from
        .as_deref()
        .is_some_and(|f| f.starts_with("whatsapp:") != to.starts_with("whatsapp:"))
    {
        return twilio_error(StatusCode::BAD_REQUEST, 21910, "Invalid From and To pair.");
    }
    let Some(body) = field("Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let n = fake.seen.lock().unwrap().len();
    let created = json!({
        "account_sid": SID,
        "api_version": "2010-04-01",
        "body": body,
        "from": from,
        "messaging_service_sid": field("MessagingServiceSid"),
        "num_segments": "1",
        "sid": format!("SM{n:032x}"),
        "status": "queued",
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{SID}/Messages/SM{n:032x}.json"),
    });
    (StatusCode::CREATED, axum::Json(created)).into_response()
}

async fn fake_twilio() -> (Arc<FakeTwilio>, String) {
    let fake = Arc::new(FakeTwilio::default());
    // The sid segment is `{sid}/Messages.json`'s first part; axum routes
    // the whole tail and the handler checks it.
    let router = Router::new()
        .route("/2010-04-01/Accounts/{*rest}", post(twilio_messages))
        .with_state(fake.clone());
    (fake.clone(), serve(router).await)
}

fn twilio_provider(base_url: &str, extra: &str) -> TwilioProvider {
    let settings = format!(
        "account_sid = \"{SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nbase_url = \"{base_url}\"\n\
         status_callback = \"https://journey.example/webhooks/twilio\"\n{extra}"
    );
    TwilioProvider::from_settings(&table(&settings), client(None)).unwrap()
}

fn form_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn twilio_sends_an_sms_with_basic_auth_its_form_and_a_callback_naming_the_message() {
    let (fake, base) = fake_twilio().await;
    let provider = twilio_provider(&base, "from = \"+15550100\"");
    let outcome = provider
        .deliver(&message("sms", "+14155550123", "welcome:ana:1:0", 1))
        .await;
    match &outcome {
        Outcome::Sent { response } => assert_eq!(response, &format!("SM{:032x} queued", 1)),
        other => panic!("not sent: {other:?}"),
    }
    let seen = fake.seen.lock().unwrap();
    let form = &seen[0].form;
    assert_eq!(form_field(form, "To"), Some("+14155550123"));
    assert_eq!(form_field(form, "From"), Some("+15550100"));
    assert_eq!(form_field(form, "Body"), Some("Your order has shipped"));
    assert_eq!(
        form_field(form, "StatusCallback"),
        Some(
            "https://journey.example/webhooks/twilio?message_id=welcome%3Aana%3A1%3A0\
             &user_id=ana&journey=welcome&template=hello&channel=sms"
        )
    );
    assert_eq!(
        seen[0].idempotency_key.as_deref(),
        Some(twilio::idempotency_key("welcome:ana:1:0").as_str())
    );
}

#[tokio::test]
async fn twilio_whatsapp_addresses_carry_their_prefix() {
    let (fake, base) = fake_twilio().await;
    // By the channel's name.
    let provider = twilio_provider(&base, "from = \"+15550100\"");
    let outcome = provider
        .deliver(&message("whatsapp", "+14155550123", "w:ana:1:0", 1))
        .await;
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    // By the setting, for a channel named otherwise; a Messaging Service
    // as the sender.
    let provider = twilio_provider(&base, "messaging_service_sid = \"MG123\"\nwhatsapp = true");
    let outcome = provider
        .deliver(&message("chat", "+14155550123", "w:ana:1:1", 1))
        .await;
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(
        form_field(&seen[0].form, "To"),
        Some("whatsapp:+14155550123")
    );
    assert_eq!(
        form_field(&seen[0].form, "From"),
        Some("whatsapp:+15550100")
    );
    assert_eq!(
        form_field(&seen[1].form, "To"),
        Some("whatsapp:+14155550123")
    );
    assert_eq!(
        form_field(&seen[1].form, "MessagingServiceSid"),
        Some("MG123")
    );
    assert_eq!(form_field(&seen[1].form, "From"), None);
}

#[tokio::test]
async fn twilio_retries_429_and_5xx_with_one_idempotency_key_and_fails_what_never_works() {
    let (fake, base) = fake_twilio().await;
    let provider = twilio_provider(&base, "from = \"+15550100\"");
    fake.inject.push(Inject::Answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}),
        Some("7"),
    ));
    fake.inject.push(Inject::Answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"code": 20500, "message": "Internal Server Error", "status": 503}),
        None,
    ));
    let id = "welcome:ana:1:0";
    let first = provider
        .deliver(&message("sms", "+14155550123", id, 1))
        .await;
    assert_retry(&first, "error 20429", Some(Duration::from_secs(7)));
    let second = provider
        .deliver(&message("sms", "+14155550123", id, 2))
        .await;
    assert_retry(&second, "503", None);
    let third = provider
        .deliver(&message("sms", "+14155550123", id, 3))
        .await;
    assert!(matches!(third, Outcome::Sent { .. }), "{third:?}");
    {
        let seen = fake.seen.lock().unwrap();
        let keys: Vec<_> = seen
            .iter()
            .map(|r| r.idempotency_key.clone().unwrap())
            .collect();
        assert_eq!(keys, vec![twilio::idempotency_key(id); 3]);
    }

    // The fake's own checks: a number that is not one, a wrong token.
    let invalid = provider
        .deliver(&message("sms", "555-0123", "welcome:bob:1:0", 1))
        .await;
    assert_fail(&invalid, "error 21211");
    let settings = format!(
        "account_sid = \"{SID}\"\nauth_token = \"wrong\"\nfrom = \"+15550100\"\nbase_url = \"{base}\""
    );
    let wrong = TwilioProvider::from_settings(&table(&settings), client(None)).unwrap();
    let refused = wrong
        .deliver(&message("sms", "+14155550123", "welcome:cy:1:0", 1))
        .await;
    assert_fail(&refused, "401 (error 20003)");
    // What the provider refuses before asking: no number, no body.
    let mut no_body = message("sms", "+14155550123", "welcome:dan:1:0", 1);
    no_body.body = None;
    assert_fail(&provider.deliver(&no_body).await, "no `body`");
    let mut no_number = message("sms", "", "welcome:dan:1:1", 1);
    no_number.to = Value::Null;
    assert_fail(&provider.deliver(&no_number).await, "no phone number");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        5,
        "the last two never reached Twilio"
    );
}

#[tokio::test]
async fn twilio_timeouts_and_resets_are_retried() {
    let (fake, base) = fake_twilio().await;
    let provider = twilio_provider(&base, "from = \"+15550100\"");
    fake.inject.push(Inject::Stall);
    let stalled = provider
        .deliver(&message("sms", "+14155550123", "welcome:ana:1:0", 1))
        .await;
    assert_retry(&stalled, "no answer in time", None);

    let reset = resetting_server().await;
    let provider = twilio_provider(&format!("http://{reset}"), "from = \"+15550100\"");
    let outcome = provider
        .deliver(&message("sms", "+14155550123", "welcome:ana:1:0", 2))
        .await;
    assert_retry(&outcome, "twilio: ", None);
}

// ---------------------------------------------------------------- fcm

const PROJECT: &str = "demo-shop";
const CLIENT_EMAIL: &str = "journey@demo-shop.iam.gserviceaccount.com";
const KEY_ID: &str = "3f2b0c1d9e8a7b6c";

#[derive(Default)]
struct FakeFcm {
    /// The service account's public key (PEM), which signs assertions.
    public_key: String,
    /// This server's token endpoint, the assertion's audience.
    token_url: Mutex<String>,
    /// Seconds a granted token lives.
    expires_in: AtomicI64,
    /// Granted tokens; a revoked one is refused.
    tokens: Mutex<Vec<(String, bool)>>,
    /// Refuse every token (a project whose API access was withdrawn).
    refuse_all: AtomicBool,
    grants: AtomicUsize,
    sends: Mutex<Vec<Value>>,
    registered: Mutex<Vec<String>>,
    inject: Injections,
}

fn fcm_error(status: StatusCode, rpc_status: &str, message: &str, fcm_code: Option<&str>) -> Value {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": rpc_status});
    if let Some(code) = fcm_code {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": code,
        }]);
    }
    json!({ "error": error })
}

/// The token endpoint: a JWT-bearer grant whose assertion must be signed
/// RS256 by the service account's key, for this audience and scope.
async fn fcm_token(
    State(fake): State<Arc<FakeFcm>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let invalid = |error: &str, description: &str| {
        let body = json!({"error": error, "error_description": description});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    };
    if field("grant_type").as_deref() != Some(fcm::GRANT_TYPE) {
        return invalid("unsupported_grant_type", "Invalid grant_type");
    }
    let assertion = field("assertion").unwrap_or_default();
    let Ok(header) = jsonwebtoken::decode_header(&assertion) else {
        return invalid("invalid_grant", "Invalid JWT");
    };
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(KEY_ID) {
        return invalid("invalid_grant", "Invalid JWT: wrong algorithm or key id");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[fake.token_url.lock().unwrap().clone()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let key = DecodingKey::from_rsa_pem(fake.public_key.as_bytes()).unwrap();
    let claims = match jsonwebtoken::decode::<Value>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return invalid("invalid_grant", "Invalid JWT Signature."),
    };
    if claims["scope"] != fcm::SCOPE {
        return invalid("invalid_scope", "Invalid OAuth scope");
    }
    let n = fake.grants.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.fake-{n}");
    fake.tokens.lock().unwrap().push((token.clone(), false));
    let body = json!({
        "access_token": token,
        "expires_in": fake.expires_in.load(Ordering::SeqCst),
        "token_type": "Bearer",
    });
    axum::Json(body).into_response()
}

/// `POST /v1/projects/{project}/messages:send`.
async fn fcm_send(
    State(fake): State<Arc<FakeFcm>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    fake.sends.lock().unwrap().push(body.clone());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let valid = !fake.refuse_all.load(Ordering::SeqCst)
        && fake
            .tokens
            .lock()
            .unwrap()
            .iter()
            .any(|(t, revoked)| *t == bearer && !revoked);
    if !valid {
        let text = "Request had invalid authentication credentials. Expected OAuth 2 access token.";
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(fcm_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                text,
                None,
            )),
        )
            .into_response();
    }
    if project != PROJECT {
        let body = fcm_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission denied.",
            Some("SENDER_ID_MISMATCH"),
        );
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    if let Some(injected) = fake.inject.next().await {
        return injected;
    }
    let message = &body["message"];
    let data_are_strings = message["data"]
        .as_object()
        .is_none_or(|d| d.values().all(Value::is_string));
    let Some(token) = message["token"]
        .as_str()
        .filter(|t| !t.is_empty() && data_are_strings)
    else {
        let body = fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            Some("INVALID_ARGUMENT"),
        );
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    if !fake.registered.lock().unwrap().iter().any(|t| t == token) {
        let body = fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
            Some("UNREGISTERED"),
        );
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let n = fake.sends.lock().unwrap().len();
    axum::Json(json!({ "name": format!("projects/{PROJECT}/messages/0:{n}%31bd1c96") }))
        .into_response()
}

/// A service account (its key generated here) and the fake that knows it.
struct Fcm {
    fake: Arc<FakeFcm>,
    base: String,
    key_json: String,
}

async fn fake_fcm() -> Fcm {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let fake = Arc::new(FakeFcm {
        public_key: key.public_key_pem(),
        expires_in: AtomicI64::new(3599),
        registered: Mutex::new(vec!["device-token-ana".to_string()]),
        ..FakeFcm::default()
    });
    let router = Router::new()
        .route("/token", post(fcm_token))
        .route("/v1/projects/{project}/messages:send", post(fcm_send))
        .with_state(fake.clone());
    let base = serve(router).await;
    *fake.token_url.lock().unwrap() = format!("{base}/token");
    let key_json = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": key.serialize_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": format!("{base}/token"),
    })
    .to_string();
    Fcm {
        fake,
        base,
        key_json,
    }
}

fn fcm_provider(fcm: &Fcm, clock: Clock) -> FcmProvider {
    let mut settings = toml::Table::new();
    settings.insert("service_account".into(), fcm.key_json.clone().into());
    settings.insert("base_url".into(), fcm.base.clone().into());
    FcmProvider::from_settings(&settings, client(None))
        .unwrap()
        .with_clock(clock)
}

#[tokio::test]
async fn fcm_sends_with_a_token_earned_by_a_signed_assertion() {
    let fcm = fake_fcm().await;
    // The key as a file, as Google hands it out.
    let dir = std::env::temp_dir().join(format!("journey-fcm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("service-account.json");
    std::fs::write(&path, &fcm.key_json).unwrap();
    let mut settings = toml::Table::new();
    settings.insert("service_account".into(), path.display().to_string().into());
    settings.insert("base_url".into(), fcm.base.clone().into());
    let provider = FcmProvider::from_settings(&settings, client(None)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let outcome = provider
        .deliver(&message("push", "device-token-ana", "welcome:ana:1:0", 1))
        .await;
    assert_eq!(
        outcome,
        Outcome::Sent {
            response: format!("projects/{PROJECT}/messages/0:1%31bd1c96")
        }
    );
    assert_eq!(fcm.fake.grants.load(Ordering::SeqCst), 1);
    let sent = &fcm.fake.sends.lock().unwrap()[0];
    assert_eq!(
        sent,
        &json!({"message": {
            "token": "device-token-ana",
            "notification": {"title": "Hello Ana", "body": "Your order has shipped"},
            "data": {"message_id": "welcome:ana:1:0", "journey": "welcome", "template": "hello"},
        }})
    );
}

#[tokio::test]
async fn fcm_keeps_its_token_refreshes_it_before_expiry_and_once_when_refused() {
    let fcm = fake_fcm().await;
    let (now, clock) = test_clock();
    let provider = fcm_provider(&fcm, clock);
    let send = |id: &'static str| deliver(&provider, message("push", "device-token-ana", id, 1));
    let sent = |o: &Outcome| matches!(o, Outcome::Sent { .. });

    assert!(sent(&send("m:1").await));
    assert!(sent(&send("m:2").await));
    assert_eq!(
        fcm.fake.grants.load(Ordering::SeqCst),
        1,
        "one token for both"
    );
    // 50 minutes on, the token (3599 s) still has more than the margin.
    now.fetch_add(50 * 60 * 1000, Ordering::SeqCst);
    assert!(sent(&send("m:3").await));
    assert_eq!(fcm.fake.grants.load(Ordering::SeqCst), 1);
    // 56 minutes on, it is replaced before it expires.
    now.fetch_add(6 * 60 * 1000, Ordering::SeqCst);
    assert!(sent(&send("m:4").await));
    assert_eq!(fcm.fake.grants.load(Ordering::SeqCst), 2);

    // FCM revokes the token: one new grant, the send goes through.
    for token in fcm.fake.tokens.lock().unwrap().iter_mut() {
        token.1 = true;
    }
    let sends_before = fcm.fake.sends.lock().unwrap().len();
    assert!(sent(&send("m:5").await));
    assert_eq!(fcm.fake.grants.load(Ordering::SeqCst), 3);
    assert_eq!(fcm.fake.sends.lock().unwrap().len(), sends_before + 2);

    // A token FCM refuses however fresh: one retry, then a failure, not a
    // loop.
    fcm.fake.refuse_all.store(true, Ordering::SeqCst);
    let sends_before = fcm.fake.sends.lock().unwrap().len();
    let grants_before = fcm.fake.grants.load(Ordering::SeqCst);
    let outcome = send("m:6").await;
    assert_fail(&outcome, "401 UNAUTHENTICATED");
    assert_eq!(fcm.fake.sends.lock().unwrap().len(), sends_before + 2);
    assert_eq!(fcm.fake.grants.load(Ordering::SeqCst), grants_before + 1);
}

#[tokio::test]
async fn fcm_classifies_its_documented_errors() {
    let fcm = fake_fcm().await;
    let (_, clock) = test_clock();
    let provider = fcm_provider(&fcm, clock);
    let push = |to: &str, id: &str| message("push", to, id, 1);

    let gone = provider
        .deliver(&push("device-token-bob", "welcome:bob:1:0"))
        .await;
    assert_fail(&gone, "404 UNREGISTERED");
    let quota = fcm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded.",
        Some("QUOTA_EXCEEDED"),
    );
    fcm.fake.inject.push(Inject::Answer(
        StatusCode::TOO_MANY_REQUESTS,
        quota,
        Some("30"),
    ));
    let unavailable = fcm_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        Some("UNAVAILABLE"),
    );
    fcm.fake.inject.push(Inject::Answer(
        StatusCode::SERVICE_UNAVAILABLE,
        unavailable,
        Some("5"),
    ));
    let internal = fcm_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "Internal error encountered.",
        Some("INTERNAL"),
    );
    fcm.fake.inject.push(Inject::Answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        internal,
        None,
    ));
    let invalid = fcm_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        Some("INVALID_ARGUMENT"),
    );
    fcm.fake
        .inject
        .push(Inject::Answer(StatusCode::BAD_REQUEST, invalid, None));
    fcm.fake.inject.push(Inject::Stall);
    let ana = push("device-token-ana", "welcome:ana:1:0");
    assert_retry(
        &provider.deliver(&ana).await,
        "429 QUOTA_EXCEEDED",
        Some(Duration::from_secs(30)),
    );
    assert_retry(
        &provider.deliver(&ana).await,
        "503 UNAVAILABLE",
        Some(Duration::from_secs(5)),
    );
    assert_retry(&provider.deliver(&ana).await, "500 INTERNAL", None);
    assert_fail(&provider.deliver(&ana).await, "400 INVALID_ARGUMENT");
    assert_retry(&provider.deliver(&ana).await, "no answer in time", None);
    assert!(matches!(provider.deliver(&ana).await, Outcome::Sent { .. }));
    // Every attempt named the message the same way.
    let ids: Vec<Value> = fcm.fake.sends.lock().unwrap()[1..]
        .iter()
        .map(|s| s["message"]["data"]["message_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("welcome:ana:1:0"); 6]);

    let reset = resetting_server().await;
    let mut settings = toml::Table::new();
    settings.insert("service_account".into(), fcm.key_json.clone().into());
    settings.insert("base_url".into(), format!("http://{reset}").into());
    let provider = FcmProvider::from_settings(&settings, client(None)).unwrap();
    assert_retry(&provider.deliver(&ana).await, "fcm: ", None);
    // The token endpoint gone: transient too.
    settings.insert("token_url".into(), format!("http://{reset}/token").into());
    let provider = FcmProvider::from_settings(&settings, client(None)).unwrap();
    assert_retry(
        &provider.deliver(&ana).await,
        "fcm: the token endpoint",
        None,
    );
}

#[tokio::test]
async fn fcm_fails_when_the_token_endpoint_refuses_the_key() {
    let fcm = fake_fcm().await;
    // Another key under the same name: its signature does not verify.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut key: Value = serde_json::from_str(&fcm.key_json).unwrap();
    key["private_key"] = json!(stranger.serialize_pem());
    let mut settings = toml::Table::new();
    settings.insert("service_account".into(), key.to_string().into());
    settings.insert("base_url".into(), fcm.base.clone().into());
    let provider = FcmProvider::from_settings(&settings, client(None)).unwrap();
    let outcome = provider
        .deliver(&message("push", "device-token-ana", "welcome:ana:1:0", 1))
        .await;
    assert_fail(&outcome, "refused the service-account key: 400");
    assert_fail(&outcome, "invalid_grant");
    assert!(fcm.fake.sends.lock().unwrap().is_empty());
}

#[test]
fn fcm_settings_are_checked() {
    let err = |settings: &str| {
        FcmProvider::from_settings(&table(settings), client(None))
            .err()
            .unwrap()
    };
    assert!(
        err("service_account = \"/nonexistent/key.json\"")
            .contains("cannot read `/nonexistent/key.json`")
    );
    assert!(
        err("service_account = '{\"client_email\": \"x\"}'").contains("not a service-account key")
    );
    let not_rsa = json!({"client_email": "x", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "project_id": "p"});
    let mut settings = toml::Table::new();
    settings.insert("service_account".into(), not_rsa.to_string().into());
    let error = FcmProvider::from_settings(&settings, client(None))
        .err()
        .unwrap();
    assert!(error.contains("not an RSA key"), "{error}");
    assert!(err("service_account = \"{}\"\nprojekt = \"p\"").contains("projekt"));
}

// ---------------------------------------------------------------- apns

const TEAM_ID: &str = "TEAM123456";
const APNS_KEY_ID: &str = "KEY1234567";
const TOPIC: &str = "com.example.shop";
const DEVICE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// One request as the fake APNs saw it.
struct ApnsRequest {
    version: Version,
    apns_id: Option<String>,
    token: String,
    body: Value,
}

struct FakeApns {
    public_key: String,
    /// Apple's clock, against which a token's age is judged.
    now: Arc<AtomicI64>,
    seen: Mutex<Vec<ApnsRequest>>,
    inject: Injections,
}

fn apns_error(status: StatusCode, reason: &str) -> Response {
    let mut body = json!({ "reason": reason });
    if status == StatusCode::GONE {
        body["timestamp"] = json!(1_767_225_600_000_i64);
    }
    (status, axum::Json(body)).into_response()
}

/// `POST /3/device/{token}`, as APNs checks it.
async fn apns_push(
    State(fake): State<Arc<FakeApns>>,
    Path(device): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let token = header("authorization")
        .and_then(|v| v.strip_prefix("bearer ").map(str::to_string))
        .unwrap_or_default();
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    fake.seen.lock().unwrap().push(ApnsRequest {
        version,
        apns_id: header("apns-id"),
        token: token.clone(),
        body: json.clone(),
    });
    if version != Version::HTTP_2 {
        return apns_error(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "BadPath");
    }
    // The provider token: ES256, our key id, our team, less than an hour
    // old by Apple's clock.
    let Ok(jwt_header) = jsonwebtoken::decode_header(&token) else {
        return apns_error(StatusCode::FORBIDDEN, "MissingProviderToken");
    };
    if jwt_header.alg != Algorithm::ES256 || jwt_header.kid.as_deref() != Some(APNS_KEY_ID) {
        return apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken");
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_issuer(&[TEAM_ID]);
    let key = DecodingKey::from_ec_pem(fake.public_key.as_bytes()).unwrap();
    let Ok(claims) = jsonwebtoken::decode::<Value>(&token, &key, &validation) else {
        return apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken");
    };
    let issued = claims.claims["iat"].as_i64().unwrap_or(0);
    if fake.now.load(Ordering::SeqCst) / 1000 - issued > 3600 {
        return apns_error(StatusCode::FORBIDDEN, "ExpiredProviderToken");
    }
    match header("apns-topic").as_deref() {
        None => return apns_error(StatusCode::BAD_REQUEST, "MissingTopic"),
        Some(TOPIC) => {}
        Some(_) => return apns_error(StatusCode::BAD_REQUEST, "DeviceTokenNotForTopic"),
    }
    if header("apns-push-type").as_deref() != Some("alert") {
        return apns_error(StatusCode::BAD_REQUEST, "InvalidPushType");
    }
    let apns_id = header("apns-id");
    if apns_id
        .as_deref()
        .is_some_and(|id| uuid::Uuid::try_parse(id).is_err())
    {
        return apns_error(StatusCode::BAD_REQUEST, "BadMessageId");
    }
    if let Some(injected) = fake.inject.next().await {
        return injected;
    }
    if device.starts_with("dead") {
        return apns_error(StatusCode::GONE, "Unregistered");
    }
    if device.len() != 64 || !device.bytes().all(|b| b.is_ascii_hexdigit()) {
        return apns_error(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    if body.len() > 4096 {
        return apns_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    }
    if !json["aps"].is_object() {
        return apns_error(StatusCode::BAD_REQUEST, "PayloadEmpty");
    }
    // Without an `apns-id`, APNs makes one up.
    let n = fake.seen.lock().unwrap().len();
    let id = apns_id.unwrap_or_else(|| uuid::Uuid::from_u128(n as u128).to_string());
    ([("apns-id", id)], StatusCode::OK).into_response()
}

/// Accepts TLS connections that speak HTTP/2 only (ALPN `h2`), as APNs.
struct TlsListener {
    tcp: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(stream) = self.tls.accept(stream).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A provider key (generated here) and the fake APNs that knows it,
/// served over TLS with a self-signed certificate.
struct Apns {
    fake: Arc<FakeApns>,
    base: String,
    key_pem: String,
    cert: rcgen::Certificate,
}

async fn fake_apns(apple_now: Arc<AtomicI64>) -> Apns {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let fake = Arc::new(FakeApns {
        public_key: key.public_key_pem(),
        now: apple_now,
        seen: Mutex::new(Vec::new()),
        inject: Injections::default(),
    });
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let private =
        rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], private)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let router = Router::new()
        .route("/3/device/{device}", post(apns_push))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Apns {
        fake,
        base: format!("https://{addr}"),
        key_pem: key.serialize_pem(),
        cert: certified.cert,
    }
}

fn apns_provider(apns: &Apns, base_url: &str, clock: Clock) -> ApnsProvider {
    let mut settings = toml::Table::new();
    settings.insert("key_id".into(), APNS_KEY_ID.into());
    settings.insert("team_id".into(), TEAM_ID.into());
    settings.insert("private_key".into(), apns.key_pem.clone().into());
    settings.insert("topic".into(), TOPIC.into());
    settings.insert("base_url".into(), base_url.into());
    ApnsProvider::from_settings(&settings, client(Some(&apns.cert)))
        .unwrap()
        .with_clock(clock)
}

#[tokio::test]
async fn apns_pushes_over_http2_with_an_es256_token_and_the_messages_uuid() {
    let (now, clock) = test_clock();
    let apns = fake_apns(now.clone()).await;
    let provider = apns_provider(&apns, &apns.base, clock);
    let id = "welcome:ana:1:0";
    let outcome = provider.deliver(&message("push", DEVICE, id, 1)).await;
    let apns_id = apns::apns_id(id).to_string();
    assert_eq!(
        outcome,
        Outcome::Sent {
            response: format!("apns-id {apns_id}")
        }
    );
    let seen = apns.fake.seen.lock().unwrap();
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[0].apns_id.as_deref(), Some(apns_id.as_str()));
    assert_eq!(
        seen[0].body,
        json!({
            "aps": {"alert": {"title": "Hello Ana", "body": "Your order has shipped"}},
            "message_id": id, "journey": "welcome", "template": "hello",
        })
    );
}

#[tokio::test]
async fn apns_signs_a_new_token_every_45_minutes_and_not_sooner() {
    let (now, clock) = test_clock();
    let apns = fake_apns(now.clone()).await;
    let provider = apns_provider(&apns, &apns.base, clock);
    let push = |id: &str| message("push", DEVICE, id, 1);
    let tokens = || {
        let seen = apns.fake.seen.lock().unwrap();
        let mut tokens: Vec<String> = seen.iter().map(|r| r.token.clone()).collect();
        tokens.dedup();
        tokens.len()
    };
    assert!(matches!(
        provider.deliver(&push("m:1")).await,
        Outcome::Sent { .. }
    ));
    now.fetch_add(30 * 60 * 1000, Ordering::SeqCst);
    assert!(matches!(
        provider.deliver(&push("m:2")).await,
        Outcome::Sent { .. }
    ));
    assert_eq!(tokens(), 1, "Apple refuses refreshes within 20 minutes");
    now.fetch_add(16 * 60 * 1000, Ordering::SeqCst);
    assert!(matches!(
        provider.deliver(&push("m:3")).await,
        Outcome::Sent { .. }
    ));
    assert_eq!(tokens(), 2, "a token 46 minutes old is replaced");
}

#[tokio::test]
async fn apns_retries_429_and_5xx_with_one_apns_id_and_fails_what_never_works() {
    let (now, clock) = test_clock();
    // Apple's clock, apart from ours.
    let apple_now = Arc::new(AtomicI64::new(now.load(Ordering::SeqCst)));
    let apns = fake_apns(apple_now).await;
    let provider = apns_provider(&apns, &apns.base, clock.clone());
    let id = "welcome:ana:1:0";
    let reason = |r: &str| json!({ "reason": r });
    apns.fake.inject.push(Inject::Answer(
        StatusCode::TOO_MANY_REQUESTS,
        reason("TooManyProviderTokenUpdates"),
        Some("60"),
    ));
    apns.fake.inject.push(Inject::Answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        reason("InternalServerError"),
        None,
    ));
    apns.fake.inject.push(Inject::Answer(
        StatusCode::SERVICE_UNAVAILABLE,
        reason("ServiceUnavailable"),
        None,
    ));
    apns.fake.inject.push(Inject::Stall);
    assert_retry(
        &provider.deliver(&message("push", DEVICE, id, 1)).await,
        "429 TooManyProviderTokenUpdates",
        Some(Duration::from_secs(60)),
    );
    assert_retry(
        &provider.deliver(&message("push", DEVICE, id, 2)).await,
        "500 InternalServerError",
        None,
    );
    assert_retry(
        &provider.deliver(&message("push", DEVICE, id, 3)).await,
        "503 ServiceUnavailable",
        None,
    );
    assert_retry(
        &provider.deliver(&message("push", DEVICE, id, 4)).await,
        "no answer in time",
        None,
    );
    assert!(matches!(
        provider.deliver(&message("push", DEVICE, id, 5)).await,
        Outcome::Sent { .. }
    ));
    {
        let seen = apns.fake.seen.lock().unwrap();
        let ids: Vec<_> = seen.iter().map(|r| r.apns_id.clone().unwrap()).collect();
        assert_eq!(ids, vec![apns::apns_id(id).to_string(); 5]);
    }

    let unregistered = format!("dead{}", &DEVICE[4..]);
    assert_fail(
        &provider
            .deliver(&message("push", &unregistered, "m:b", 1))
            .await,
        "410 Unregistered",
    );
    assert_fail(
        &provider.deliver(&message("push", "abcd", "m:c", 1)).await,
        "400 BadDeviceToken",
    );
    assert_fail(
        &provider
            .deliver(&message("push", "not/a/token", "m:d", 1))
            .await,
        "not a device token",
    );

    // Apple's clock two hours ahead: the token is expired there, a new one
    // is too; one retry, then a failure.
    apns.fake.now.fetch_add(2 * 3600 * 1000, Ordering::SeqCst);
    let before = apns.fake.seen.lock().unwrap().len();
    assert_fail(
        &provider.deliver(&message("push", DEVICE, "m:e", 1)).await,
        "403 ExpiredProviderToken",
    );
    assert_eq!(apns.fake.seen.lock().unwrap().len(), before + 2);

    // A key APNs does not know.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut settings = toml::Table::new();
    settings.insert("key_id".into(), APNS_KEY_ID.into());
    settings.insert("team_id".into(), TEAM_ID.into());
    settings.insert("private_key".into(), other.serialize_pem().into());
    settings.insert("topic".into(), TOPIC.into());
    settings.insert("base_url".into(), apns.base.clone().into());
    apns.fake
        .now
        .store(journey::service::core::wall_ms(), Ordering::SeqCst);
    let stranger = ApnsProvider::from_settings(&settings, client(Some(&apns.cert))).unwrap();
    assert_fail(
        &stranger.deliver(&message("push", DEVICE, "m:f", 1)).await,
        "403 InvalidProviderToken",
    );

    let reset = resetting_server().await;
    let provider = apns_provider(&apns, &format!("https://{reset}"), clock);
    assert_retry(
        &provider.deliver(&message("push", DEVICE, id, 6)).await,
        "apns: ",
        None,
    );
}

#[test]
fn apns_settings_are_checked() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let settings = |base_url: &str, private_key: &str| {
        let mut s = toml::Table::new();
        s.insert("key_id".into(), APNS_KEY_ID.into());
        s.insert("team_id".into(), TEAM_ID.into());
        s.insert("private_key".into(), private_key.into());
        s.insert("topic".into(), TOPIC.into());
        s.insert("base_url".into(), base_url.into());
        ApnsProvider::from_settings(&s, client(None)).err()
    };
    let pem = key.serialize_pem();
    assert!(settings("https://api.sandbox.push.apple.com", &pem).is_none());
    assert!(
        settings("http://127.0.0.1:1", &pem)
            .unwrap()
            .contains("HTTP/2 over TLS only")
    );
    assert!(
        settings("https://x", "/nonexistent/AuthKey.p8")
            .unwrap()
            .contains("cannot read")
    );
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    assert!(
        settings("https://x", &rsa.serialize_pem())
            .unwrap()
            .contains("not an EC P-256 key")
    );
}
