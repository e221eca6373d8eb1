//! The counters of [`Stats`] as the report's JSON objects: one shape for
//! `journey simulate --report FILE.json` and the service's
//! `GET /admin/journeys`, written once here.

use serde_json::{Map, Value, json};

use super::{ExitReason, JourneyStats, Stats, SuppressReason};
use crate::compile::Program;
use crate::compile::program::Journey;

/// Conversion rates of treated and held-out users, and the relative lift.
pub struct Lift {
    pub treated: Option<f64>,
    pub held_out: Option<f64>,
    pub lift: Option<f64>,
}

pub fn lift(j: &JourneyStats) -> Lift {
    let rate =
        |converted: u64, entered: u64| (entered > 0).then(|| converted as f64 / entered as f64);
    let treated = rate(
        j.converted.saturating_sub(j.converted_held_out),
        j.entered.saturating_sub(j.held_out),
    );
    let held_out = rate(j.converted_held_out, j.held_out);
    let lift = match (treated, held_out) {
        (Some(t), Some(h)) if h > 0.0 => Some((t - h) / h),
        _ => None,
    };
    Lift {
        treated,
        held_out,
        lift,
    }
}

/// The event counters of the runtime (the report's `events` object, less
/// what the reader of a file counts).
pub fn events_json(stats: &Stats) -> Map<String, Value> {
    let fields = [
        ("duplicates", stats.duplicates),
        ("dedup_evicted_early", stats.dedup_evicted_early),
        ("late", stats.late),
        ("rejected", stats.rejected),
        ("irrelevant", stats.irrelevant),
        ("ignored_kinds", stats.ignored_kinds),
        ("type_mismatches", stats.type_mismatches),
        ("unknown_time_zones", stats.unknown_time_zones),
        ("render_errors", stats.render_errors),
        ("unmatched_engagements", stats.unmatched_engagements),
    ];
    fields
        .into_iter()
        .map(|(name, n)| (name.to_string(), json!(n)))
        .collect()
}

/// One journey's counters: entries, sends per channel, suppressions and
/// exits by reason, conversions and lift, and per step.
pub fn journey_json(program: &Program, journey: &Journey, j: &JourneyStats) -> Map<String, Value> {
    let l = lift(j);
    let sent: Map<String, Value> = program
        .channels
        .iter()
        .zip(&j.sent_by_channel)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.name.to_string(), json!(n)))
        .collect();
    let exits: Map<String, Value> = ExitReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(j.exits(*r))))
        .collect();
    let render_failures: Vec<Value> = j
        .render_failures
        .iter()
        .map(|f| {
            json!({"node": f.node, "template": &*f.template, "count": f.count,
                   "first_error": f.first, "last_error": f.last})
        })
        .collect();
    let steps: Vec<Value> = journey
        .nodes
        .iter()
        .zip(&j.nodes)
        .enumerate()
        .map(|(id, (node, n))| {
            json!({"node": id, "step": &*node.label, "line": node.line,
                   "arrived": n.arrived, "sent": n.sent, "suppressed": n.suppressed})
        })
        .collect();
    let object = json!({
        "journey": &*journey.name,
        "entered": j.entered,
        "held_out": j.held_out,
        "sent": j.sent,
        "sent_by_channel": sent,
        "suppressed": {
            "unreachable": j.suppressed_by_reason[SuppressReason::Unreachable as usize],
            "capped": j.suppressed_by_reason[SuppressReason::Capped as usize],
            "render_failed": j.suppressed_by_reason[SuppressReason::RenderFailed as usize],
        },
        "render_failures": render_failures,
        "exited": exits,
        "converted": j.converted,
        "converted_held_out": j.converted_held_out,
        "conversion_rate_treated": l.treated,
        "conversion_rate_held_out": l.held_out,
        "lift": l.lift,
        "steps": steps,
    });
    match object {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Instances running now: entries less exits (a held-out entry exits at
/// once, so it is not counted).
pub fn active_instances(j: &JourneyStats) -> u64 {
    j.entered.saturating_sub(j.exits.iter().sum::<u64>())
}
