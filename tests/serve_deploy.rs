//! Deploys of the running service (SERVICE.md §8), against the real binary:
//! `POST /admin/reload`, SIGHUP and a start with changed files journal a new
//! version; customers inside a journey whose steps changed finish on their
//! version, those whose journey only changed templates, literals or waits'
//! durations move, templates take effect at once, a project with errors is
//! refused, and a replay after `kill -9` reproduces all of it.

#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{Server, bin, scratch};

const V1: &str = r#"
template hello { channel email  subject "Hi"  body "Hello v1" }
template bye { channel email  subject "Bye"  body "Bye v1" }
template nudge { channel email  subject "Nudge"  body "Nudge v1" }
template promo { channel email  subject "Promo"  body "Promo v1" }

journey welcome {
  trigger signed_up
  wait 1d
  send email hello
  wait 1d
  send email bye
}

journey nudge {
  trigger signed_up
  wait 12h
  send email nudge
}

journey promo {
  trigger bought
  wait 1d
  send email promo
}
"#;

/// Templates changed (`hello`, `nudge`), `welcome`'s steps changed (a tip
/// between its two sends), `nudge` only its wait, `promo` removed.
fn v2() -> String {
    V1.replace("Hello v1", "Hello v2")
        .replace("Nudge v1", "Nudge v2")
        .replace("wait 12h", "wait 6h")
        .replace(
            "send email hello\n  wait 1d",
            "send email hello\n  send email tip\n  wait 1d",
        )
        .replace(
            "template promo",
            "template tip { channel email  subject \"Tip\"  body \"A tip\" }\ntemplate promo",
        )
        .replace(
            "journey promo {\n  trigger bought\n  wait 1d\n  send email promo\n}\n",
            "",
        )
}

fn write(project: &Path, text: &str) {
    std::fs::write(project.join("journeys.journey"), text).expect("the project is written");
}

fn batch(server: &Server, messages: Vec<Value>) {
    server
        .post("/v1/batch", &json!({ "batch": messages }))
        .expect("the batch is accepted");
}

fn identify(user: &str, at: &str) -> Value {
    json!({"type": "identify", "userId": user, "timestamp": at, "messageId": format!("id-{user}"),
           "traits": {"email": format!("{user}@example.com")}})
}

fn track(user: &str, event: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": at,
           "messageId": format!("{event}-{user}-{at}")})
}

fn reload(server: &Server) -> Result<Value, (u16, String)> {
    server.post("/admin/reload", &json!({}))
}

