//! Email through the `smtp` provider (SERVICE.md §6), against the real
//! `journey serve` binary and a real SMTP server: Python's aiosmtpd
//! (tests/support/smtp_server.py), plain, with STARTTLS and AUTH, and
//! with TLS from the first byte, over a self-signed certificate made here.
//! Every expected email arrives once, with the rendered subject, text and
//! HTML parts, `Message-ID` and `X-Journey-Message-Id`; a 4xx is retried,
//! a 5xx fails and the journeys hear it.
//!
//! Needs `python3` with aiosmtpd (`pip install aiosmtpd`): without it the
//! tests say so and pass, except under `CI=true`, where they fail.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[path = "support/server.rs"]
mod server;
use server::{Server, free_port, root, scratch};

/// Whether aiosmtpd can run; under `CI=true` its absence is a failure.
fn aiosmtpd() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs aiosmtpd for the SMTP tests: `pip install aiosmtpd`"
        );
        eprintln!("skipped: no aiosmtpd; `pip install aiosmtpd` to run the SMTP tests");
    }
    found
}

/// The aiosmtpd server of one test.
struct Smtp {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Smtp {
    fn start(dir: &Path, mode: &str, tls: Option<&(PathBuf, PathBuf)>) -> Smtp {
        let port = free_port();
        let out = dir.join(format!("{mode}-emails.jsonl"));
        let mut command = Command::new("python3");
        command
            .arg(root().join("tests/support/smtp_server.py"))
            .arg(&out)
            .arg(port.to_string())
            .arg(mode);
        if let Some((cert, key)) = tls {
            command.arg(cert).arg(key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("the SMTP server says it is ready");
        assert_eq!(ready.trim(), "ready");
        Smtp { child, port, out }
    }

    fn emails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an email record"))
            .collect()
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let emails = self.emails();
            if emails.len() >= n || Instant::now() > deadline {
                return emails;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certificate for 127.0.0.1 and its key, as PEM files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

fn project(dir: &Path) -> PathBuf {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("welcome.journey"),
        r#"
template hello {
  channel email
  subject "Hello {{ profile.first_name }}"
  body "Hi {{ profile.first_name }}, welcome."
  html "<p>Hi <b>{{ profile.first_name }}</b>, welcome.</p>"
}

journey welcome {
  trigger signed_up
  send email hello
}

journey on_sent {
  trigger "message.sent"
  reentry always
  emit delivery_sent with { id: trigger.message_id }
}

journey on_failed {
  trigger "message.failed"
  reentry always
  emit delivery_failed with { id: trigger.message_id, error: trigger.error }
}
"#,
    )
    .expect("journey");
    project
}

fn serve(dir: &Path, url: &str, extra: &str) -> Server {
    let config = dir.join("journey.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.email]\nprovider = \"smtp\"\nurl = \"{url}\"\n\
             from = \"Shop <hello@shop.example>\"\nbackoff = \"200ms\"\nmax_attempts = 5\n{extra}"
        ),
    )
    .expect("config");
    Server::start_with(
        &project(dir),
        &dir.join("data"),
        &[
            "--clock",
            "wall",
            "--config",
            config.to_str().expect("utf-8"),
        ],
    )
}

/// Signs each user up, with an address at example.com.
fn sign_up(server: &Server, users: &[(&str, &str)]) {
    for (user, name) in users {
        let traits = json!({ "email": format!("{user}@example.com"), "first_name": name });
        server
            .post("/v1/identify", &json!({ "userId": user, "traits": traits }))
            .expect("identified");
        let track =
            json!({ "userId": user, "event": "signed_up", "messageId": format!("{user}-1") });
        server.post("/v1/track", &track).expect("tracked");
    }
}

/// The message id of each user's send, from the feed.
fn message_ids(server: &Server) -> BTreeMap<String, String> {
    server
        .feed()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|a| a["kind"] == "send")
        .map(|a| {
            (
                a["user_id"].as_str().unwrap_or_default().to_string(),
                a["message_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn emits(server: &Server, journey: &str) -> Vec<Value> {
    server
        .feed()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|a| a["kind"] == "emit" && a["journey"] == journey)
        .collect()
}

/// Each user's email arrived once, whole.
fn assert_delivered(emails: &[Value], ids: &BTreeMap<String, String>, users: &[(&str, &str)]) {
    for (user, name) in users {
        let to = format!("{user}@example.com");
        let mine: Vec<&Value> = emails.iter().filter(|e| e["rcpt_tos"][0] == to).collect();
        assert_eq!(mine.len(), 1, "{user}: exactly one email: {emails:?}");
        let email = mine[0];
        let id = &ids[*user];
        assert_eq!(email["mail_from"], "hello@shop.example");
        assert_eq!(email["subject"], format!("Hello {name}"));
        assert_eq!(email["content_type"], "multipart/alternative");
        assert_eq!(
            email["text"].as_str().unwrap_or_default().trim(),
            format!("Hi {name}, welcome.")
        );
        assert!(
            email["html"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("<b>{name}</b>")),
            "{email}"
        );
        assert_eq!(email["x_journey_message_id"], id.as_str());
        let hash: String = Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(email["message_id"], format!("<{hash}@shop.example>"));
        assert!(
            email["list_unsubscribe"].is_null(),
            "no tracking configured"
        );
    }
}

fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn plain_smtp_delivers_retries_a_4xx_and_fails_a_5xx() {
    if !aiosmtpd() {
        return;
    }
    let dir = scratch("delivery-smtp-plain");
    let smtp = Smtp::start(&dir, "plain", None);
    let server = serve(&dir, &format!("smtp://127.0.0.1:{}", smtp.port), "");
    let users = [("ana", "Ana"), ("bob", "Bob"), ("later", "Lee")];
    sign_up(&server, &users);
    sign_up(&server, &[("reject", "Rex")]);
    let emails = smtp.wait_for(users.len());
    assert!(wait_until(Duration::from_secs(20), || {
        emits(&server, "on_sent").len() == 3 && emits(&server, "on_failed").len() == 1
    }));
    let ids = message_ids(&server);
    assert_delivered(&emails, &ids, &users);
    for email in &emails {
        assert_eq!(email["tls"], false);
        assert!(email["login"].is_null());
    }
    // `later` got 451 twice: three attempts, one email.
    let (_, later) = server.get("/admin/users/later", None);
    let attempts = later["deliveries"][0]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let outcomes: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "sent"], "{later}");
    assert!(
        attempts[0]["response"]
            .as_str()
            .unwrap_or_default()
            .contains("451")
    );
    assert!(
        attempts[2]["response"]
            .as_str()
            .unwrap_or_default()
            .starts_with("250")
    );
    // `reject` got 550: failed at once, and the journeys heard why.
    let failed = emits(&server, "on_failed");
    let text = failed[0].to_string();
    assert!(
        text.contains(&ids["reject"]) && text.contains("550"),
        "{text}"
    );
    let (_, reject) = server.get("/admin/users/reject", None);
    assert_eq!(reject["deliveries"][0]["status"], "failed");
    assert_eq!(
        reject["deliveries"][0]["attempts"].as_array().map(Vec::len),
        Some(1)
    );
    let _ = server.stop();
}

#[test]
fn starttls_with_auth_delivers_over_tls() {
    if !aiosmtpd() {
        return;
    }
    let dir = scratch("delivery-smtp-starttls");
    let tls = certificate(&dir);
    let smtp = Smtp::start(&dir, "starttls", Some(&tls));
    let server = serve(
        &dir,
        &format!("smtp://journey:s3cret@127.0.0.1:{}", smtp.port),
        &format!("tls_ca = \"{}\"\n", tls.0.display()),
    );
    let users = [("ana", "Ana"), ("bob", "Bob")];
    sign_up(&server, &users);
    let emails = smtp.wait_for(users.len());
    assert!(wait_until(Duration::from_secs(20), || emits(
        &server, "on_sent"
    )
    .len()
        == 2));
    assert_delivered(&emails, &message_ids(&server), &users);
    for email in &emails {
        assert_eq!(email["tls"], true, "upgraded with STARTTLS");
        assert_eq!(email["login"], "journey", "authenticated");
    }
    let _ = server.stop();
}

#[test]
fn smtps_with_auth_delivers_over_tls() {
    if !aiosmtpd() {
        return;
    }
    let dir = scratch("delivery-smtp-smtps");
    let tls = certificate(&dir);
    let smtp = Smtp::start(&dir, "smtps", Some(&tls));
    let server = serve(
        &dir,
        &format!("smtps://journey:s3cret@127.0.0.1:{}", smtp.port),
        &format!("tls_ca = \"{}\"\n", tls.0.display()),
    );
    let users = [("cy", "Cy")];
    sign_up(&server, &users);
    let emails = smtp.wait_for(users.len());
    assert!(wait_until(Duration::from_secs(20), || emits(
        &server, "on_sent"
    )
    .len()
        == 1));
    assert_delivered(&emails, &message_ids(&server), &users);
    assert_eq!(emails[0]["tls"], true);
    assert_eq!(emails[0]["login"], "journey");
    let _ = server.stop();
}

#[test]
fn a_wrong_password_fails_the_send_and_never_shows_the_secret() {
    if !aiosmtpd() {
        return;
    }
    let dir = scratch("delivery-smtp-auth");
    let tls = certificate(&dir);
    let smtp = Smtp::start(&dir, "starttls", Some(&tls));
    let server = serve(
        &dir,
        &format!("smtp://journey:hunter2@127.0.0.1:{}", smtp.port),
        &format!("tls_ca = \"{}\"\n", tls.0.display()),
    );
    sign_up(&server, &[("ana", "Ana")]);
    assert!(wait_until(Duration::from_secs(20), || emits(
        &server,
        "on_failed"
    )
    .len()
        == 1));
    let failed = emits(&server, "on_failed")[0].to_string();
    assert!(failed.contains("535"), "the server's refusal: {failed}");
    let (_, ana) = server.get("/admin/users/ana", None);
    assert!(!ana.to_string().contains("hunter2"), "{ana}");
    assert!(smtp.emails().is_empty());
    let _ = server.stop();
}
