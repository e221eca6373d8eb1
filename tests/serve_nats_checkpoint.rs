//! A takeover reads the partition's checkpoint while the previous owner
//! may be replacing it (a handover: the owner checkpoints as it lets go).
//! A replacing `put` purges the old object's chunks, and async-nats waits
//! for them forever (nats-io/nats.rs#1414); this once left a partition
//! taken and never run. Against a real nats-server: a read of an object
//! whose chunks were purged after its metadata was read stops waiting and
//! reads the newer checkpoint instead; a checkpoint that stays unreadable
//! is an error, not a hang; one that is not there is `None`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store::{self, Object, ObjectStore};
use journey::service::nats::checkpoint::{self, Checkpoint};

#[path = "support/server.rs"]
mod server;
use server::scratch;

#[path = "support/nats.rs"]
mod nats;
use nats::start_nats;

/// Bytes that differ by `seed`, over several 128 KiB chunks.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn store(url: &str) -> ObjectStore {
    nats::jetstream(url)
        .await
        .create_object_store(object_store::Config {
            bucket: "CHECKPOINTS_TEST".into(),
            ..Default::default()
        })
        .await
        .expect("an object store")
}

#[test]
fn a_checkpoint_replaced_while_it_is_read_is_read_again_not_waited_for() {
    let dir = scratch("nats-checkpoint-replaced");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let runtime = nats::runtime();
    runtime.block_on(async {
        let store = store(&nats.url).await;
        let old = bytes(1, 300_000);
        let new = bytes(2, 450_000);
        checkpoint::write(&store, 3, 10, &old)
            .await
            .expect("written");

        // A taker reads the old checkpoint's metadata; then the previous
        // owner replaces it, which purges the old chunks.
        let stale: Object = store.get(checkpoint::name(3)).await.expect("found");
        assert_eq!(stale.info().description.as_deref(), Some("10"));
        checkpoint::write(&store, 3, 20, &new)
            .await
            .expect("written");

        let logged = Mutex::new(Vec::<String>::new());
        let log = |line: &str| logged.lock().unwrap().push(line.to_string());
        let mut stale = Some(stale);
        let name = checkpoint::name(3);
        let started = Instant::now();
        let read = checkpoint::read_opening(&name, Duration::from_secs(1), &log, |_| {
            let stale = stale.take();
            let store = store.clone();
            let name = name.clone();
            async move {
                match stale {
                    Some(object) => Ok(object),
                    None => store.get(name).await,
                }
            }
        })
        .await
        .expect("the newer checkpoint reads");
        assert_eq!(
            read,
            Some(Checkpoint {
                position: 20,
                bytes: new.clone()
            }),
            "the read went on to the checkpoint that replaced the one it began"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stalled read was given up after one chunk's wait, not waited for: {:?}",
            started.elapsed()
        );
        let logged = logged.into_inner().unwrap();
        assert_eq!(logged.len(), 1, "one read started again: {logged:?}");
        assert!(
            logged[0].contains("at position 10")
                && logged[0].contains("no chunk arrived within 1s after 0 of 300000 bytes")
                && logged[0].contains("reading it again"),
            "the log says which read stalled and where: {logged:?}"
        );

        // The read a takeover makes, with its own waits: the newest.
        let read = checkpoint::read(&store, 3, &|_| {})
            .await
            .expect("reads")
            .expect("there is one");
        assert_eq!((read.position, read.bytes.len()), (20, new.len()));
        assert_eq!(read.bytes, new);
        // No checkpoint yet: a partition starts from nothing.
        assert_eq!(checkpoint::read(&store, 4, &|_| {}).await, Ok(None));
    });
}

#[test]
fn a_checkpoint_that_never_reads_is_an_error_after_its_tries() {
    let dir = scratch("nats-checkpoint-never");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let runtime = nats::runtime();
    runtime.block_on(async {
        let store = store(&nats.url).await;
        checkpoint::write(&store, 0, 7, &bytes(1, 200_000))
            .await
            .expect("written");
        // Every open hands out metadata whose chunks are gone.
        let mut stale = Vec::new();
        for round in 0..checkpoint::READS {
            stale.push(store.get(checkpoint::name(0)).await.expect("found"));
            let position = 8 + u64::from(round);
            checkpoint::write(&store, 0, position, &bytes(2 + round as u8, 200_000))
                .await
                .expect("written");
        }
        let logged = Mutex::new(0);
        let log = |_: &str| *logged.lock().unwrap() += 1;
        let mut stale = stale.into_iter();
        let name = checkpoint::name(0);
        let read = checkpoint::read_opening(&name, Duration::from_millis(300), &log, |_| {
            let object = stale.next().expect("one per try");
            async move { Ok(object) }
        })
        .await;
        let why = read.expect_err("a checkpoint that never reads is an error");
        assert!(
            why.starts_with(
                "checkpoint `partition-0` does not read after 5 tries: no chunk arrived"
            ),
            "{why}"
        );
        assert_eq!(*logged.lock().unwrap(), checkpoint::READS);
    });
}
