//! `GET /metrics`: the service's counters and gauges through the `metrics`
//! facade, rendered as Prometheus text by its exporter (no listener of its
//! own: the API serves it). Names and help texts live here, once.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Messages accepted (durable), by `type`.
pub const INGESTED: &str = "journey_ingested_total";
/// Requests refused, by `reason`.
pub const REJECTED: &str = "journey_rejected_total";
/// Actions committed to the outbox, by `journey` and `kind`.
pub const ACTIONS: &str = "journey_actions_total";
/// Instances active now, by `journey`.
pub const ACTIVE: &str = "journey_active_instances";
/// Journal entries kept, over every partition.
pub const JOURNAL_ENTRIES: &str = "journey_journal_entries";
/// Seconds since the oldest partition checkpoint.
pub const CHECKPOINT_AGE: &str = "journey_checkpoint_age_seconds";
/// How late the wall clock's timers were noticed (`--clock wall`).
pub const TIMER_LAG: &str = "journey_timer_lag_seconds";
/// Messages accepted and not yet durable.
pub const PENDING: &str = "journey_ingest_pending";
/// Delivery attempts, by `channel`, `provider` and `outcome` (`sent`,
/// `retry`, `failed`).
pub const DELIVERY_ATTEMPTS: &str = "journey_delivery_attempts_total";
/// Sends finished, by `channel`, `provider` and `outcome` (`sent`,
/// `failed`, `logged`).
pub const DELIVERIES: &str = "journey_deliveries_total";
/// How long one attempt took, by `channel` and `provider` (a histogram).
pub const DELIVERY_SECONDS: &str = "journey_delivery_seconds";
/// Sends read from the outbox and not finished, by `channel`.
pub const OUTBOX_PENDING: &str = "journey_outbox_pending";
/// Outbox actions delivery has not read yet.
pub const DELIVERY_BACKLOG: &str = "journey_delivery_backlog";
/// Milliseconds delivery's reader waited for ingest to leave the writer
/// some room.
pub const DELIVERY_YIELDED: &str = "journey_delivery_yielded_ms_total";
/// `--nats`: per `partition` this process holds, its journal entries not
/// applied yet.
pub const PARTITION_LAG: &str = "journey_partition_lag_entries";
/// `--nats`: per `partition` this process holds, the journal position it
/// has applied.
pub const PARTITION_POSITION: &str = "journey_partition_position";
/// `--nats`: per `partition` this process holds, seconds since its last
/// checkpoint.
pub const PARTITION_CHECKPOINT_AGE: &str = "journey_partition_checkpoint_age_seconds";
/// `--nats`: per `partition`, 1 while this process holds it.
pub const PARTITION_HELD: &str = "journey_partition_held";

/// The buckets of [`DELIVERY_SECONDS`]: a local relay answers in a
/// millisecond, a provider's API in tens to hundreds.
const DELIVERY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's recorder, installed once; `None` when another recorder
/// was installed first (an embedder's own).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), &DELIVERY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(INGESTED, "Messages accepted and durable, by type");
    describe_counter!(REJECTED, "Ingest requests refused, by reason");
    describe_counter!(
        ACTIONS,
        "Actions committed to the outbox, by journey and kind"
    );
    describe_gauge!(ACTIVE, "Instances active now, by journey");
    describe_gauge!(
        JOURNAL_ENTRIES,
        "Journal entries kept, over every partition"
    );
    describe_gauge!(
        CHECKPOINT_AGE,
        "Seconds since the oldest partition checkpoint"
    );
    describe_gauge!(
        TIMER_LAG,
        "Seconds between a timer's due time and its firing being journaled"
    );
    describe_gauge!(PENDING, "Messages accepted and not yet durable");
    describe_counter!(
        DELIVERY_ATTEMPTS,
        "Delivery attempts, by channel, provider and outcome"
    );
    describe_counter!(
        DELIVERIES,
        "Sends finished, by channel, provider and outcome"
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Seconds one delivery attempt took, by channel and provider"
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Sends read from the outbox and not finished, by channel"
    );
    describe_gauge!(DELIVERY_BACKLOG, "Outbox actions delivery has not read yet");
    describe_counter!(
        DELIVERY_YIELDED,
        "Milliseconds delivery waited before reading the outbox while ingest kept the writer busy"
    );
    describe_gauge!(
        PARTITION_LAG,
        "Journal entries of a partition held here not applied yet (--nats)"
    );
    describe_gauge!(
        PARTITION_POSITION,
        "The journal position a partition held here has applied (--nats)"
    );
    describe_gauge!(
        PARTITION_CHECKPOINT_AGE,
        "Seconds since the last checkpoint of a partition held here (--nats)"
    );
    describe_gauge!(
        PARTITION_HELD,
        "1 while this process holds the partition (--nats)"
    );
}
