//! `journey serve --check-config` checks every provider's settings through
//! the provider registry — each provider reads its own table — and names
//! what is wrong by its key, without repeating a secret: webhook, smtp,
//! twilio, fcm, apns, inbox, meta and google_ads, and the audience tables'
//! bindings. The keys (an RSA service-account key, an APNs P-256 key) are
//! made here; files go in the test's scratch directory.

use std::path::{Path, PathBuf};

use serde_json::json;

#[path = "support/server.rs"]
mod server;
use server::scratch;

const PROJECT: &str = r#"
template hi_mail { channel email  subject "Hi"  body "Hello" }
template hi_sms { channel sms  body "Hello" }
template hi_push { channel push  subject "Hi"  body "Hello" }
template hi_app { channel in_app  subject "Hi"  body "Hello" }
template hi_hook { channel webhook  body "Hello" }

journey hello {
  trigger signed_up
  send email hi_mail
  send sms hi_sms
  send push hi_push
  send in_app hi_app
  send webhook hi_hook
  add to audience cart_retargeting until exit
  add to audience lapsed_users
}
"#;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRETS: [&str; 6] = [
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "twilio-secret-token",
    "meta-secret-token",
    "google-dev-token",
    "google-client-secret",
    "google-refresh-token",
];

struct Setup {
    dir: PathBuf,
    fcm_key: PathBuf,
    apns_key: PathBuf,
}

