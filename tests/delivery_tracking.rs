//! Tracking, unsubscribe and the in-app inbox against the real `journey
//! serve` binary (SERVICE.md §6): a click redirects and the journey waiting
//! for it goes on; a one-click unsubscribe journals the opt-out, so the
//! next email is suppressed; tampered and foreign tokens are 404s that
//! journal nothing; the open pixel is a 1×1 GIF; an `in_app` send reaches
//! the customer's inbox through the delivery engine, which lists, marks
//! read and dismisses with the customer's token only, and its messages
//! expire.
//!
//! The links are made as the SMTP provider makes them: the send action from
//! the feed, decorated by [`Tracking`] with the deployment's secret. The
//! inbox's messages are kept by [`InboxProvider`] in the data directory
//! while the service is stopped (the redb file has one owner at a time),
//! as the delivery engine keeps them while it runs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journey::service::config::Config;
use journey::service::core::wall_ms;
use journey::service::delivery::inbox::{InboxKeys, InboxProvider, InboxStore};
use journey::service::delivery::tracking::{Claims, Kind, Tracking};
use journey::service::delivery::{EmailDecorator, Outcome};
use journey::service::storage::{InboxRecord, RedbStorage, Storage};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

#[path = "support/links.rs"]
mod links;
use links::{links, message_of};

const TRACKING_SECRET: &str = "tracking-secret-0123456789";
const INBOX_SECRET: &str = "inbox-secret-0123456789";

const PROJECT: &str = r#"
template sale {
  channel email
  subject "Sale"
  body "Our sale: https://shop.example/sale"
  html "<html><body><p>Hi {{ profile.first_name }}</p><a href='https://shop.example/sale?a=1&amp;b=2'>Sale</a> <a href='mailto:help@shop.example'>help</a> <a href='%unsubscribe_url%'>unsubscribe</a></body></html>"
}
template thanks { channel email  subject "Thanks"  body "Thanks for looking" }
template nudge { channel email  subject "Still there?"  body "The sale ends soon" }
template issue { channel email  subject "News"  body "This week" }
template digest { channel email  subject "Digest"  body "The month" }
template hello { channel in_app  subject "Welcome"  body "Tap to start" }
template read_it { channel email  subject "Glad you read it"  body "More" }
template unread { channel email  subject "You have a message"  body "Open the app" }

journey promo {
  trigger promo_started
  send email sale as sale
  wait for sale.clicked within 1d {
    send email thanks
  } else {
    send email nudge
  }
}

journey newsletter {
  trigger issue_published
  send email issue
}

journey monthly {
  trigger digest_ready
  send email digest
}

journey welcome {
  trigger signed_up
  send in_app hello as hello
  wait for hello.opened within 1d {
    send email read_it
  } else {
    send email unread
  }
}
"#;

const T0: &str = "2026-03-02T10:00:00Z";

/// The project, the config and a started service (`--clock events`).
struct Setup {
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
    server: Server,
    tracking: Tracking,
}

fn config_text() -> String {
    format!(
        "[checkpoint]\nevery = \"1h\"\n\n[tracking]\nbase_url = \"https://t.shop.example\"\n\
         secret = \"{TRACKING_SECRET}\"\n\n[inbox]\nsecret = \"{INBOX_SECRET}\"\n\n\
         [channels.in_app]\nprovider = \"inbox\"\nttl = \"1h\"\n"
    )
}

fn setup(name: &str) -> Setup {
    let dir = scratch(&format!("tracking-{name}"));
    std::fs::create_dir_all(dir.join("project")).expect("project dir");
    std::fs::write(dir.join("project/shop.journey"), PROJECT).expect("project");
    let config = dir.join("serve.toml");
    std::fs::write(&config, config_text()).expect("config");
    let server = start(&dir, &config);
    let parsed = Config::parse(&config_text(), &|_| None).expect("the config parses");
    let tracking = parsed
        .tracking()
        .expect("[tracking] checks")
        .expect("[tracking] is set");
    Setup {
        dir,
        config,
        server,
        tracking,
    }
}

