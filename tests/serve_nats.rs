//! `journey serve --nats` against a real nats-server with JetStream
//! (SERVICE.md §9 and §10): one process, and three processes with
//! `kill -9`s, give exactly `journey simulate`'s actions, none twice; a
//! process paused past its lease is fenced, writes nothing, and rejoins;
//! a deploy on one process reaches every partition, survives a takeover
//! and gives one machine's sends; a refused one changes nothing; the
//! admin views answer alike on every process; the journal is trimmed
//! behind checkpoints.
//!
//! Each test starts its own `nats-server -js` on a free port with a
//! store of its own. Without the binary (Debian's `nats-server` package)
//! the tests say so and pass, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/deploy.rs"]
mod deploy;
#[path = "support/server.rs"]
mod server;
use server::{Rng, Server, assert_equivalent, prepared_events, scratch, simulate};
#[path = "support/nats.rs"]
mod nats;
use nats::{
    Nats, batches, config, end_clock, example, owners, post_ok, process, process_name, start_nats,
    wait_for_owners,
};

/// The config of [`config`] with `[journal] retention = "{retention}"`.
fn config_with_retention(dir: &Path, retention: &str) -> PathBuf {
    let path = config(dir);
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(&format!("[journal]\nretention = \"{retention}\"\n"));
    std::fs::write(&path, text).expect("config");
    path
}

/// What most tests start from: a scratch directory, a nats-server of
/// its own, the example project, its messages, simulate's actions for
/// them, and the config; `None` when nats-server is not installed.
type Example = (PathBuf, Nats, PathBuf, Vec<Value>, Vec<String>, PathBuf);

fn example_run(name: &str) -> Option<Example> {
    let dir = scratch(name);
    let nats = start_nats(&dir)?;
    let (project, events) = example();
    let (messages, prepared) = prepared_events(&events, &dir);
    let expected = simulate(&project, &prepared);
    let config = config(&dir);
    Some((dir, nats, project, messages, expected, config))
}

#[test]
fn one_process_equals_simulate_and_restarts_without_repeating() {
    let Some((dir, nats, project, messages, expected, config)) = example_run("nats-one") else {
        return;
    };
    let log = dir.join("serve.log");
    let server = process(&project, &nats, &config, 4, &log);
    let mut rng = Rng(0x2545_f491);
    for body in batches(&messages, &mut rng) {
        post_ok(&server, &body);
    }
    end_clock(&server);
    let feed = server.feed();
    assert_equivalent(&feed, &expected, false);
    let name = process_name(&server);
    assert!(
        owners(&server).iter().all(|o| o.as_deref() == Some(&name)),
        "one process holds every partition"
    );
    // Killed and started again: the partitions are restored from their
    // checkpoints and replayed, and nothing is written twice; the same
    // messages posted again are recognised.
    server.kill();
    let again = process(&project, &nats, &config, 4, &log);
    for body in batches(&messages[..200], &mut rng) {
        post_ok(&again, &body);
    }
    end_clock(&again);
    assert_eq!(again.feed(), feed, "no action twice after a restart");
    // A clean stop lets the leases go; another process takes them at once.
    assert_eq!(again.stop(), Some(0));
    let third = process(&project, &nats, &config, 4, &log);
    end_clock(&third);
    assert_eq!(third.feed(), feed);
}

#[test]
fn three_processes_through_kills_equal_simulate() {
    let Some((dir, nats, project, messages, expected, config)) = example_run("nats-three") else {
        return;
    };
    let log = dir.join("serve.log");
    let start = || process(&project, &nats, &config, 8, &log);
    let mut servers: Vec<Option<Server>> = vec![Some(start()), Some(start()), Some(start())];
    let mut rng = Rng(0x9e37_79b9);
    let bodies = batches(&messages, &mut rng);
    let n = bodies.len();
    let (first_kill, restart, second_kill) = (n / 4, n / 2, n * 9 / 10);
    for (i, body) in bodies.iter().enumerate() {
        if i == first_kill {
            // During a request: whether it was kept or not, it is posted
            // again to another process.
            let victim = servers[0].take().expect("process 0 runs");
            victim.kill_during_batch(body, Duration::from_micros(rng.below(3_000)));
        }
        if i == restart {
            servers[0] = Some(start());
        }
        if i == second_kill {
            servers[1].take().expect("process 1 runs").kill();
        }
        let alive: Vec<&Server> = servers.iter().flatten().collect();
        let target = alive[rng.below(alive.len() as u64) as usize];
        post_ok(target, body);
    }
    let survivor = servers[2].as_ref().expect("process 2 runs");
    end_clock(survivor);
    let feed = survivor.feed();
    assert_equivalent(&feed, &expected, false);
    // Every process reads the same feed.
    let restarted = servers[0].as_ref().expect("process 0 runs again");
    assert_eq!(restarted.feed(), feed);
    // The two alive hold every partition between them.
    let names = [process_name(restarted), process_name(survivor)];
    wait_for_owners(survivor, "the two alive hold everything", |owners| {
        owners
            .iter()
            .all(|o| o.as_ref().is_some_and(|o| names.contains(o)))
    });
}

