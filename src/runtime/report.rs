//! The counters of [`Stats`] as the report's JSON objects: one shape for
//! `journey simulate --report FILE.json` and the service's
//! `GET /admin/journeys`, written once here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{ExitReason, JourneyStats, NodeStats, Stats, SuppressReason};
use crate::compile::Program;
use crate::compile::program::{Journey, Node, NodeKind};
use crate::value::format_timestamp;

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
/// exits by reason, conversions and lift, per step, the funnel and the
/// sends per day ([`JourneyReport`] as JSON).
pub fn journey_json(program: &Program, journey: &Journey, j: &JourneyStats) -> Map<String, Value> {
    match serde_json::to_value(JourneyReport::new(program, journey, j)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The report of one journey: what `journey simulate --report` writes as
/// JSON and as HTML, and `GET /admin/journeys` serves. Every number of
/// either rendering is here, computed once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JourneyReport {
    pub journey: String,
    /// Entries, held-out ones included.
    pub entered: u64,
    pub held_out: u64,
    pub sent: u64,
    /// Sends per channel name, channels with none left out.
    pub sent_by_channel: BTreeMap<String, u64>,
    pub suppressed: SuppressedReport,
    pub render_failures: Vec<RenderFailureReport>,
    /// Exits per reason, every reason.
    pub exited: BTreeMap<&'static str, u64>,
    /// Conversions, held-out ones included.
    pub converted: u64,
    pub converted_held_out: u64,
    /// Entries and conversions of the users not held out.
    pub treated: u64,
    pub converted_treated: u64,
    pub conversion_rate_treated: Option<f64>,
    pub conversion_rate_held_out: Option<f64>,
    /// Relative lift: (treated rate - held-out rate) / held-out rate.
    pub lift: Option<f64>,
    /// Treated rate less held-out rate, in proportion (0.032 = 3.2
    /// points), and its 95% Newcombe interval ([`newcombe_interval`]).
    pub conversion_difference: Option<f64>,
    pub conversion_difference_ci95: Option<[f64; 2]>,
    pub steps: Vec<StepReport>,
    /// The most-travelled path to the end ([`JourneyReport::funnel`]).
    pub funnel: Vec<FunnelStage>,
    /// Sends per UTC day of the clock and channel, days without sends
    /// left out.
    pub sent_by_day: Vec<DayReport>,
    /// Instances still inside at the end of the run (at `--until`, or
    /// when time ran out with some still waiting).
    pub active: u64,
    /// Users offered entry and not admitted, per reason (every reason:
    /// `already_active`, `reentry`, `audience`, `null_key`).
    pub not_admitted: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuppressedReport {
    pub unreachable: u64,
    pub capped: u64,
    pub render_failed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RenderFailureReport {
    pub node: u32,
    pub template: String,
    pub count: u64,
    pub first_error: String,
    pub last_error: String,
}

/// One step: who arrived, what it sent, suppressed, and who ended there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    pub node: usize,
    pub step: String,
    pub line: u32,
    pub arrived: u64,
    pub sent: u64,
    pub suppressed: u64,
    /// Sends per channel name, channels with none left out.
    pub sent_by_channel: BTreeMap<String, u64>,
    /// Suppressions per reason, reasons with none left out.
    pub suppressed_by_reason: BTreeMap<&'static str, u64>,
    /// Instances that ended at the step, per reason, reasons with none
    /// left out.
    pub exited: BTreeMap<&'static str, u64>,
    /// For a send step whose `arrived` is more than `sent + suppressed`:
    /// why the rest were not decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecided: Option<Undecided>,
    /// For a split step, each arm: who took it, what they were sent from
    /// then on, and their conversions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arms: Vec<ArmReport>,
}

/// Instances that reached a send step and were neither sent nor
/// suppressed there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Undecided {
    /// Still waiting at the step (quiet hours, `on capped wait`), at the
    /// end of the run.
    pub waiting: u64,
    /// Ended there before the send was decided (an `exit on` while it
    /// waited, an `exit if` that held when it arrived, a goal reached).
    pub exited: u64,
}

/// One arm of a split step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmReport {
    pub arm: String,
    pub percent: f64,
    pub entered: u64,
    /// Messages sent to the instances that took the arm, from the split on.
    pub sent: u64,
    pub converted: u64,
    /// `converted` over `entered`.
    pub conversion_rate: Option<f64>,
}