fn start(dir: &Path, config: &Path) -> Server {
    Server::start(
        &dir.join("project"),
        &dir.join("data"),
        2,
        &["--config", config.to_str().expect("a UTF-8 path")],
    )
}

fn post(server: &Server, path: &str, body: Value) {
    let answer = server.post(path, &body).expect("accepted");
    assert_eq!(answer["success"], true, "{answer}");
}

/// A track event of `user` at `at`, applied (the clock moves to it, which
/// waits for every partition to apply what came before).
fn track(server: &Server, user: &str, event: &str, at: &str) {
    post(
        server,
        "/v1/track",
        json!({"userId": user, "event": event, "timestamp": at}),
    );
    clock(server, at);
}

fn clock(server: &Server, to: &str) {
    server
        .post("/admin/clock", &json!({ "to": to }))
        .expect("the clock moves");
}

/// The feed's actions, parsed.
fn feed(server: &Server) -> Vec<Value> {
    server
        .feed()
        .iter()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

fn sends_of<'a>(actions: &'a [Value], user: &str, template: &str) -> Vec<&'a Value> {
    actions
        .iter()
        .filter(|a| a["kind"] == "send" && a["user_id"] == user && a["template"] == template)
        .collect()
}

/// A client that reports redirects instead of following them.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build()
}

/// Status, headers asked for, and the body's bytes.
fn get_raw(base: &str, path: &str, want: &[&str]) -> (u16, Vec<Option<String>>, Vec<u8>) {
    answer(agent().get(&format!("{base}{path}")).call(), want)
}

fn post_form(base: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, bytes) = answer(
        agent()
            .post(&format!("{base}{path}"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(body),
        &[],
    );
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn answer(
    result: Result<ureq::Response, ureq::Error>,
    want: &[&str],
) -> (u16, Vec<Option<String>>, Vec<u8>) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("no answer: {e}"),
    };
    let status = response.status();
    let headers = want
        .iter()
        .map(|h| response.header(h).map(str::to_string))
        .collect();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("a body");
    (status, headers, bytes)
}