#[test]
fn a_paused_process_is_fenced_writes_nothing_and_rejoins() {
    let Some((dir, nats, project, messages, expected, config)) = example_run("nats-pause") else {
        return;
    };
    let (paused_log, other_log) = (dir.join("paused.log"), dir.join("other.log"));
    let paused = process(&project, &nats, &config, 4, &paused_log);
    let other = process(&project, &nats, &config, 4, &other_log);
    let (paused_name, other_name) = (process_name(&paused), process_name(&other));
    wait_for_owners(&other, "two processes share the partitions", |owners| {
        owners.iter().any(|o| o.as_deref() == Some(&paused_name))
            && owners.iter().any(|o| o.as_deref() == Some(&other_name))
    });
    let mut rng = Rng(0x5851_f42d);
    let bodies = batches(&messages, &mut rng);
    let (before, during) = (bodies.len() / 3, bodies.len() * 2 / 3);
    for body in &bodies[..before] {
        post_ok(&other, body);
    }
    let pid = paused.child.id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill").args([name, &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {name}");
    };
    signal("-STOP");
    // Its partitions' journal grows while it sleeps: it has work waiting
    // when it wakes.
    for body in &bodies[before..during] {
        post_ok(&other, body);
    }
    wait_for_owners(
        &other,
        "the other process takes every partition",
        |owners| owners.iter().all(|o| o.as_deref() == Some(&other_name)),
    );
    signal("-CONT");
    for body in &bodies[during..] {
        post_ok(&other, body);
    }
    // It rejoins: once its heartbeat is seen, partitions are spread again.
    wait_for_owners(
        &other,
        "the woken process holds partitions again",
        |owners| owners.iter().any(|o| o.as_deref() == Some(&paused_name)),
    );
    end_clock(&paused);
    let feed = other.feed();
    assert_equivalent(&feed, &expected, false);
    assert_eq!(paused.feed(), feed);
    // It said it was fenced or lost its leases: it stopped them itself.
    let said = std::fs::read_to_string(&paused_log).expect("its log");
    assert!(
        said.contains("the lease was lost") || said.contains("fenced"),
        "{said}"
    );
}

/// `/admin/partitions` of `server`, its rows.
fn partition_rows(server: &Server) -> Vec<Value> {
    let (code, view) = server.get("/admin/partitions", None);
    assert_eq!(code, 200, "{view}");
    view["partitions"].as_array().expect("partitions").clone()
}