/// A stage of the funnel: a step (`node`), or the entries and the
/// conversions (no `node`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelStage {
    pub stage: String,
    pub node: Option<usize>,
    pub count: u64,
    /// `count` over the first stage's.
    pub rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayReport {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub sent: u64,
    /// Sends per channel name, channels with none left out.
    pub by_channel: BTreeMap<String, u64>,
}

impl JourneyReport {
    pub fn new(program: &Program, journey: &Journey, j: &JourneyStats) -> JourneyReport {
        let l = lift(j);
        let channel = |c: usize| program.channels.get(c).map(|c| c.name.to_string());
        let by_channel = |counts: &[u64]| -> BTreeMap<String, u64> {
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .filter_map(|(c, n)| Some((channel(c)?, *n)))
                .collect()
        };
        let treated = j.entered.saturating_sub(j.held_out);
        let converted_treated = j.converted.saturating_sub(j.converted_held_out);
        let difference = match (l.treated, l.held_out) {
            (Some(t), Some(h)) => Some(t - h),
            _ => None,
        };
        let steps: Vec<StepReport> = journey
            .nodes
            .iter()
            .zip(&j.nodes)
            .enumerate()
            .map(|(id, (node, n))| step_report(program, id, node, n))
            .collect();
        JourneyReport {
            journey: journey.name.to_string(),
            entered: j.entered,
            held_out: j.held_out,
            sent: j.sent,
            sent_by_channel: by_channel(&j.sent_by_channel),
            suppressed: SuppressedReport {
                unreachable: j.suppressed_by_reason[SuppressReason::Unreachable as usize],
                capped: j.suppressed_by_reason[SuppressReason::Capped as usize],
                render_failed: j.suppressed_by_reason[SuppressReason::RenderFailed as usize],
            },
            render_failures: j
                .render_failures
                .iter()
                .map(|f| RenderFailureReport {
                    node: f.node,
                    template: f.template.to_string(),
                    count: f.count,
                    first_error: f.first.clone(),
                    last_error: f.last.clone(),
                })
                .collect(),
            exited: ExitReason::ALL
                .iter()
                .map(|r| (r.name(), j.exits(*r)))
                .collect(),
            converted: j.converted,
            converted_held_out: j.converted_held_out,
            treated,
            converted_treated,
            conversion_rate_treated: l.treated,
            conversion_rate_held_out: l.held_out,
            lift: l.lift,
            conversion_difference: difference,
            conversion_difference_ci95: newcombe_interval(
                (converted_treated, treated),
                (j.converted_held_out, j.held_out),
            ),
            funnel: funnel(
                journey,
                &steps,
                treated,
                journey.goal.is_some().then_some(converted_treated),
            ),
            steps,
            sent_by_day: j
                .sent_by_day
                .iter()
                .filter(|d| d.by_channel.iter().any(|n| *n > 0))
                .map(|d| DayReport {
                    day: day_text(d.day),
                    sent: d.by_channel.iter().sum(),
                    by_channel: by_channel(&d.by_channel),
                })
                .collect(),
            active: active_instances(j),
            not_admitted: j.not_admitted.all().into_iter().collect(),
        }
    }
}

