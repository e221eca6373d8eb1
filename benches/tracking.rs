//! What tracking costs per email and per request (docs/tracking.md): the
//! decoration the SMTP provider asks for (every link rewritten, the pixel
//! added, the unsubscribe URL made) on a typical marketing email, and the
//! verification of a click token that each `/t/c/` request does.
//!
//! `cargo bench --bench tracking` (`JOURNEY_BENCH_EMAILS`, default 20,000).

use std::time::Instant;

use journey::service::config;
use journey::service::delivery::tracking::{Claims, Kind, Tracking};
use journey::service::delivery::{EmailDecorator, Message};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A newsletter-sized email: 20 links, text between them, ~12 KB.
fn email_html() -> String {
    let mut html =
        String::from("<!doctype html><html><head><style>p{margin:0}</style></head><body><table>");
    for i in 0..20 {
        html.push_str(&format!(
            "<tr><td><h2>Item {i}</h2><p>{}</p><a href=\"https://shop.example/p/{i}?utm_source=mail&amp;utm_campaign=spring\">See item {i}</a></td></tr>",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(8)
        ));
    }
    html.push_str("<p><a href=\"%unsubscribe_url%\">Unsubscribe</a></p></table></body></html>");
    html
}

fn message(i: u64, html: &str) -> Message {
    Message {
        message_id: format!("newsletter:user-{i:06}:1:0"),
        user_id: format!("user-{i:06}"),
        journey: "newsletter".into(),
        template: "spring".into(),
        channel: "email".into(),
        to: serde_json::json!(format!("user-{i}@example.com")),
        subject: Some("Spring".into()),
        body: Some("text".into()),
        html: Some(html.to_string()),
        vars: serde_json::Map::new(),
        line: String::new(),
        attempt: 1,
        committed_ms: 0,
    }
}

fn main() {
    let tracking = Tracking::new(&config::Tracking {
        base_url: "https://t.shop.example".into(),
        secret: "bench-secret-0123456789abcdef".into(),
        opt_out: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let html = email_html();
    let emails = env_or("JOURNEY_BENCH_EMAILS", 20_000);
    let messages: Vec<Message> = (0..emails).map(|i| message(i, &html)).collect();

    let started = Instant::now();
    let mut bytes = 0;
    for m in &messages {
        let (out, unsubscribe) = tracking.decorate(m, m.html.clone());
        bytes += out.map_or(0, |h| h.len()) + unsubscribe.map_or(0, |u| u.len());
    }
    let took = started.elapsed();
    println!(
        "decorate: {emails} emails of {} bytes and 20 links in {:.2} s: {:.0} emails/s, {:.1} µs each ({} bytes out)",
        html.len(),
        took.as_secs_f64(),
        emails as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / emails as f64,
        bytes / emails as usize,
    );

    let tokens: Vec<String> = messages
        .iter()
        .map(|m| {
            tracking.token(&Claims::of(
                Kind::Click,
                m,
                Some("https://shop.example/p/7?utm_source=mail&utm_campaign=spring"),
            ))
        })
        .collect();
    let started = Instant::now();
    let verified = tokens
        .iter()
        .filter(|t| tracking.verify(Kind::Click, t).is_some())
        .count();
    let took = started.elapsed();
    assert_eq!(verified, tokens.len());
    println!(
        "verify: {verified} click tokens of {} chars in {:.3} s: {:.0} tokens/s",
        tokens[0].len(),
        took.as_secs_f64(),
        verified as f64 / took.as_secs_f64()
    );
}
