//! A partition's checkpoints under `--nats`, against a real nats-server.
//!
//! A takeover reads the newest checkpoint while a stale owner (slowed past
//! its lease) may be storing a newer one, which deletes the old object's
//! chunks; async-nats then waits for them forever (nats-io/nats.rs#1414),
//! which once left a partition taken and never run. Here a read whose
//! object is deleted under it stops waiting and reads the newer checkpoint;
//! one that never reads is an error, not a hang. A stale owner cannot put
//! an older checkpoint back over a newer one (the pointer moves by
//! compare-and-set), what crashes leave is deleted, and a deployment's
//! checkpoint of an earlier build is read and replaced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use async_nats::jetstream::object_store::{self, ObjectStore};
use futures_util::StreamExt;
use journey::service::nats::checkpoint::{
    self, Checkpoint, Held, Stored, forget_others, moved_since, read, read_with, store,
};

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

async fn buckets(url: &str) -> (ObjectStore, kv::Store) {
    let js = nats::jetstream(url).await;
    let objects = js
        .create_object_store(object_store::Config {
            bucket: "CHECKPOINTS_TEST".into(),
            ..Default::default()
        })
        .await
        .expect("an object store");
    // A bucket as the deployment makes them (async-nats's own
    // `create_key_value` asks nats-server 2.9 for what it lacks).
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "KV_STATE_TEST".into(),
        subjects: vec!["$KV.STATE_TEST.>".into()],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .expect("a bucket's stream");
    let state = js.get_key_value("STATE_TEST").await.expect("a bucket");
    (objects, state)
}

/// The names of partition `p`'s objects (and of an earlier build's).
async fn objects_of(objects: &ObjectStore, p: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut list = objects.list().await.expect("lists");
    while let Some(info) = list.next().await {
        let name = info.expect("an object").name;
        if name.starts_with(&format!("partition-{p}.")) || name == format!("partition-{p}") {
            names.push(name);
        }
    }
    names
}

async fn stored(
    objects: &ObjectStore,
    state: &kv::Store,
    p: u32,
    position: u64,
    bytes: &[u8],
    held: &mut Held,
) -> Stored {
    store(objects, state, p, position, bytes, held)
        .await
        .expect("stored or fenced")
}

