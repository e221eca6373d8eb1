//! A webhook receiver for the delivery tests and bench: HTTP/1.1 on
//! loopback (keep-alive), written on tokio's sockets so that a test can
//! answer anything a real receiver might — a status with headers, no answer
//! at all, a connection reset — and records every arrival with whether its
//! Standard Webhooks signature verifies. The signature is checked here
//! from the specification's formula (HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, base64, `v1,`), not with the crate the
//! service signs with.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request that reached the receiver.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: Instant,
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub idempotency_key: String,
    pub content_type: String,
    pub body: String,
    /// The signature verifies and the timestamp is within five minutes.
    pub verified: bool,
}

/// What the receiver does with an arrival.
pub enum Answer {
    /// A status, extra headers, a body.
    Status(u16, Vec<(String, String)>, String),
    /// Waits this long, then closes without answering.
    Hang(Duration),
    /// Resets the connection (TCP RST) without answering.
    Reset,
}

/// Decides an arrival's answer; `nth` counts the arrivals of its id, from 1.
pub type Decide = dyn Fn(&Arrival, usize) -> Answer + Send + Sync;

pub struct Receiver {
    pub url: String,
    pub arrivals: Arc<Mutex<Vec<Arrival>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Listens on a free loopback port; `secret` is the `whsec_` secret
    /// the service signs with.
    pub fn start(secret: &str, decide: Box<Decide>) -> Receiver {
        Receiver::start_at(secret, decide, 0)
    }

    /// [`Receiver::start`] with its threads at nice value `nice` (at 19,
    /// the lowest, under `SCHED_IDLE` as well): a bench that stands the
    /// receiver in for a provider on another machine keeps the receiver's
    /// CPU from counting against the service it measures.
    pub fn start_at(secret: &str, decide: Box<Decide>, nice: i32) -> Receiver {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .expect("a base64 secret");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || {
                if nice != 0 {
                    // SAFETY: setpriority only reads its three integer
                    // arguments and sets the calling thread's nice value
                    // (`who` 0); it touches no memory of this process.
                    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
                }
                if nice >= 19 {
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: sched_setscheduler reads `param`, a local
                    // that outlives the call, and changes only the calling
                    // thread's policy (`pid` 0).
                    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
                }
            })
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a port");
        let url = format!(
            "http://{}/hooks",
            listener.local_addr().expect("an address")
        );
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new((key, decide, arrivals.clone(), Mutex::new(HashMap::new())));
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, state.clone()));
            }
        });
        Receiver {
            url,
            arrivals,
            runtime: Some(runtime),
        }
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals").clone()
    }

    /// Waits until `done` holds of the arrivals, up to `limit`.
    pub fn wait_for(&self, limit: Duration, done: impl Fn(&[Arrival]) -> bool) -> Vec<Arrival> {
        let deadline = Instant::now() + limit;
        loop {
            let arrivals = self.arrivals();
            if done(&arrivals) || Instant::now() > deadline {
                return arrivals;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The key, the decider, the arrivals, and how many of each id came.
type State = (
    Vec<u8>,
    Box<Decide>,
    Arc<Mutex<Vec<Arrival>>>,
    Mutex<HashMap<String, usize>>,
);

async fn connection(mut stream: TcpStream, state: Arc<State>) {
    let (key, decide, arrivals, counts) = &*state;
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
        buffer.drain(..head_end + length);
        let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
        let arrival = Arrival {
            at: Instant::now(),
            path,
            verified: verify(key, &id, &timestamp, &body, &header("webhook-signature")),
            id,
            timestamp,
            idempotency_key: header("idempotency-key"),
            content_type: header("content-type"),
            body,
        };
        let nth = {
            let mut all = arrivals.lock().expect("arrivals");
            all.push(arrival.clone());
            let mut seen = counts.lock().expect("counts");
            let n = seen.entry(arrival.id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        match decide(&arrival, nth) {
            Answer::Status(code, extra, text) => {
                let mut response = format!(
                    "HTTP/1.1 {code} Answer\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&text);
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
            Answer::Hang(wait) => {
                tokio::time::sleep(wait).await;
                return;
            }
            Answer::Reset => {
                // Linger zero: closing sends RST, not FIN (and does not
                // block, the deprecation's concern).
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

/// The Standard Webhooks check, from the specification's formula.
fn verify(key: &[u8], id: &str, timestamp: &str, body: &str, signatures: &str) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - ts).abs() > 300 {
        return false;
    }
    let mac = hmac_sha256(key, format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    );
    signatures.split(' ').any(|s| s == expected)
}

/// HMAC (RFC 2104) over SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

#[test]
fn hmac_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5b dc c1 46 bf 60 75 4e 6a 04 24 26 08 95 75 c7 5a 00 3f 08 9d 27 39 83 9d ec 58 b9 64 ec 38 43"
            .replace(' ', "")
    );
}
