//! A nats-server with JetStream of a test's own (the `--nats` tests):
//! on a free port with a store in the test's directory, killed when
//! dropped. Without the binary (Debian's `nats-server` package) a test
//! says so and passes, except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::{Server, free_port};

/// A nats-server of the test's own, stopped when dropped; it holds the
/// tests' lock: one test at a time runs its processes (three debug builds
/// and a server each are enough for two cores).
pub struct Nats {
    child: Child,
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

fn nats_binary() -> Option<PathBuf> {
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

/// One `journey serve --nats` process with `--config config --clock clock
/// --partitions partitions`, its stderr appended to `log`.
pub fn process(
    project: &Path,
    nats: &Nats,
    config: &Path,
    clock: &str,
    partitions: u32,
    log: &Path,
) -> Server {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let partitions = partitions.to_string();
    let config = config.to_string_lossy();
    Server::spawn(
        project,
        &[
            "--nats",
            &nats.url,
            "--config",
            &config,
            "--clock",
            clock,
            "--partitions",
            &partitions,
        ],
        Stdio::from(stderr),
    )
}
