//! `GET /metrics`: the service's counters and gauges through the `metrics`
//! facade, rendered as Prometheus text by its exporter (no listener of its
//! own: the API serves it). Names and help texts live here, once.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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

/// The process's recorder, installed once; `None` when another recorder
/// was installed first (an embedder's own).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
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
}
