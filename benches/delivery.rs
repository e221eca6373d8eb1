//! Delivery under load (SERVICE.md §11), against the release binary on
//! loopback, rate limits off:
//!
//! - emails a second from the outbox to a local SMTP server (aiosmtpd in
//!   its counting `sink` mode, tests/support/smtp_server.py);
//! - webhooks a second to a local receiver (tests/support/receiver.rs,
//!   which checks every signature);
//! - ingest through `/v1/batch` with the example journeys, without delivery
//!   and with every channel bound to those servers, to show that delivery
//!   does not slow ingest.
//!
//! The receivers run at the lowest priority (`SCHED_IDLE`, nice 19): they
//! stand in for providers on other machines, and on a two-core machine
//! aiosmtpd alone would take a core from the service it measures. The
//! service's delivery threads run at `SCHED_IDLE` too
//! (src/service/delivery/engine.rs).
//!
//! `cargo bench --bench delivery` (`JOURNEY_BENCH_EMAILS`, default 20,000;
//! `JOURNEY_BENCH_WEBHOOKS`, default 50,000; `JOURNEY_BENCH_EVENTS`,
//! default 300,000 events of 30,000 users for the ingest comparison, posted
//! by `JOURNEY_BENCH_CLIENTS` concurrent clients (32, as the live
//! service's ingest figure in `benches/serve.rs`), in
//! `JOURNEY_BENCH_ROUNDS` alternating rounds of each (2); 0 emails or
//! webhooks skips that figure).
//! Without aiosmtpd (`pip install aiosmtpd`) the email figure is skipped.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/support/receiver.rs"]
mod receiver;
use receiver::{Answer, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The nice value of the receivers (see `main`).
const REMOTE_NICE: i32 = 19;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_091)
}

struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(project: &Path, data: &Path, args: &[&str]) -> Serve {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_journey"))
            .arg("serve")
            .arg(project)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("journey serve: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/readyz")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "ready in time"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Posts the bodies with `clients` concurrent clients (503: retried).
fn post_all(url: &str, bodies: Arc<Vec<String>>, clients: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.to_string());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return;
                    };
                    loop {
                        match agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(body)
                        {
                            Ok(_) => break,
                            Err(ureq::Error::Status(503, _)) => {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err(e) => panic!("ingest failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

/// Batches that sign up `n` customers (an identify and a `signed_up` each).
fn sign_ups(n: u64) -> Arc<Vec<String>> {
    let messages: Vec<String> = (0..n)
        .flat_map(|i| {
            [
                format!(
                    r#"{{"type":"identify","userId":"u{i}","messageId":"i{i}","traits":{{"email":"u{i}@example.com","first_name":"U{i}"}}}}"#
                ),
                format!(r#"{{"type":"track","userId":"u{i}","messageId":"t{i}","event":"signed_up"}}"#),
            ]
        })
        .collect();
    Arc::new(
        messages
            .chunks(100)
            .map(|c| format!("{{\"batch\":[{}]}}", c.join(",")))
            .collect(),
    )
}

fn project(dir: &Path, channel: &str) -> PathBuf {
    let project = dir.join(format!("project-{channel}"));
    std::fs::create_dir_all(&project).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        project.join("welcome.journey"),
        format!(
            r#"
template hello {{
  channel {channel}
  {subject}
  body "Hi {{{{ profile.first_name }}}}, welcome."
}}

journey welcome {{
  trigger signed_up
  send {channel} hello
}}
"#,
            subject = if channel == "email" {
                "subject \"Hello {{ profile.first_name }}\""
            } else {
                ""
            }
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    project
}

/// Signs `n` customers up and times their messages' arrival, counted by
/// `arrived`; prints the figure.
fn measure(what: &str, n: u64, serve: &Serve, arrived: &dyn Fn() -> u64) {
    let bodies = sign_ups(n);
    let begun = Instant::now();
    let url = format!("{}/v1/batch", serve.base);
    let poster = std::thread::spawn(move || post_all(&url, bodies, 4));
    let mut first = None;
    let mut tenth = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let count = arrived();
        if count > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if count >= n / 10 && tenth.is_none() {
            tenth = Some((Instant::now(), count));
        }
        if count >= n || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = poster.join();
    let done = Instant::now();
    let count = arrived();
    let total = done - begun;
    let (t10, c10) = tenth.unwrap_or((begun, 0));
    let steady = (count - c10) as f64 / (done - t10).as_secs_f64();
    println!(
        "{what}: {count} of {n} delivered {:.2} s after the first request = {:.0}/s end to end \
         (ingest included); {steady:.0}/s after the first tenth; first arrival after {:.0} ms",
        total.as_secs_f64(),
        count as f64 / total.as_secs_f64(),
        first.map_or(0.0, |f| (f - begun).as_secs_f64() * 1_000.0),
    );
}

fn smtp_sink(dir: &Path) -> Option<(Child, u16, PathBuf)> {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("emails: skipped (no aiosmtpd: `pip install aiosmtpd`)");
        return None;
    }
    let port = free_port();
    let out = dir.join("sink.txt");
    let mut child = Command::new("chrt")
        .args([
            "--idle",
            "0",
            "nice",
            "-n",
            &REMOTE_NICE.to_string(),
            "python3",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py"))
        .arg(&out)
        .arg(port.to_string())
        .arg("sink")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut ready = String::new();
    let stdout = child.stdout.take()?;
    std::io::BufReader::new(stdout).read_line(&mut ready).ok()?;
    Some((child, port, out))
}

/// The user and system CPU time of process `pid` so far (Linux; 0
/// elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    ticks_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU-seconds so far of process `pid`'s threads, summed by thread name
/// with its digits dropped (`journey-partiti`, `journey-writer`,
/// `tokio-runtime-w` for HTTP, `journey-deliver` ...): where a round's
/// time went (Linux; empty elsewhere).
fn cpu_by_thread(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let name: String = comm
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        *by_name.entry(name).or_insert(0.0) += ticks_of(&stat);
    }
    by_name
}

/// The user and system time of a `/proc/.../stat` line, in seconds.
fn ticks_of(stat: &str) -> f64 {
    // The fields after the command's closing parenthesis: utime is the
    // 12th, stime the 13th, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `after - before` per thread name, the largest first, as
/// `name 1.23 s` joined by commas.
fn cpu_spent(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    let mut spent: Vec<(&String, f64)> = after
        .iter()
        .map(|(name, t)| (name, t - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, t)| *t > 0.0)
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    spent
        .iter()
        .map(|(name, t)| format!("{name} {t:.2} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A counter's value in the service's `/metrics` (0 when absent).
fn metric(base: &str, name: &str) -> u64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn lines(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / 2)
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn main() {
    let emails = env_or("JOURNEY_BENCH_EMAILS", 20_000);
    let webhooks = env_or("JOURNEY_BENCH_WEBHOOKS", 50_000);
    let events = env_or("JOURNEY_BENCH_EVENTS", 300_000);
    let users = (events / 10).max(1);
    let dir = std::env::temp_dir().join(format!("journey-bench-delivery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));

    let sink = smtp_sink(&dir);
    if let Some((_, port, out)) = sink.as_ref().filter(|_| emails > 0) {
        let config = write_config(
            &dir,
            "email.toml",
            &format!(
                "[channels.email]\nprovider = \"smtp\"\nurl = \"smtp://127.0.0.1:{port}\"\n\
                 from = \"Shop <hello@shop.example>\"\nconcurrency = 32\npool_size = 32\n"
            ),
        );
        let serve = Serve::start(
            &project(&dir, "email"),
            &dir.join("data-email"),
            &[
                "--clock",
                "wall",
                "--config",
                config.to_str().unwrap_or_default(),
            ],
        );
        measure("emails", emails, &serve, &|| lines(out));
    }

    // The receivers stand in for providers on other machines: at the
    // lowest priority, so that on two cores their CPU (aiosmtpd's Python
    // most of all) does not count against the service measured.
    let hooks = Receiver::start_at(
        SECRET,
        Box::new(|_, _| Answer::Status(200, vec![], String::new())),
        REMOTE_NICE,
    );
    let config = write_config(
        &dir,
        "webhook.toml",
        &format!(
            "[channels.webhook]\nprovider = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nconcurrency = 64\n",
            hooks.url
        ),
    );
    if webhooks > 0 {
        let serve = Serve::start(
            &project(&dir, "webhook"),
            &dir.join("data-webhook"),
            &[
                "--clock",
                "wall",
                "--config",
                config.to_str().unwrap_or_default(),
            ],
        );
        let arrivals = hooks.arrivals.clone();
        measure("webhooks", webhooks, &serve, &|| {
            arrivals.lock().map_or(0, |a| a.len() as u64)
        });
        let bad = hooks.arrivals().iter().filter(|a| !a.verified).count();
        assert_eq!(bad, 0, "every signature verifies");
    }

    // Ingest with the example journeys, without delivery and with every
    // channel they use bound to a provider.
    let stream = dir.join("events.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args([
            "generate",
            "--users",
            &users.to_string(),
            "--events",
            &events.to_string(),
        ])
        .args(["--malformed-rate", "0", "-o"])
        .arg(&stream)
        .status()
        .unwrap_or_else(|e| panic!("journey generate: {e}"));
    assert!(status.success());
    let file = std::fs::File::open(&stream).unwrap_or_else(|e| panic!("{e}"));
    let lines_: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let bodies: Arc<Vec<String>> = Arc::new(
        lines_
            .chunks(100)
            .map(|c| format!("{{\"batch\":[{}]}}", c.join(",")))
            .collect(),
    );
    let mut delivered = String::new();
    for channel in ["sms", "push", "whatsapp", "webhook"] {
        delivered.push_str(&format!(
            "[channels.{channel}]\nprovider = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nconcurrency = 64\n",
            hooks.url
        ));
    }
    // In-app messages go to the customers' inboxes in the data directory.
    delivered.push_str("[channels.in_app]\nprovider = \"inbox\"\n");
    if let Some((_, port, _)) = &sink {
        delivered.push_str(&format!(
            "[channels.email]\nprovider = \"smtp\"\nurl = \"smtp://127.0.0.1:{port}\"\n\
             from = \"Shop <hello@shop.example>\"\nconcurrency = 32\npool_size = 32\n"
        ));
    }
    let on = write_config(&dir, "all.toml", &delivered);
    let off: Vec<&str> = vec![];
    let bound = vec!["--config", on.to_str().unwrap_or_default()];
    // Alternating, `JOURNEY_BENCH_ROUNDS` times each (2): the machine is
    // shared, and one run alone says little.
    let pairs = env_or("JOURNEY_BENCH_ROUNDS", 2).max(1) as usize;
    let clients = env_or("JOURNEY_BENCH_CLIENTS", 32).max(1) as usize;
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let rounds = [
        ("delivery off (every channel `log`)", &off),
        ("delivery on (every channel bound)", &bound),
    ];
    for (round, (label, args)) in rounds.into_iter().cycle().take(2 * pairs).enumerate() {
        let before = hooks.arrivals().len();
        let emails_before = sink.as_ref().map_or(0, |(_, _, out)| lines(out));
        let data = dir.join(format!("data-ingest-{round}"));
        let mut all = vec!["--clock", "events"];
        all.extend(args.iter().copied());
        let serve = Serve::start(Path::new("journeys"), &data, &all);
        let cpu_before = cpu_seconds(serve.child.id());
        let threads_before = cpu_by_thread(serve.child.id());
        let begun = Instant::now();
        post_all(&format!("{}/v1/batch", serve.base), bodies.clone(), clients);
        let took = begun.elapsed();
        let cpu = cpu_seconds(serve.child.id()) - cpu_before;
        let threads = cpu_spent(&threads_before, &cpu_by_thread(serve.child.id()));
        let yielded = metric(&serve.base, "journey_delivery_yielded_ms_total");
        rates[round % 2].push(lines_.len() as f64 / took.as_secs_f64());
        // Let delivery finish what ingest made, for the count.
        std::thread::sleep(Duration::from_secs(3));
        println!(
            "ingest, {label}: {} events acknowledged durably in {:.2} s = {:.0} events/s \
             ({clients} clients, batches of 100; the service used {cpu:.1} CPU-seconds); delivered \
             meanwhile and in the next 3 s: {} webhooks, {} emails",
            lines_.len(),
            took.as_secs_f64(),
            lines_.len() as f64 / took.as_secs_f64(),
            hooks.arrivals().len() - before,
            sink.as_ref().map_or(0, |(_, _, out)| lines(out)) - emails_before,
        );
        println!(
            "  the service's CPU during ingest, by thread: {threads}; delivery waited for \
             ingest {yielded} ms"
        );
        drop(serve);
        // Each round on a settled disk: the rounds before leave no data
        // directory behind, nor dirty pages being written back during
        // this one's fsyncs (later rounds were up to a third slower).
        let _ = std::fs::remove_dir_all(&data);
        let _ = Command::new("sync").status();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off_median, on_median) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "ingest, medians of {pairs} rounds each: delivery off {off_median:.0} events/s, on \
         {on_median:.0} events/s ({:+.1}%)",
        (on_median / off_median - 1.0) * 100.0
    );
    if let Some((mut child, _, _)) = sink {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