/// `(user, body)` of every send in the feed, sorted (partitions interleave).
fn sends(feed: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = feed
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|a| a["kind"] == "send")
        .map(|a| {
            (
                a["user_id"].as_str().unwrap_or("").to_string(),
                a["body"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The whole scenario on one data directory; `kill_after_reload` kills the
/// service (SIGKILL) right after the deploy and starts it again.
fn scenario(name: &str, kill_after_reload: bool) -> Vec<String> {
    let dir = scratch(name);
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project directory");
    write(&project, V1);
    let data = dir.join("data");
    let mut server = Server::start(&project, &data, 2, &[]);
    batch(
        &server,
        vec![
            identify("ana", "2026-03-02T09:00:00Z"),
            identify("bob", "2026-03-02T09:00:00Z"),
            identify("cy", "2026-03-02T09:00:00Z"),
            track("ana", "signed_up", "2026-03-02T10:00:00Z"),
            track("cy", "bought", "2026-03-02T10:00:00Z"),
        ],
    );
    // (d) A project with errors: refused, nothing journaled.
    write(
        &project,
        &V1.replace("send email bye", "send email missing_template"),
    );
    let (code, body) = reload(&server).expect_err("a broken project is refused");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("missing_template"), "{body}");
    // (a), (b), (c): templates, steps, a removed journey.
    write(&project, &v2());
    let deployed = reload(&server).expect("the deploy is accepted");
    assert_eq!(deployed["version"], 2, "{deployed}");
    assert_eq!(deployed["deployed"], true);
    let fates: Vec<(String, String)> = deployed["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .map(|j| {
            (
                j["journey"].as_str().unwrap().into(),
                j["fate"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        fates,
        [
            ("nudge".into(), "moves".into()),
            ("promo".into(), "removed".into()),
            ("welcome".into(), "stays".into()),
        ]
    );
    // Reloading the same files again deploys nothing.
    let again = reload(&server).expect("an unchanged reload answers");
    assert_eq!(
        (again["version"].clone(), again["deployed"].clone()),
        (json!(2), json!(false))
    );
    if kill_after_reload {
        server.kill();
        server = Server::start(&project, &data, 2, &[]);
    }
    batch(
        &server,
        vec![
            track("bob", "signed_up", "2026-03-02T11:00:00Z"),
            // Ana is inside version 1 of `welcome`: not admitted again.
            track("ana", "signed_up", "2026-03-02T12:00:00Z"),
            // `promo` admits no one now.
            track("bob", "bought", "2026-03-02T12:00:00Z"),
        ],
    );
    // Ana is inside version 1 of `welcome`, and her `nudge` moved to 2.
    let (code, ana) = server.get("/admin/users/ana", None);
    assert_eq!(code, 200, "{ana}");
    let active: Vec<(String, Value)> = ana["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .filter(|j| j["state"] == "active")
        .map(|j| (j["journey"].as_str().unwrap().into(), j["version"].clone()))
        .collect();
    assert_eq!(
        active,
        [("nudge".into(), json!(2)), ("welcome".into(), json!(1))]
    );
    let (code, journeys) = server.get("/admin/journeys", None);
    assert_eq!(code, 200);
    assert_eq!(journeys["deployed_version"], 2);
    let kept: Vec<(String, Value)> = journeys["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .filter(|j| !j["kept_from_version"].is_null())
        .map(|j| {
            (
                j["journey"].as_str().unwrap().into(),
                j["kept_from_version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [("promo".into(), json!(1)), ("welcome".into(), json!(1))]
    );
    server
        .post("/admin/clock", &json!({"to": "end"}))
        .expect("the clock runs out");
    let feed = server.feed();
    assert_eq!(server.stop(), Some(0));
    feed
}

#[test]
fn a_reload_mid_stream_moves_keeps_and_finishes_instances_as_planned() {
    let feed = scenario("deploy", false);
    assert_eq!(
        sends(&feed),
        [
            // Ana finishes version 1's steps, with version 2's templates.
            ("ana".into(), "Bye v1".into()),
            ("ana".into(), "Hello v2".into()),
            // Her nudge moved to version 2 at its step: its timer (12h)
            // kept, its template new.
            ("ana".into(), "Nudge v2".into()),
            // Bob entered version 2.
            ("bob".into(), "A tip".into()),
            ("bob".into(), "Bye v1".into()),
            ("bob".into(), "Hello v2".into()),
            ("bob".into(), "Nudge v2".into()),
            // Cy finishes the removed journey.
            ("cy".into(), "Promo v1".into()),
        ]
    );
    let at = |user: &str, body: &str| {
        feed.iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
            .find(|a| a["user_id"] == user && a["body"] == body)
            .and_then(|a| a["at"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert_eq!(
        at("ana", "Nudge v2"),
        "2026-03-02T22:00:00Z",
        "kept its timer"
    );
    assert_eq!(
        at("bob", "Nudge v2"),
        "2026-03-02T17:00:00Z",
        "the new wait"
    );
}

#[test]
fn a_replay_after_kill_reproduces_a_deploy() {
    let straight = scenario("deploy-straight", false);
    let killed = scenario("deploy-killed", true);
    let mut a = straight.clone();
    let mut b = killed;
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn a_start_with_changed_files_deploys_them() {
    let dir = scratch("deploy-start");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project directory");
    write(&project, V1);
    let data = dir.join("data");
    let server = Server::start(&project, &data, 1, &[]);
    batch(
        &server,
        vec![
            identify("ana", "2026-03-02T09:00:00Z"),
            track("ana", "signed_up", "2026-03-02T10:00:00Z"),
        ],
    );
    assert_eq!(server.stop(), Some(0));
    write(&project, &v2());
    let server = Server::start(&project, &data, 1, &[]);
    let (_, journeys) = server.get("/admin/journeys", None);
    assert_eq!(journeys["deployed_version"], 2);
    // Stopped again, it restores version 2's checkpoint, with the kept
    // version of `welcome` Ana is inside.
    assert_eq!(server.stop(), Some(0));
    let server = Server::start(&project, &data, 1, &[]);
    server
        .post("/admin/clock", &json!({"to": "end"}))
        .expect("the clock runs out");
    assert_eq!(
        sends(&server.feed()),
        [
            ("ana".into(), "Bye v1".into()),
            ("ana".into(), "Hello v2".into()),
            ("ana".into(), "Nudge v2".into()),
        ]
    );
}

#[test]
fn sighup_deploys_the_files_on_disk() {
    let dir = scratch("deploy-hup");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project directory");
    write(&project, V1);
    let server = Server::start(&project, &dir.join("data"), 1, &[]);
    // Twice: the service logs each deploy from its own thread, and a
    // second SIGHUP is only handled once the first one's log line is out.
    for (text, version) in [(v2(), 2), (V1.to_string(), 3)] {
        write(&project, &text);
        let hup = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(hup.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, journeys) = server.get("/admin/journeys", None);
            if journeys["deployed_version"] == version {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "SIGHUP did not deploy version {version}: {journeys}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn journey_diff_prints_the_plan() {
    let dir = scratch("deploy-diff");
    let (old, new) = (dir.join("old"), dir.join("new"));
    for (path, text) in [(&old, V1.to_string()), (&new, v2())] {
        std::fs::create_dir_all(path).expect("directory");
        write(path, &text);
    }
    let output = Command::new(bin())
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .output()
        .expect("journey diff runs");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "nudge    moves    instances move to the new version at their step\n\
         promo    removed  journey removed: instances finish on the version they entered\n\
         welcome  stays    steps changed: instances finish on the version they entered\n"
    );
}
