//! `journey serve --nats` for tests and benches: a nats-server of their
//! own, processes against it, posting, the clock, who holds what
//! (`#[path]`-included beside `server.rs`; each uses part of it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Rng, Server, free_port, root};

/// A nats-server of the test's own, stopped when dropped; it holds the
/// tests' lock: one test at a time runs its processes (three debug builds
/// and a server each are enough for two cores).
pub struct Nats {
    pub child: Child,
    pub url: String,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn nats_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

/// Starts `nats-server -js` for one test, or says why not: `None` skips
/// the test, except in CI.
pub fn start_nats(dir: &Path) -> Option<Nats> {
    let Some(binary) = nats_binary() else {
        let message = "nats-server is not installed: `apt-get install nats-server` (or put it on \
                       PATH) to run the `--nats` tests";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return None;
    };
    let one_at_a_time = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let port = free_port();
    let store = dir.join("jetstream");
    let child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let nats = Nats {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _one_at_a_time: one_at_a_time,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(nats)
}

/// A runtime for a test's own NATS calls: two workers, so that the tasks a
/// test spawns run at once.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A JetStream context on the server at `url`.
pub async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::connect(url).await.expect("NATS connects");
    async_nats::jetstream::new(client)
}

/// Leases of 2.5 s (a heartbeat every 0.8 s) and frequent checkpoints, so
/// that takeovers and restores happen within the tests' time.
pub fn config(dir: &Path) -> PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(
        &path,
        "[nats]\nlease_ttl = \"2500ms\"\n[checkpoint]\nevery = \"2s\"\nentries = 200\n",
    )
    .expect("config");
    path
}

/// The options of a `journey serve --nats` process of the tests.
pub fn nats_args(nats: &Nats, config: &Path, partitions: u32) -> Vec<String> {
    vec![
        "--nats".into(),
        nats.url.clone(),
        "--config".into(),
        config.to_string_lossy().into_owned(),
        "--clock".into(),
        "events".into(),
        "--partitions".into(),
        partitions.to_string(),
    ]
}

/// Its log, appended to.
pub fn log_file(log: &Path) -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file"),
    )
}

/// One `journey serve --nats` process (`--clock events`), its log in `log`.
pub fn process(project: &Path, nats: &Nats, config: &Path, partitions: u32, log: &Path) -> Server {
    process_on_clock(project, nats, config, "events", partitions, log)
}

/// One `journey serve --nats` process on `clock` (`events` or `wall`), its
/// log in `log`.
pub fn process_on_clock(
    project: &Path,
    nats: &Nats,
    config: &Path,
    clock: &str,
    partitions: u32,
    log: &Path,
) -> Server {
    let mut args = nats_args(nats, config, partitions);
    if let Some(i) = args.iter().position(|a| a == "--clock") {
        args[i + 1] = clock.to_string();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::spawn(project, &args, log_file(log))
}

pub fn example() -> (PathBuf, PathBuf) {
    (
        root().join("journeys"),
        root().join("journeys/events.ndjson"),
    )
}

/// The messages in random batches of 1 to 40.
pub fn batches(messages: &[Value], rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < messages.len() {
        let n = 1 + rng.below(40) as usize;
        let end = (i + n).min(messages.len());
        out.push(json!({ "batch": messages[i..end].to_vec() }));
        i = end;
    }
    out
}

pub fn post_ok(server: &Server, body: &Value) {
    match server.post("/v1/batch", body) {
        Ok(answer) => assert_eq!(answer["success"], true, "{answer}"),
        Err((code, text)) => panic!("a good batch was refused: {code} {text}"),
    }
}

pub fn end_clock(server: &Server) {
    // It answers once every partition has applied everything journaled:
    // after a kill near the end, a takeover's restore and replay too,
    // which a debug build on a busy machine takes tens of seconds for.
    let answer = server
        .post_within(
            "/admin/clock",
            &json!({ "to": "end" }),
            Duration::from_secs(180),
        )
        .expect("the clock moves to the end");
    assert_eq!(answer["active_instances"], 0, "{answer}");
    assert_eq!(answer["pending_timers"], 0, "{answer}");
}

/// `/admin/partitions`' owner of each partition.
pub fn owners(server: &Server) -> Vec<Option<String>> {
    let (code, view) = server.get("/admin/partitions", None);
    assert_eq!(code, 200, "{view}");
    view["partitions"]
        .as_array()
        .expect("a list of partitions")
        .iter()
        .map(|p| p["owner"].as_str().map(str::to_string))
        .collect()
}

pub fn process_name(server: &Server) -> String {
    let (_, view) = server.get("/admin/partitions", None);
    view["process"].as_str().expect("its name").to_string()
}

/// Waits until `check` holds of `server`'s view of the owners.
pub fn wait_for_owners(server: &Server, what: &str, check: impl Fn(&[Option<String>]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = owners(server);
        if check(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: owners {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