/// `journey_journal_entries` from `/metrics`: what has been journaled.
fn journal_entries(server: &Server) -> u64 {
    let text = ureq::get(&format!("{}/metrics", server.base))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("journey_journal_entries "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(|n| n as u64)
        .unwrap_or_else(|| panic!("journey_journal_entries in {text}"))
}

#[test]
fn a_click_redirects_and_the_journey_waiting_for_it_goes_on() {
    let s = setup("click");
    post(
        &s.server,
        "/v1/identify",
        json!({"userId": "ana", "traits": {"email": "ana@example.com", "first_name": "Ana"}, "timestamp": T0}),
    );
    track(&s.server, "ana", "promo_started", "2026-03-02T10:00:01Z");
    let actions = feed(&s.server);
    let sale = sends_of(&actions, "ana", "sale");
    assert_eq!(sale.len(), 1, "{actions:?}");
    let (html, unsubscribe) = s.tracking.decorate(
        &message_of(sale[0]),
        sale[0]["html"].as_str().map(str::to_string),
    );
    let html = html.expect("the email has HTML");
    assert!(unsubscribe.is_some_and(|u| u.starts_with("https://t.shop.example/u/")));
    assert!(html.contains("mailto:help@shop.example"), "{html}");
    assert_eq!(links(&html, "/u/").len(), 1, "the placeholder: {html}");
    let clicks = links(&html, "/t/c/");
    assert_eq!(clicks.len(), 1, "{html}");

    let (status, headers, _) =
        get_raw(&s.server.base, &clicks[0], &["Location", "Referrer-Policy"]);
    assert_eq!(status, 302);
    assert_eq!(
        headers[0].as_deref(),
        Some("https://shop.example/sale?a=1&b=2"),
        "the link as the browser read it"
    );
    assert_eq!(headers[1].as_deref(), Some("no-referrer"));
    // The same link again still redirects; it is the same `messageId`.
    let (again, _, _) = get_raw(&s.server.base, &clicks[0], &[]);
    assert_eq!(again, 302);

    clock(&s.server, "2026-03-04T00:00:00Z");
    let actions = feed(&s.server);
    assert_eq!(sends_of(&actions, "ana", "thanks").len(), 1, "{actions:?}");
    assert_eq!(sends_of(&actions, "ana", "nudge").len(), 0, "{actions:?}");
    let (_, view) = s.server.get("/admin/users/ana", None);
    let promo = view["journeys"]
        .as_array()
        .and_then(|js| js.iter().find(|j| j["journey"] == "promo"))
        .unwrap_or_else(|| panic!("{view}"));
    assert_eq!(promo["state"], "ended", "{view}");
}

#[test]
fn a_one_click_unsubscribe_suppresses_the_next_email() {
    let s = setup("unsubscribe");
    post(
        &s.server,
        "/v1/identify",
        json!({"userId": "bob", "traits": {"email": "bob@example.com"}, "timestamp": T0}),
    );
    track(&s.server, "bob", "issue_published", "2026-03-02T10:00:01Z");
    let actions = feed(&s.server);
    let issue = sends_of(&actions, "bob", "issue");
    assert_eq!(issue.len(), 1, "{actions:?}");
    let (_, unsubscribe) = s.tracking.decorate(&message_of(issue[0]), None);
    let path = unsubscribe
        .expect("an unsubscribe URL")
        .strip_prefix("https://t.shop.example")
        .expect("under base_url")
        .to_string();

    // The page asks first, and records nothing.
    let before = journal_entries(&s.server);
    let (status, headers, page) = get_raw(&s.server.base, &path, &["Content-Type"]);
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers[0].as_deref(), Some("text/html; charset=utf-8"));
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("email"), "{page}");
    assert!(
        page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{page}"
    );
    let (status, _) = post_form(&s.server.base, &path, "something=else");
    assert_eq!(status, 400, "a POST without RFC 8058's body");
    assert_eq!(journal_entries(&s.server), before, "nothing journaled yet");

    // RFC 8058: what a mail client's one-click sends.
    let (status, page) = post_form(&s.server.base, &path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("unsubscribed"), "{page}");
    assert_eq!(
        journal_entries(&s.server),
        before + 2,
        "the identify and `message.unsubscribed`"
    );

    // RFC 8058 prefers multipart/form-data: the same, journaled again (the
    // event's `messageId` is the same; the runtime ignores it).
    let multipart = |value: &str| {
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
             {value}\r\n--XyZ--\r\n"
        );
        answer(
            agent()
                .post(&format!("{}{path}", s.server.base))
                .set("Content-Type", "multipart/form-data; boundary=XyZ")
                .send_string(&body),
            &[],
        )
        .0
    };
    assert_eq!(multipart("Two-Clicks"), 400);
    assert_eq!(journal_entries(&s.server), before + 2);
    assert_eq!(multipart("One-Click"), 200);
    assert_eq!(journal_entries(&s.server), before + 4);

    let (_, view) = s.server.get("/admin/users/bob", None);
    assert_eq!(view["profile"]["consent.email"], false, "{view}");
    track(&s.server, "bob", "digest_ready", "2026-03-02T11:00:00Z");
    let actions = feed(&s.server);
    assert_eq!(sends_of(&actions, "bob", "digest").len(), 0, "{actions:?}");
    let suppressed: Vec<_> = actions
        .iter()
        .filter(|a| a["kind"] == "suppress" && a["user_id"] == "bob")
        .collect();
    assert_eq!(suppressed.len(), 1, "{actions:?}");
    assert_eq!(suppressed[0]["template"], "digest");
    assert_eq!(suppressed[0]["reason"], "unreachable");
}