/// Waits until `server` answers `path` with 200 and `check` holds of it.
fn wait_for_view(server: &Server, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, view) = server.get(path, None);
        if code == 200 && check(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{path}: {code} {view}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_deploy_on_one_process_reaches_every_partition_and_survives_a_takeover() {
    let dir = scratch("nats-deploy");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project directory");
    deploy::write(&project, deploy::V1);
    let config = config(&dir);
    let (a_log, b_log) = (dir.join("a.log"), dir.join("b.log"));
    let a = process(&project, &nats, &config, 4, &a_log);
    let b = process(&project, &nats, &config, 4, &b_log);
    let (a_name, b_name) = (process_name(&a), process_name(&b));
    wait_for_owners(&b, "two processes share the partitions", |owners| {
        owners.iter().any(|o| o.as_deref() == Some(&a_name))
            && owners.iter().any(|o| o.as_deref() == Some(&b_name))
    });
    deploy::batch(&a, deploy::before_deploy());
    // A project with errors: refused with its diagnostics, and nothing
    // changes on any process.
    deploy::write(
        &project,
        &deploy::V1.replace("send email bye", "send email missing_template"),
    );
    let (code, body) = b
        .post("/admin/reload", &json!({}))
        .expect_err("a broken project is refused");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("missing_template"), "{body}");
    for server in [&a, &b] {
        let journeys = wait_for_view(server, "/admin/journeys", |_| true);
        assert_eq!(journeys["deployed_version"], 1, "{journeys}");
        assert_eq!(deploy::kept(&journeys), []);
    }
    // Version 2, deployed through the process that does not hold every
    // partition.
    deploy::write(&project, &deploy::v2());
    let deployed = b
        .post("/admin/reload", &json!({}))
        .expect("the deploy is accepted");
    assert_eq!(deployed["version"], 2, "{deployed}");
    assert_eq!(deployed["deployed"], true);
    assert_eq!(deploy::fates(&deployed), deploy::planned_fates());
    let again = a
        .post("/admin/reload", &json!({}))
        .expect("an unchanged reload answers");
    assert_eq!(
        (again["version"].clone(), again["deployed"].clone()),
        (json!(2), json!(false))
    );
    deploy::batch(&a, deploy::after_deploy());
    // Every process learned version 2; every partition runs it.
    for server in [&a, &b] {
        let journeys = wait_for_view(server, "/admin/journeys", |j| j["deployed_version"] == 2);
        assert_eq!(
            deploy::kept(&journeys),
            [("promo".into(), json!(1)), ("welcome".into(), json!(1))]
        );
    }
    // Ana as her partition's owner holds her, asked through either process.
    let (code, ana) = a.get("/admin/users/ana", None);
    assert_eq!(code, 200, "{ana}");
    assert_eq!(
        deploy::active(&ana),
        [("nudge".into(), json!(2)), ("welcome".into(), json!(1))]
    );
    assert_eq!(b.get("/admin/users/ana", None), (200, ana));
    let (code, nobody) = b.get("/admin/users/nobody", None);
    assert_eq!(code, 404, "{nobody}");
    // The process holding partitions is killed: the other restores and
    // replays them, each entry with the version it was journaled under.
    a.kill();
    wait_for_owners(&b, "the survivor holds every partition", |owners| {
        owners.iter().all(|o| o.as_deref() == Some(&b_name))
    });
    end_clock(&b);
    let feed = b.feed();
    assert_eq!(deploy::sends(&feed), deploy::expected_sends(), "{feed:#?}");
    // A process started with version 1's files deploys them, as one
    // machine does at a start with changed files.
    deploy::write(&project, deploy::V1);
    let c = process(&project, &nats, &config, 4, &dir.join("c.log"));
    for server in [&b, &c] {
        wait_for_view(server, "/admin/journeys", |j| j["deployed_version"] == 3);
    }
}

#[test]
fn the_journal_is_trimmed_behind_checkpoints_and_a_takeover_equals_simulate() {
    let Some((dir, nats, project, messages, expected, config)) = example_run("nats-trim") else {
        return;
    };
    let log = dir.join("serve.log");
    let first = process(&project, &nats, &config, 4, &log);
    let mut rng = Rng(0x1234_5678);
    let bodies = batches(&messages, &mut rng);
    let half = bodies.len() / 2;
    for body in &bodies[..half] {
        post_ok(&first, body);
    }
    // Checkpoints every 2 s: each partition's journal before its
    // checkpoint goes (`journal.retention` 0), its checkpoint's entry
    // stays.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = partition_rows(&first);
        let trimmed = rows.iter().all(|row| {
            let first = row["journal_first_position"].as_u64().unwrap_or(0);
            let checkpoint = row["checkpoint_position"].as_u64().unwrap_or(0);
            checkpoint > 0 && first == checkpoint
        });
        if trimmed {
            break;
        }
        assert!(Instant::now() < deadline, "not trimmed: {rows:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another process takes every partition over from the trimmed
    // journal, and the actions are exactly simulate's.
    let second = process(&project, &nats, &config, 4, &log);
    first.kill();
    for body in &bodies[half..] {
        post_ok(&second, body);
    }
    end_clock(&second);
    assert_equivalent(&second.feed(), &expected, false);
}

#[test]
fn journal_retention_keeps_what_checkpoints_cover() {
    let dir = scratch("nats-retention");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let (project, events) = example();
    let (messages, _) = prepared_events(&events, &dir);
    let config = config_with_retention(&dir, "1h");
    let server = process(&project, &nats, &config, 2, &dir.join("serve.log"));
    let mut rng = Rng(0x0bad_cafe);
    for body in batches(&messages, &mut rng) {
        post_ok(&server, &body);
    }
    let firsts: Vec<Value> = partition_rows(&server)
        .iter()
        .map(|row| row["journal_first_position"].clone())
        .collect();
    assert!(firsts.iter().all(|f| f.as_u64() > Some(0)), "{firsts:?}");
    // Checkpoints come and go; an hour's retention keeps the journal whole.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = partition_rows(&server);
        let past_first = rows
            .iter()
            .zip(&firsts)
            .all(|(row, first)| row["checkpoint_position"].as_u64() > first.as_u64());
        if past_first {
            let now: Vec<Value> = rows
                .iter()
                .map(|row| row["journal_first_position"].clone())
                .collect();
            assert_eq!(now, firsts, "{rows:#?}");
            return;
        }
        assert!(Instant::now() < deadline, "no checkpoints: {rows:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
