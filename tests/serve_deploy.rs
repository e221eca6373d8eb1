//! Deploys of the running service (SERVICE.md §8), against the real binary:
//! `POST /admin/reload`, SIGHUP and a start with changed files journal a new
//! version; customers inside a journey whose steps changed finish on their
//! version, those whose journey only changed templates, literals or waits'
//! durations move, templates take effect at once, a project with errors is
//! refused, and a replay after `kill -9` reproduces all of it.

#[path = "support/deploy.rs"]
mod deploy;
#[path = "support/server.rs"]
mod server;

use std::process::Command;
use std::time::{Duration, Instant};

use deploy::{
    V1, active, after_deploy, batch, before_deploy, expected_sends, fates, identify, kept,
    planned_fates, sends, track, v2, write,
};
use serde_json::{Value, json};
use server::{Server, bin, scratch};

fn reload(server: &Server) -> Result<Value, (u16, String)> {
    server.post("/admin/reload", &json!({}))
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
    batch(&server, before_deploy());
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
    assert_eq!(fates(&deployed), planned_fates());
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
    batch(&server, after_deploy());
    // Ana is inside version 1 of `welcome`, and her `nudge` moved to 2.
    let (code, ana) = server.get("/admin/users/ana", None);
    assert_eq!(code, 200, "{ana}");
    assert_eq!(
        active(&ana),
        [("nudge".into(), json!(2)), ("welcome".into(), json!(1))]
    );
    let (code, journeys) = server.get("/admin/journeys", None);
    assert_eq!(code, 200);
    assert_eq!(journeys["deployed_version"], 2);
    assert_eq!(
        kept(&journeys),
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
    assert_eq!(sends(&feed), expected_sends());
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