#[test]
fn tampered_and_foreign_tokens_are_404s_that_change_nothing() {
    let s = setup("tampered");
    post(
        &s.server,
        "/v1/identify",
        json!({"userId": "cy", "traits": {"email": "cy@example.com"}, "timestamp": T0}),
    );
    track(&s.server, "cy", "promo_started", "2026-03-02T10:00:01Z");
    let actions = feed(&s.server);
    let sale = sends_of(&actions, "cy", "sale")[0].clone();
    let message = message_of(&sale);
    let foreign = Tracking::new(
        &journey::service::config::Config::parse(
            &config_text().replace(TRACKING_SECRET, "another-secret-0123456789"),
            &|_| None,
        )
        .expect("parses")
        .tracking
        .expect("set"),
    )
    .expect("checks");
    let click = Claims::of(Kind::Click, &message, Some("https://shop.example/sale"));
    let evil = Claims::of(Kind::Click, &message, Some("https://evil.example/"));
    let open = Claims::of(Kind::Open, &message, None);
    let unsubscribe = Claims::of(Kind::Unsubscribe, &message, None);
    let good_click = s.tracking.token(&click);
    let flipped = |token: &str, at: usize| {
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        String::from_utf8(bytes).expect("ASCII")
    };
    // The payload of the evil URL under the good click's tag.
    let spliced = format!(
        "{}.{}",
        s.tracking.token(&evil).split_once('.').expect("a dot").0,
        good_click.split_once('.').expect("a dot").1
    );
    let paths = vec![
        format!("/t/c/{}", flipped(&good_click, 3)),
        format!("/t/c/{}", flipped(&good_click, good_click.len() - 2)),
        format!("/t/c/{}", &good_click[..good_click.len() - 5]),
        format!("/t/c/{spliced}"),
        format!("/t/c/{}", foreign.token(&click)),
        format!("/t/c/{}", s.tracking.token(&open)),
        format!("/t/o/{}", foreign.token(&open)),
        format!("/t/o/{}", flipped(&s.tracking.token(&open), 10)),
        format!("/u/{}", s.tracking.token(&open)),
        format!("/u/{}", foreign.token(&unsubscribe)),
        "/t/c/not-a-token".to_string(),
        "/u/".to_string(),
    ];
    // Delivery records the (logged) email on its own time: the view is
    // taken once it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let before_view = loop {
        let (_, view) = s.server.get("/admin/users/cy", None);
        let recorded = view["deliveries"].as_array().is_some_and(|d| !d.is_empty());
        if recorded || std::time::Instant::now() > deadline {
            break view;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let before_entries = journal_entries(&s.server);
    let before_feed = s.server.feed();
    for path in &paths {
        let (status, headers, _) = get_raw(&s.server.base, path, &["Location"]);
        assert_eq!(status, 404, "GET {path}");
        assert_eq!(headers[0], None, "no redirect from {path}");
        if path.starts_with("/u/") {
            let (status, _) = post_form(&s.server.base, path, "List-Unsubscribe=One-Click");
            assert_eq!(status, 404, "POST {path}");
        }
    }
    assert_eq!(
        journal_entries(&s.server),
        before_entries,
        "nothing journaled"
    );
    assert_eq!(s.server.feed(), before_feed);
    let (_, after_view) = s.server.get("/admin/users/cy", None);
    assert_eq!(after_view, before_view);
    // The good token works: the tampered ones were refused for their
    // tampering only.
    let (status, _, _) = get_raw(&s.server.base, &format!("/t/c/{good_click}"), &[]);
    assert_eq!(status, 302);
    assert_eq!(journal_entries(&s.server), before_entries + 1);
}

#[test]
fn the_open_pixel_is_a_one_pixel_gif_and_journals_the_open() {
    let s = setup("pixel");
    post(
        &s.server,
        "/v1/identify",
        json!({"userId": "dan", "traits": {"email": "dan@example.com"}, "timestamp": T0}),
    );
    track(&s.server, "dan", "promo_started", "2026-03-02T10:00:01Z");
    let actions = feed(&s.server);
    let sale = sends_of(&actions, "dan", "sale")[0].clone();
    let (html, _) = s.tracking.decorate(
        &message_of(&sale),
        sale["html"].as_str().map(str::to_string),
    );
    let html = html.expect("HTML");
    let opens = links(&html, "/t/o/");
    assert_eq!(opens.len(), 1, "{html}");
    assert!(
        html.find("/t/o/") < html.find("</body>"),
        "the pixel is inside the body: {html}"
    );
    let before = journal_entries(&s.server);
    let (status, headers, bytes) = get_raw(
        &s.server.base,
        &opens[0],
        &["Content-Type", "Cache-Control"],
    );
    assert_eq!(status, 200);
    assert_eq!(headers[0].as_deref(), Some("image/gif"));
    assert!(
        headers[1]
            .as_deref()
            .is_some_and(|c| c.contains("no-cache") && c.contains("no-store")),
        "{headers:?}"
    );
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes.as_slice()).expect("a GIF");
    assert_eq!((decoder.width(), decoder.height()), (1, 1));
    let frame = decoder
        .read_next_frame()
        .expect("a frame decodes")
        .expect("one frame");
    assert_eq!(
        frame.buffer.as_ref(),
        &[0, 0, 0, 0],
        "one transparent pixel"
    );
    assert_eq!(journal_entries(&s.server), before + 1, "`message.opened`");
}