fn setup() -> Setup {
    let dir = scratch("delivery-check-config-all");
    std::fs::create_dir_all(dir.join("project")).unwrap();
    std::fs::write(dir.join("project/hello.journey"), PROJECT).unwrap();
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let account = json!({
        "type": "service_account", "project_id": "demo-shop", "private_key_id": "k1",
        "private_key": rsa.serialize_pem(),
        "client_email": "journey@demo-shop.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let fcm_key = dir.join("firebase-key.json");
    std::fs::write(&fcm_key, account.to_string()).unwrap();
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let apns_key = dir.join("AuthKey_KEY1234567.p8");
    std::fs::write(&apns_key, p256.serialize_pem()).unwrap();
    Setup {
        dir,
        fcm_key,
        apns_key,
    }
}

/// A config where every table is right.
fn good(s: &Setup) -> String {
    format!(
        r#"[inbox]
secret = "inbox-secret-0123456789"

[channels.webhook]
provider = "webhook"
url = "https://hooks.shop.example/journey"
secret = "{WHSEC}"

[channels.email]
provider = "smtp"
url = "smtp://127.0.0.1:2525"
from = "Shop <hello@shop.example>"

[channels.sms]
provider = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "twilio-secret-token"
from = "+15550100"
status_callback = "https://journey.shop.example/webhooks/twilio"

[channels.push]
provider = "fcm"
service_account = "{fcm}"

[channels.in_app]
provider = "inbox"
ttl = "7d"

[audiences.meta]
provider = "meta"
access_token = "meta-secret-token"
audiences = {{ cart_retargeting = "23850001" }}

[audiences.google]
provider = "google_ads"
customer_id = "123-456-7890"
developer_token = "google-dev-token"
client_id = "client.apps.googleusercontent.com"
client_secret = "google-client-secret"
refresh_token = "google-refresh-token"
audiences = {{ lapsed_users = "777" }}
"#,
        fcm = s.fcm_key.display()
    )
}

fn apns(s: &Setup) -> String {
    format!(
        "[channels.push]\nprovider = \"apns\"\nkey_id = \"KEY1234567\"\nteam_id = \"TEAM123456\"\n\
         private_key = \"{}\"\ntopic = \"com.shop.app\"\n",
        s.apns_key.display()
    )
}

fn check(dir: &Path, toml: &str) -> (Option<i32>, String) {
    let config = dir.join("check.toml");
    std::fs::write(&config, toml).unwrap();
    let output = std::process::Command::new(server::bin())
        .arg("serve")
        .arg(dir.join("project"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("unused"))
        .output()
        .expect("journey runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `good` with the line starting `from` (in the table `table`) replaced.
fn with(text: &str, table: &str, from: &str, to: &str) -> String {
    let header = format!("[{table}]");
    let start = text.find(&header).unwrap_or_else(|| panic!("{header}")) + header.len();
    let at = start + text[start..].find(from).unwrap_or_else(|| panic!("{from}"));
    let end = at + text[at..].find('\n').unwrap();
    format!("{}{to}{}", &text[..at], &text[end..])
}

#[test]
fn every_provider_checks_its_own_table_and_names_the_key_at_fault() {
    let s = setup();
    let good = good(&s);
    let (code, stderr) = check(&s.dir, &good);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("valid"), "{stderr}");
    let (code, stderr) = check(
        &s.dir,
        &good.replace(
            &good[good.find("[channels.push]").unwrap()..good.find("[channels.in_app]").unwrap()],
            &format!("{}\n", apns(&s)),
        ),
    );
    assert_eq!(code, Some(0), "apns: {stderr}");
    // The data directory is not made by a check.
    assert!(!s.dir.join("unused").exists());

    let not_a_key = s.dir.join("not-a-key.p8");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let bad_json = s.dir.join("bad.json");
    std::fs::write(&bad_json, "{\"client_email\": \"x\"}").unwrap();
    let apns_good = good.replace(
        &good[good.find("[channels.push]").unwrap()..good.find("[channels.in_app]").unwrap()],
        &format!("{}\n", apns(&s)),
    );
    let cases: Vec<(String, &str)> = vec![
        // webhook
        (
            with(
                &good,
                "channels.webhook",
                "secret",
                "secret = \"whsec_not*base64\"",
            ),
            "`channels.webhook`: `secret` must be `whsec_`",
        ),
        (
            with(
                &good,
                "channels.webhook",
                "url",
                "url = \"hooks.shop.example\"",
            ),
            "`channels.webhook`: `url`",
        ),
        // smtp
        (
            with(
                &good,
                "channels.email",
                "url",
                "url = \"http://127.0.0.1:2525\"",
            ),
            "`channels.email`: `url`",
        ),
        // twilio
        (
            with(&good, "channels.sms", "auth_token", ""),
            "`channels.sms`: missing field `auth_token`",
        ),
        (
            with(&good, "channels.sms", "account_sid", "account_sid = \"\""),
            "`channels.sms`: `account_sid` is empty",
        ),
        (
            with(&good, "channels.sms", "from", ""),
            "`channels.sms`: `from` (or `messaging_service_sid`) is missing",
        ),
        (
            with(
                &good,
                "channels.sms",
                "status_callback",
                "status_callback = \"journey/webhooks\"",
            ),
            "`channels.sms`: `status_callback",
        ),
        // fcm
        (
            with(
                &good,
                "channels.push",
                "service_account",
                &format!("service_account = \"{}\"", bad_json.display()),
            ),
            "`channels.push`: `service_account`",
        ),
        (
            with(
                &good,
                "channels.push",
                "service_account",
                "service_account = \"/nonexistent/key.json\"",
            ),
            "`channels.push`: `service_account`",
        ),
        // apns
        (
            with(
                &apns_good,
                "channels.push",
                "private_key",
                &format!("private_key = \"{}\"", not_a_key.display()),
            ),
            "`channels.push`: `private_key` is not an EC P-256 key",
        ),
        (
            with(&apns_good, "channels.push", "team_id", ""),
            "`channels.push`: missing field `team_id`",
        ),
        // inbox
        (
            with(&good, "channels.in_app", "ttl", "ttl = \"forever\""),
            "`channels.in_app`: `ttl = \"forever\"` is not a duration",
        ),
        (
            with(&good, "channels.in_app", "ttl", "max_per_user = 0"),
            "`channels.in_app`: `max_per_user = 0`",
        ),
        // meta
        (
            with(
                &good,
                "audiences.meta",
                "access_token",
                "access_token = \"\"",
            ),
            "`audiences.meta`: `access_token` is empty",
        ),
        (
            with(
                &good,
                "audiences.meta",
                "audiences",
                "audiences = { cart_retargeting = \"act_1\" }",
            ),
            "`audiences.meta`: `audiences.cart_retargeting` is not a list id",
        ),
        (
            with(&good, "audiences.meta", "audiences", ""),
            "`audiences.meta`: `audiences` is missing",
        ),
        (
            with(
                &good,
                "audiences.meta",
                "audiences",
                "audiences = { cart_retargetting = \"1\" }",
            ),
            "`audiences.meta.audiences.cart_retargetting`: no journey of the project",
        ),
        (
            with(
                &good,
                "audiences.meta",
                "audiences",
                "audiences = { lapsed_users = \"1\" }",
            ),
            "audience `lapsed_users` is already synced by",
        ),
        // google_ads
        (
            with(
                &good,
                "audiences.google",
                "customer_id",
                "customer_id = \"123-456\"",
            ),
            "`audiences.google`: `customer_id` is not a Google Ads customer id",
        ),
        (
            with(
                &good,
                "audiences.google",
                "developer_token",
                "developer_token = \" \"",
            ),
            "`audiences.google`: `developer_token` is empty",
        ),
        (
            with(&good, "audiences.google", "refresh_token", ""),
            "`audiences.google`: missing field `refresh_token`",
        ),
        (
            with(
                &good,
                "audiences.google",
                "audiences",
                "audiences = { lapsed_users = \"list-1\" }",
            ),
            "`audiences.google`: `audiences.lapsed_users` is not a list id",
        ),
        // bound in the wrong place
        (
            with(
                &good,
                "audiences.meta",
                "provider",
                "provider = \"webhook\"",
            ),
            "`audiences.meta`:",
        ),
        (
            format!(
                "{good}\n[channels.whatsapp]\nprovider = \"meta\"\naccess_token = \"meta-secret-token\"\naudiences = {{ x = \"1\" }}\n"
            ),
            "`channels.whatsapp`: provider `meta` syncs audiences",
        ),
    ];
    for (toml, expected) in &cases {
        let (code, stderr) = check(&s.dir, toml);
        assert_eq!(code, Some(2), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in: {stderr}"
        );
        for secret in SECRETS {
            assert!(!stderr.contains(secret), "a secret in {stderr}");
        }
    }
}