#[test]
fn a_checkpoint_replaced_while_it_is_read_is_read_again_not_waited_for() {
    let dir = scratch("nats-checkpoint-replaced");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    nats::runtime().block_on(async {
        let (objects, state) = buckets(&nats.url).await;
        let old = bytes(1, 300_000);
        let new = bytes(2, 450_000);
        let owner = Arc::new(tokio::sync::Mutex::new(Held::default()));
        let mut held = owner.lock().await;
        assert_eq!(
            stored(&objects, &state, 3, 10, &old, &mut held).await,
            Stored::Stored
        );
        drop(held);

        // The taker has read the old checkpoint's metadata; then the owner
        // stores a newer one, which deletes the old one's chunks.
        let logged = Mutex::new(Vec::<String>::new());
        let log = |line: &str| logged.lock().unwrap().push(line.to_string());
        let started = Instant::now();
        let (first, _) = read_with(
            &objects,
            &state,
            3,
            Duration::from_secs(1),
            &log,
            |attempt| {
                let (objects, state, owner, new) =
                    (objects.clone(), state.clone(), owner.clone(), new.clone());
                async move {
                    if attempt == 0 {
                        let mut held = owner.lock().await;
                        let done = stored(&objects, &state, 3, 20, &new, &mut held).await;
                        assert_eq!(done, Stored::Stored);
                    }
                }
            },
        )
        .await
        .expect("the newer checkpoint reads");
        assert_eq!(
            first,
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
        let (newest, _) = read(&objects, &state, 3, &|_| {}).await.expect("reads");
        let newest = newest.expect("there is one");
        assert_eq!((newest.position, newest.bytes.len()), (20, new.len()));
        assert_eq!(newest.bytes, new);
        assert_eq!(objects_of(&objects, 3).await.len(), 1, "the old one went");
        // No checkpoint yet: a partition starts from nothing.
        let (none, _) = read(&objects, &state, 4, &|_| {}).await.expect("reads");
        assert_eq!(none, None);
    });
}

#[test]
fn a_checkpoint_that_never_reads_is_an_error_after_its_tries() {
    let dir = scratch("nats-checkpoint-never");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    nats::runtime().block_on(async {
        let (objects, state) = buckets(&nats.url).await;
        let owner = Arc::new(tokio::sync::Mutex::new(Held::default()));
        let mut held = owner.lock().await;
        stored(&objects, &state, 0, 7, &bytes(1, 200_000), &mut held).await;
        drop(held);
        // Every read's object is replaced once its metadata was read.
        let logged = Mutex::new(0);
        let log = |_: &str| *logged.lock().unwrap() += 1;
        let read = read_with(
            &objects,
            &state,
            0,
            Duration::from_millis(300),
            &log,
            |attempt| {
                let (objects, state, owner) = (objects.clone(), state.clone(), owner.clone());
                async move {
                    let mut held = owner.lock().await;
                    let position = 8 + u64::from(attempt);
                    let content = bytes(2 + attempt as u8, 200_000);
                    stored(&objects, &state, 0, position, &content, &mut held).await;
                }
            },
        )
        .await;
        let why = read.expect_err("a checkpoint that never reads is an error");
        assert!(
            why.starts_with(
                "partition 0's checkpoint does not read after 5 tries: no chunk arrived"
            ),
            "{why}"
        );
        assert_eq!(*logged.lock().unwrap(), checkpoint::READS);
    });
}

#[test]
fn a_stale_owner_cannot_put_an_older_checkpoint_back() {
    let dir = scratch("nats-checkpoint-fenced");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    nats::runtime().block_on(async {
        let (objects, state) = buckets(&nats.url).await;
        let mut stale = Held::default();
        assert_eq!(
            stored(&objects, &state, 3, 10, &bytes(1, 1_000), &mut stale).await,
            Stored::Stored
        );
        // A taker restores it and stores a newer one.
        let (restored, mut taker) = read(&objects, &state, 3, &|_| {}).await.expect("reads");
        assert_eq!(restored.map(|c| c.position), Some(10));
        assert!(!moved_since(&state, 3, &taker).await.expect("reads"));
        assert_eq!(
            stored(&objects, &state, 3, 20, &bytes(2, 1_000), &mut taker).await,
            Stored::Stored
        );
        // The stale owner's older one is refused, and its object deleted.
        assert!(moved_since(&state, 3, &stale).await.expect("reads"));
        assert_eq!(
            stored(&objects, &state, 3, 15, &bytes(3, 1_000), &mut stale).await,
            Stored::Fenced
        );
        let (newest, _) = read(&objects, &state, 3, &|_| {}).await.expect("reads");
        assert_eq!(newest.map(|c| c.position), Some(20));
        assert!(!moved_since(&state, 3, &taker).await.expect("reads"));
        assert_eq!(objects_of(&objects, 3).await.len(), 1);

        // What a crash left (an object stored, the pointer not moved) and
        // an earlier build's object go; the newest stays.
        for name in ["partition-3.99.deadbeef", "partition-3"] {
            let meta = object_store::ObjectMetadata {
                name: name.into(),
                description: Some("99".into()),
                ..Default::default()
            };
            objects.put(meta, &mut &b"left"[..]).await.expect("stored");
        }
        stored(
            &objects,
            &state,
            30,
            5,
            b"another partition",
            &mut Held::default(),
        )
        .await;
        let js = nats::jetstream(&nats.url).await;
        let forgot = forget_others(&js, &objects, "CHECKPOINTS_TEST", 3, &taker).await;
        assert_eq!(forgot, Ok(2));
        assert_eq!(objects_of(&objects, 3).await.len(), 1);
        assert_eq!(objects_of(&objects, 30).await.len(), 1, "not partition 3's");
        let (newest, _) = read(&objects, &state, 3, &|_| {}).await.expect("reads");
        assert_eq!(newest.map(|c| c.position), Some(20));

        // A deployment of an earlier build: one object, no pointer. It is
        // read, and the first store replaces it.
        let meta = object_store::ObjectMetadata {
            name: "partition-5".into(),
            description: Some("7".into()),
            ..Default::default()
        };
        objects
            .put(meta, &mut &b"earlier"[..])
            .await
            .expect("stored");
        let (earlier, mut held) = read(&objects, &state, 5, &|_| {}).await.expect("reads");
        assert_eq!(
            earlier,
            Some(Checkpoint {
                position: 7,
                bytes: b"earlier".to_vec()
            })
        );
        assert_eq!(
            stored(&objects, &state, 5, 8, b"now", &mut held).await,
            Stored::Stored
        );
        let (now, _) = read(&objects, &state, 5, &|_| {}).await.expect("reads");
        assert_eq!(now.map(|c| c.position), Some(8));
        let names = objects_of(&objects, 5).await;
        assert!(
            names.len() == 1 && names[0].starts_with("partition-5.8."),
            "{names:?}"
        );
    });
}