/// The customer's inbox through the API, with `token`.
fn inbox(server: &Server, user: &str, token: Option<&str>) -> (u16, Value) {
    server.get(&format!("/v1/inbox/{user}"), token)
}

fn inbox_post(server: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = ureq::post(&format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let (status, _, bytes) = answer(request.call(), &[]);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn listed(answer: &Value) -> Vec<String> {
    answer["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["message_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The inbox token as docs/tracking.md tells an app's back end to make
/// it: with Python (on every machine of this project; its absence is said,
/// and is a failure in CI) and with `openssl` where it is installed.
fn documented_tokens(secret: &str, user: &str) -> Vec<String> {
    let one_liners = [
        (
            "python3",
            "python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), \
             sys.argv[2].encode(), hashlib.sha256).hexdigest())' \"$JOURNEY_INBOX_SECRET\" \
             \"$USER_KEY\"",
        ),
        (
            "openssl",
            "printf %s \"$USER_KEY\" | openssl dgst -sha256 -hmac \"$JOURNEY_INBOX_SECRET\" \
             | sed 's/^.*= //'",
        ),
    ];
    let mut out = Vec::new();
    for (tool, line) in one_liners {
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .env("USER_KEY", user)
            .env("JOURNEY_INBOX_SECRET", secret)
            .output();
        match run {
            Ok(o) if o.status.success() && !o.stdout.is_empty() => {
                out.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
            }
            _ if tool == "python3" && std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI must have `python3` to check the documented inbox token")
            }
            _ => eprintln!("skipping the documented `{tool}` one-liner: `{tool}` did not run"),
        }
    }
    out
}

#[test]
fn the_inbox_lists_marks_and_dismisses_for_its_customer_only_and_expires() {
    let s = setup("inbox");
    post(
        &s.server,
        "/v1/identify",
        json!({"userId": "eve", "traits": {"email": "eve@example.com", "push_token": "device-1"}, "timestamp": T0}),
    );
    track(&s.server, "eve", "signed_up", "2026-03-02T10:00:01Z");
    let actions = feed(&s.server);
    let hello = sends_of(&actions, "eve", "hello")[0].clone();
    let hello_id = hello["message_id"].as_str().expect("an id").to_string();
    // The delivery engine keeps the send in eve's inbox (`[channels.in_app]
    // provider = "inbox"`).
    let keys = InboxKeys::new(&journey::service::config::Inbox {
        secret: INBOX_SECRET.into(),
    })
    .expect("keys");
    let token = keys.token("eve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed(&inbox(&s.server, "eve", Some(&token)).1) != vec![hello_id.clone()] {
        assert!(
            Instant::now() < deadline,
            "the send never reached the inbox"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.server.stop(), Some(0));
    let Setup { dir, config, .. } = s;

    // A second message is kept to expire a few seconds from now, by the
    // provider itself while the service is stopped (the redb file has one
    // owner at a time); and one already expired.
    let expiring_in = Duration::from_secs(8);
    let expires_at = Instant::now() + expiring_in;
    {
        let storage: Arc<dyn Storage> =
            Arc::new(RedbStorage::open(&dir.join("data")).expect("the data directory opens"));
        let settings: toml::Table = toml::from_str("ttl = \"1h\"").expect("settings");
        let inboxes: Arc<dyn InboxStore> = Arc::new(storage.clone());
        let provider = InboxProvider::from_settings(&settings, inboxes).expect("inbox");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let again = runtime.block_on(provider.keep(&message_of(&hello), wall_ms()));
        assert_eq!(
            again,
            Outcome::Sent {
                response: "already in the inbox".into()
            },
            "a repeated delivery changes nothing"
        );
        let now = wall_ms();
        let mut soon = message_of(&hello);
        soon.message_id = "later:eve:1:0".into();
        soon.committed_ms = now - 3_600_000 + expiring_in.as_millis() as i64;
        assert!(matches!(
            runtime.block_on(provider.keep(&soon, now + 1)),
            Outcome::Sent { .. }
        ));
        // One already expired: never listed.
        let gone = InboxRecord {
            user_key: "eve".into(),
            message_id: "old:eve:1:0".into(),
            sent_ms: now - 10,
            expires_ms: now - 5,
            read_ms: None,
            dismissed_ms: None,
            content: b"{}".to_vec(),
        };
        storage.inbox_keep(&gone, 100, now - 20).expect("kept");
    }
    let server = start(&dir, &config);
    for documented in documented_tokens(INBOX_SECRET, "eve") {
        assert_eq!(
            documented, token,
            "docs/tracking.md's one-liners make the token the service checks"
        );
    }

    let (status, answer) = inbox(&server, "eve", Some(&token));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        listed(&answer),
        vec!["later:eve:1:0".to_string(), hello_id.clone()],
        "newest first, the expired one left out: {answer}"
    );
    let first = &answer["messages"][1];
    assert_eq!(first["subject"], "Welcome");
    assert_eq!(first["body"], "Tap to start");
    assert_eq!(first["journey"], "welcome");
    assert_eq!(first["read_at"], Value::Null);

    // Only eve's token opens eve's inbox.
    for bad in [
        None,
        Some("0".repeat(64)),
        Some(keys.token("mallory")),
        Some(token.to_uppercase()),
    ] {
        let (status, _) = inbox(&server, "eve", bad.as_deref());
        assert_eq!(status, 401, "{bad:?}");
    }
    let before = journal_entries(&server);
    let read = format!("/v1/inbox/eve/{hello_id}/read");
    let (status, _) = inbox_post(&server, &read, Some(&keys.token("mallory")));
    assert_eq!(status, 401);
    let (status, _) = inbox_post(&server, "/v1/inbox/eve/nope/read", Some(&token));
    assert_eq!(status, 404);
    let (status, _) = inbox_post(
        &server,
        &format!("/v1/inbox/eve/{hello_id}/frobnicate"),
        Some(&token),
    );
    assert_eq!(status, 404);
    assert_eq!(
        journal_entries(&server),
        before,
        "refused calls journal nothing"
    );

    let (status, answer) = inbox_post(&server, &read, Some(&token));
    assert_eq!(status, 200, "{answer}");
    assert!(answer["message"]["read_at"].is_string(), "{answer}");
    assert_eq!(journal_entries(&server), before + 1, "`message.opened`");
    // The journey waiting for the open goes on.
    clock(&server, "2026-03-04T00:00:00Z");
    let actions = feed(&server);
    assert_eq!(sends_of(&actions, "eve", "read_it").len(), 1, "{actions:?}");
    assert_eq!(sends_of(&actions, "eve", "unread").len(), 0, "{actions:?}");

    let (status, _) = inbox_post(
        &server,
        &format!("/v1/inbox/eve/{hello_id}/dismiss"),
        Some(&token),
    );
    assert_eq!(status, 200);
    let (_, answer) = inbox(&server, "eve", Some(&token));
    assert_eq!(
        listed(&answer),
        vec!["later:eve:1:0".to_string()],
        "{answer}"
    );

    // The other expires.
    std::thread::sleep(
        expires_at.saturating_duration_since(Instant::now()) + Duration::from_millis(300),
    );
    let (_, answer) = inbox(&server, "eve", Some(&token));
    assert_eq!(listed(&answer), Vec::<String>::new(), "{answer}");
    let (status, _) = inbox_post(&server, "/v1/inbox/eve/later:eve:1:0/read", Some(&token));
    assert_eq!(status, 404, "an expired message cannot be marked");
}

#[test]
fn check_config_names_what_is_wrong_in_tracking_and_inbox() {
    let dir = scratch("tracking-check-config");
    std::fs::create_dir_all(dir.join("project")).expect("project dir");
    std::fs::write(dir.join("project/shop.journey"), PROJECT).expect("project");
    let cases = [
        (config_text(), 0, "valid"),
        (
            config_text().replace("https://t.shop.example", "t.shop.example"),
            2,
            "tracking.base_url",
        ),
        (
            config_text().replace(TRACKING_SECRET, "short"),
            2,
            "tracking.secret",
        ),
        (
            config_text().replace(INBOX_SECRET, "short"),
            2,
            "inbox.secret",
        ),
        (
            config_text().replace("\n[inbox]", "opt_out = \"everything\"\n\n[inbox]"),
            2,
            "tracking.opt_out",
        ),
        (
            config_text().replace("[inbox]\n", "[inbox]\nttl = \"1d\"\n"),
            2,
            "ttl",
        ),
    ];
    for (text, code, words) in cases {
        let path = dir.join("serve.toml");
        std::fs::write(&path, &text).expect("config");
        let output = std::process::Command::new(server::bin())
            .arg("serve")
            .arg(dir.join("project"))
            .arg("--config")
            .arg(&path)
            .arg("--check-config")
            .output()
            .expect("journey runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{text}\n{stderr}");
        assert!(stderr.contains(words), "{words}: {stderr}");
        assert!(
            !stderr.contains(TRACKING_SECRET) && !stderr.contains(INBOX_SECRET),
            "no secret in {stderr}"
        );
    }
}

/// Waits (long polls) until the feed holds a send of `template` to `user`.
fn await_send(server: &Server, user: &str, template: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(send) = sends_of(&feed(server), user, template).first() {
            return (*send).clone();
        }
        assert!(Instant::now() < deadline, "no `{template}` send to {user}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn with_the_wall_clock_a_click_is_stamped_now_and_the_journey_goes_on() {
    let dir = scratch("tracking-wall");
    std::fs::create_dir_all(dir.join("project")).expect("project dir");
    std::fs::write(dir.join("project/shop.journey"), PROJECT).expect("project");
    let config = dir.join("serve.toml");
    std::fs::write(&config, config_text()).expect("config");
    let server = Server::start_with(
        &dir.join("project"),
        &dir.join("data"),
        &["--config", config.to_str().expect("a UTF-8 path")],
    );
    let tracking = Config::parse(&config_text(), &|_| None)
        .expect("parses")
        .tracking()
        .expect("checks")
        .expect("set");
    // No timestamps: ingest stamps them with the wall clock, as it stamps
    // the click.
    post(
        &server,
        "/v1/identify",
        json!({"userId": "fay", "traits": {"email": "fay@example.com"}}),
    );
    post(
        &server,
        "/v1/track",
        json!({"userId": "fay", "event": "promo_started"}),
    );
    let sale = await_send(&server, "fay", "sale");
    let (html, _) = tracking.decorate(
        &message_of(&sale),
        sale["html"].as_str().map(str::to_string),
    );
    let clicks = links(&html.expect("HTML"), "/t/c/");
    let (status, _, _) = get_raw(&server.base, &clicks[0], &[]);
    assert_eq!(status, 302);
    let thanks = await_send(&server, "fay", "thanks");
    assert_eq!(thanks["journey"], "promo");
    assert!(sends_of(&feed(&server), "fay", "nudge").is_empty());
}
