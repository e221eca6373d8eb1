//! The running `journey serve` binary for tests: start it over a project
//! and a data directory with `--clock events`, post, read the feed, kill or
//! stop it. Shared by the tests of the service (`#[path]`-included; each
//! uses part of it).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_journey")
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// `--clock events` with `partitions`, and `extra` options.
    pub fn start(project: &Path, data: &Path, partitions: u32, extra: &[&str]) -> Server {
        let partitions = partitions.to_string();
        let mut args = vec!["--clock", "events", "--partitions", partitions.as_str()];
        args.extend_from_slice(extra);
        Server::start_with(project, data, &args)
    }

    /// `journey serve PROJECT --data DATA ARGS...` on a free loopback port,
    /// once it answers.
    pub fn start_with(project: &Path, data: &Path, args: &[&str]) -> Server {
        let data = data.to_string_lossy();
        let mut all = vec!["--data", data.as_ref()];
        all.extend_from_slice(args);
        Server::spawn(project, &all, Stdio::null())
    }

    /// `journey serve PROJECT ARGS...` on a free loopback port, its stderr
    /// to `stderr`, once it answers `/readyz`.
    pub fn spawn(project: &Path, args: &[&str], stderr: Stdio) -> Server {
        Server::spawn_from(
            Path::new(bin()),
            project,
            args,
            stderr,
            Duration::from_secs(60),
        )
    }

    /// [`Server::spawn`] of the `journey` binary at `binary`, ready within
    /// `ready_within`.
    pub fn spawn_from(
        binary: &Path,
        project: &Path,
        args: &[&str],
        stderr: Stdio,
        ready_within: Duration,
    ) -> Server {
        let port = free_port();
        let child = Command::new(binary)
            .arg("serve")
            .arg(project)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("journey serve starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + ready_within;
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/readyz", server.base)).call().is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("journey serve did not become ready");
    }

    /// Kills the service while a request of `body` to `/v1/batch` may be
    /// in flight (sent, then the kill `delay` later): whether it was kept
    /// or not, re-posting it is safe.
    pub fn kill_during_batch(self, body: &Value, delay: std::time::Duration) {
        let base = self.base.clone();
        let sent = body.clone();
        let request = std::thread::spawn(move || {
            ureq::post(&format!("{base}/v1/batch"))
                .timeout(std::time::Duration::from_secs(10))
                .send_json(sent)
                .is_ok()
        });
        std::thread::sleep(delay);
        self.kill();
        let _ = request.join();
    }

    pub fn kill(mut self) {
        // SIGKILL: no shutdown of any kind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, (u16, String)> {
        self.post_within(path, body, Duration::from_secs(30))
    }

    /// [`Server::post`] that waits up to `timeout` for the answer.
    pub fn post_within(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, (u16, String)> {
        match ureq::post(&format!("{}{path}", self.base))
            .timeout(timeout)
            .send_json(body.clone())
        {
            Ok(response) => response.into_json().map_err(|e| (0, e.to_string())),
            Err(ureq::Error::Status(code, response)) => {
                Err((code, response.into_string().unwrap_or_default()))
            }
            Err(e) => Err((0, e.to_string())),
        }
    }

    /// A GET with the admin token when given: the status and the JSON
    /// body (`null` when it is not JSON).
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call("GET", path, token)
    }

    /// A request of `method` without a body, with the bearer token when
    /// given: the status and the JSON body (`null` when it is not JSON).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request =
            ureq::request(method, &format!("{}{path}", self.base)).timeout(Duration::from_secs(30));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let (code, text) = match request.call() {
            Ok(response) => (
                response.status(),
                response.into_string().unwrap_or_default(),
            ),
            Err(ureq::Error::Status(code, response)) => {
                (code, response.into_string().unwrap_or_default())
            }
            Err(e) => panic!("the server answers: {e}"),
        };
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The feed's actions after `after`, each with its `seq`, checked to
    /// ascend.
    pub fn feed_after(&self, mut after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let text = ureq::get(&format!(
                "{}/v1/actions?after={after}&limit=5000",
                self.base
            ))
            .call()
            .expect("the feed answers")
            .into_string()
            .expect("the feed is text");
            if text.is_empty() {
                return out;
            }
            for line in text.lines() {
                let action: Value = serde_json::from_str(line).expect("a feed line is JSON");
                let seq = action["seq"].as_u64().expect("a seq");
                assert!(seq > after, "seq ascends: {seq} after {after}");
                after = seq;
                out.push(action);
            }
        }
    }

    /// The whole feed, `seq` removed, checked to ascend.
    pub fn feed(&self) -> Vec<String> {
        self.feed_after(0)
            .into_iter()
            .map(|mut action| {
                if let Some(fields) = action.as_object_mut() {
                    fields.remove("seq");
                }
                serde_json::to_string(&action).expect("JSON")
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The event file's well-formed messages, each with a `messageId` (so a
/// re-post is recognised), written again for simulate to read the same.
pub fn prepared_events(source: &Path, dir: &Path) -> (Vec<Value>, PathBuf) {
    let text = std::fs::read_to_string(source).expect("the events read");
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // What simulate reports as malformed, ingest refuses: leave it out.
        if journey::io::parse_line(line, i + 1).is_err() {
            continue;
        }
        let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if !m.contains_key("messageId") {
            m.insert("messageId".into(), json!(format!("line-{i}")));
        }
        messages.push(Value::Object(m));
    }
    let path = dir.join("events.ndjson");
    let mut file = std::fs::File::create(&path).expect("events file");
    for m in &messages {
        writeln!(file, "{m}").expect("write events");
    }
    (messages, path)
}

/// A small seeded generator: the same run every time.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `journey simulate`'s actions, each re-serialized as the feed's are.
pub fn simulate(project: &Path, events: &Path) -> Vec<String> {
    let output = Command::new(bin())
        .arg("simulate")
        .arg(project)
        .arg("--events")
        .arg(events)
        .output()
        .expect("simulate runs");
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("an action is JSON");
            serde_json::to_string(&v).expect("JSON")
        })
        .collect()
}

pub fn per_user(actions: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in actions {
        let v: Value = serde_json::from_str(a).expect("JSON");
        let user = v["user_id"].as_str().unwrap_or_default().to_string();
        out.entry(user).or_default().push(a.clone());
    }
    out
}

pub fn assert_equivalent(feed: &[String], expected: &[String], exact_order: bool) {
    assert_eq!(feed.len(), expected.len(), "as many actions as simulate");
    if exact_order {
        assert_eq!(feed, expected);
    } else {
        assert_eq!(
            per_user(feed),
            per_user(expected),
            "per user, the same actions in order"
        );
    }
}
