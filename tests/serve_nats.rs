//! `journey serve --nats` against a real nats-server with JetStream
//! (SERVICE.md §9 and §10): one process, and three processes with
//! `kill -9`s, give exactly `journey simulate`'s actions, none twice; a
//! process paused past its lease is fenced, writes nothing, and rejoins.
//!
//! Each test starts its own `nats-server -js` on a free port with a
//! store of its own. Without the binary (Debian's `nats-server` package)
//! the tests say so and pass, except under `CI=true`, where they fail.

use std::process::Command;
use std::time::Duration;

#[path = "support/server.rs"]
mod server;
use server::{Rng, Server, assert_equivalent, prepared_events, scratch, simulate};
#[path = "support/nats.rs"]
mod nats;
use nats::{
    batches, config, end_clock, example, owners, post_ok, process, process_name, start_nats,
    wait_for_owners,
};

#[test]
fn one_process_equals_simulate_and_restarts_without_repeating() {
    let dir = scratch("nats-one");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let (project, events) = example();
    let (messages, prepared) = prepared_events(&events, &dir);
    let expected = simulate(&project, &prepared);
    let config = config(&dir);
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
    let dir = scratch("nats-three");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let (project, events) = example();
    let (messages, prepared) = prepared_events(&events, &dir);
    let expected = simulate(&project, &prepared);
    let config = config(&dir);
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
    let dir = scratch("nats-pause");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let (project, events) = example();
    let (messages, prepared) = prepared_events(&events, &dir);
    let expected = simulate(&project, &prepared);
    let config = config(&dir);
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