fn step_report(program: &Program, id: usize, node: &Node, n: &NodeStats) -> StepReport {
    let mut sent_by_channel = BTreeMap::new();
    if let NodeKind::Send(send) = &node.kind {
        for (alt, count) in send.alternatives.iter().zip(&n.sent_by_alternative) {
            if *count > 0
                && let Some(c) = program.channels.get(alt.channel as usize)
            {
                *sent_by_channel.entry(c.name.to_string()).or_insert(0) += count;
            }
        }
    }
    let nonzero =
        |names: &mut dyn Iterator<Item = (&'static str, u64)>| -> BTreeMap<&'static str, u64> {
            names.filter(|(_, n)| *n > 0).collect()
        };
    StepReport {
        node: id,
        step: node.label.to_string(),
        line: node.line,
        arrived: n.arrived,
        sent: n.sent,
        suppressed: n.suppressed,
        sent_by_channel,
        suppressed_by_reason: nonzero(
            &mut SuppressReason::ALL
                .iter()
                .map(|r| (r.name(), n.suppressed_by_reason[*r as usize])),
        ),
        exited: nonzero(
            &mut ExitReason::ALL
                .iter()
                .map(|r| (r.name(), n.exits[*r as usize])),
        ),
        undecided: undecided(node, n),
        arms: match &node.kind {
            NodeKind::Split { arms, .. } => arms
                .iter()
                .enumerate()
                .map(|(i, arm)| {
                    let a = n.arms.get(i).copied().unwrap_or_default();
                    ArmReport {
                        arm: arm.label.to_string(),
                        percent: arm.percent,
                        entered: a.entered,
                        sent: a.sent,
                        converted: a.converted,
                        conversion_rate: (a.entered > 0)
                            .then(|| a.converted as f64 / a.entered as f64),
                    }
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// Why a send step's `arrived` exceeds its `sent + suppressed`: those that
/// ended at the step, and the rest still waiting there.
fn undecided(node: &Node, n: &NodeStats) -> Option<Undecided> {
    if !matches!(node.kind, NodeKind::Send(_)) {
        return None;
    }
    let open = n.arrived.saturating_sub(n.sent + n.suppressed);
    if open == 0 {
        return None;
    }
    let exited = n.exits.iter().sum::<u64>().min(open);
    Some(Undecided {
        waiting: open - exited,
        exited,
    })
}

/// The funnel: the treated entries, then the send steps on the
/// most-travelled path from the first step (at each fork, the successor
/// most instances arrived at; the lower node id on a tie), then the
/// treated conversions when the journey has a goal.
fn funnel(
    journey: &Journey,
    steps: &[StepReport],
    treated: u64,
    converted: Option<u64>,
) -> Vec<FunnelStage> {
    let arrived = |id: usize| steps.get(id).map_or(0, |s| s.arrived);
    let mut stages = vec![(String::from("entered"), None, treated)];
    let mut seen = vec![false; journey.nodes.len()];
    let mut at = (!journey.nodes.is_empty()).then_some(0usize);
    while let Some(id) = at {
        if seen[id] {
            break;
        }
        seen[id] = true;
        let node = &journey.nodes[id];
        if matches!(node.kind, NodeKind::Send(_)) {
            stages.push((node.label.to_string(), Some(id), arrived(id)));
        }
        at = node
            .kind
            .successors()
            .into_iter()
            .map(|(_, to)| to as usize)
            .filter(|to| *to < journey.nodes.len())
            .min_by_key(|to| (std::cmp::Reverse(arrived(*to)), *to));
    }
    if let Some(converted) = converted {
        stages.push((String::from("converted"), None, converted));
    }
    stages
        .into_iter()
        .map(|(stage, node, count)| FunnelStage {
            stage,
            node,
            count,
            rate: (treated > 0).then(|| count as f64 / treated as f64),
        })
        .collect()
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01.
fn day_text(day: i64) -> String {
    let stamp = format_timestamp(day.saturating_mul(86_400_000));
    stamp.split('T').next().unwrap_or_default().to_string()
}

/// The 95% interval of the difference of two proportions `a.0 / a.1 -
/// b.0 / b.1` by Newcombe's hybrid score method (Newcombe 1998, method
/// 10: from the two Wilson score intervals), which stays within [-1, 1]
/// and behaves at rates near 0 or 1 and on small groups where the Wald
/// interval does not. `None` when either group is empty.
pub fn newcombe_interval(a: (u64, u64), b: (u64, u64)) -> Option<[f64; 2]> {
    let (l1, p1, u1) = wilson(a.0, a.1)?;
    let (l2, p2, u2) = wilson(b.0, b.1)?;
    let d = p1 - p2;
    Some([
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ])
}

/// The 97.5th percentile of the standard normal distribution.
const Z_95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `x / n` at 95%: (lower, rate, upper).
fn wilson(x: u64, n: u64) -> Option<(f64, f64, f64)> {
    if n == 0 || x > n {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), p, (centre + half).min(1.0)))
}

/// The attribution table (LANGUAGE.md §4.4): what the report's
/// `"attribution"` object holds, and the human report's table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributionReport {
    pub conversions: u64,
    pub unattributed: u64,
    pub value: f64,
    /// One row per journey, channel and template that sent anything,
    /// sorted by them.
    pub touches: Vec<TouchReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TouchReport {
    pub journey: String,
    pub channel: String,
    pub template: String,
    pub sends: u64,
    pub credit: ModelNumbers,
    pub value: ModelNumbers,
}

/// One number per attribution model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ModelNumbers {
    pub first: f64,
    pub last: f64,
    pub linear: f64,
    pub time_decay: f64,
}

impl ModelNumbers {
    fn new(n: [f64; 4]) -> ModelNumbers {
        ModelNumbers {
            first: exact(n[0]),
            last: exact(n[1]),
            linear: exact(n[2]),
            time_decay: exact(n[3]),
        }
    }

    /// In [`crate::runtime::attribution::MODELS`] order.
    pub fn all(&self) -> [f64; 4] {
        [self.first, self.last, self.linear, self.time_decay]
    }
}

/// A sum of shares rounded to 1e-9: the contract's precision, and the
/// same digits however the additions were grouped (runtimes that each held
/// some of the customers, merged).
fn exact(x: f64) -> f64 {
    let rounded = (x * 1e9).round() / 1e9;
    if rounded == 0.0 { 0.0 } else { rounded }
}

impl AttributionReport {
    /// The table, when the program has an `attribution` item.
    pub fn new(program: &Program, stats: &Stats) -> Option<AttributionReport> {
        program.attribution.as_ref()?;
        let a = &stats.attribution;
        type Key = (String, String, String);
        let mut rows: BTreeMap<Key, (u64, [f64; 4], [f64; 4])> = BTreeMap::new();
        for (journey, j) in program.journeys.iter().zip(&stats.journeys) {
            for (node, n) in journey.nodes.iter().zip(&j.nodes) {
                let NodeKind::Send(send) = &node.kind else {
                    continue;
                };
                for (alt, count) in send.alternatives.iter().zip(&n.sent_by_alternative) {
                    let Some(channel) = program.channels.get(alt.channel as usize) else {
                        continue;
                    };
                    if *count > 0 {
                        let key = (
                            journey.name.to_string(),
                            channel.name.to_string(),
                            alt.template.to_string(),
                        );
                        rows.entry(key).or_default().0 += count;
                    }
                }
            }
        }
        for r in &a.rows {
            let key = (
                r.journey.to_string(),
                r.channel.to_string(),
                r.template.to_string(),
            );
            let row = rows.entry(key).or_default();
            for m in 0..4 {
                row.1[m] += r.credit[m];
                row.2[m] += r.value[m];
            }
        }
        Some(AttributionReport {
            conversions: a.conversions,
            unattributed: a.unattributed,
            value: exact(a.value),
            touches: rows
                .into_iter()
                .map(
                    |((journey, channel, template), (sends, credit, value))| TouchReport {
                        journey,
                        channel,
                        template,
                        sends,
                        credit: ModelNumbers::new(credit),
                        value: ModelNumbers::new(value),
                    },
                )
                .collect(),
        })
    }
}

/// Instances running now: entries less exits (a held-out entry exits at
/// once, so it is not counted).
pub fn active_instances(j: &JourneyStats) -> u64 {
    j.entered.saturating_sub(j.exits.iter().sum::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombe_interval_matches_the_published_example() {
        // Newcombe (1998), Statistics in Medicine 17, table II: 56/70 vs
        // 48/80, method 10 gives 0.0524 to 0.3339.
        let [low, high] = newcombe_interval((56, 70), (48, 80)).unwrap_or_default();
        assert!((low - 0.0524).abs() < 5e-5, "{low}");
        assert!((high - 0.3339).abs() < 5e-5, "{high}");
        // 9/10 vs 3/10: 0.1705 to 0.8090 in the same table.
        let [low, high] = newcombe_interval((9, 10), (3, 10)).unwrap_or_default();
        assert!((low - 0.1705).abs() < 5e-5, "{low}");
        assert!((high - 0.8090).abs() < 5e-5, "{high}");
    }

    #[test]
    fn newcombe_interval_needs_both_groups() {
        assert_eq!(newcombe_interval((0, 0), (1, 2)), None);
        assert_eq!(newcombe_interval((1, 2), (0, 0)), None);
        assert_eq!(newcombe_interval((3, 2), (1, 2)), None);
        let [low, high] = newcombe_interval((0, 5), (5, 5)).unwrap_or_default();
        assert!((-1.0..=0.0).contains(&low) && (-1.0..=0.0).contains(&high));
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_text(0), "1970-01-01");
        assert_eq!(day_text(20_514), "2026-03-02");
    }
}
