//! The report of `journey simulate`: per journey and per step, what
//! happened — entries, hold-outs, sends per channel, suppressions and exits
//! by reason, conversions of treated and held-out users and the lift. As
//! text for people and JSON for tools; both deterministic.

use std::fmt::Write as _;

use serde_json::json;

use crate::compile::Program;
use crate::runtime::report::{JourneyReport, lift};
use crate::runtime::{self, ExitReason, Stats, SuppressReason};

/// What the CLI counted while reading the event file.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunCounts {
    pub lines: u64,
    pub malformed: u64,
    /// Events after `--until`, not processed.
    pub after_until: u64,
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |x| format!("{:.1}%", x * 100.0))
}

fn signed_percent(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |x| format!("{:+.1}%", x * 100.0))
}

/// The report for people.
pub fn text(program: &Program, stats: &Stats, run: &RunCounts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "events: {} lines, {} malformed, {} duplicates, {} late, {} not for any journey, {} ignored kinds{}",
        run.lines,
        run.malformed,
        stats.duplicates,
        stats.late,
        stats.irrelevant,
        stats.ignored_kinds,
        if run.after_until > 0 {
            format!(", {} after --until", run.after_until)
        } else {
            String::new()
        }
    );
    let problems = [
        (
            stats.type_mismatches,
            "type mismatches (condition read as false)",
        ),
        (
            stats.rejected,
            "events skipped for their time (each reported above with its line)",
        ),
        (stats.unknown_time_zones, "unknown time zones (UTC used)"),
        (
            stats.render_errors,
            "sends not made: the template failed to render",
        ),
        (
            stats.unmatched_engagements,
            "engagements matching no message",
        ),
        (
            stats.dedup_evicted_early,
            "message ids forgotten before their de-duplication window ended, \
             as the window held its capacity (a redelivery of one is processed \
             again; raise `--dedup-capacity`)",
        ),
    ];
    for (n, what) in problems {
        if n > 0 {
            let _ = writeln!(out, "  {n} {what}");
        }
    }
    for (journey, j) in program.journeys.iter().zip(&stats.journeys) {
        let _ = write!(out, "\njourney {}", journey.name);
        if let Some(name) = &journey.display_name {
            let _ = write!(out, " ({name})");
        }
        out.push('\n');
        let _ = writeln!(out, "  entered     {} ({} held out)", j.entered, j.held_out);
        let sent: Vec<String> = program
            .channels
            .iter()
            .zip(&j.sent_by_channel)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {n}", c.name))
            .collect();
        let _ = writeln!(
            out,
            "  sent        {}{}",
            j.sent,
            if sent.is_empty() {
                String::new()
            } else {
                format!(" ({})", sent.join(", "))
            }
        );
        let _ = write!(
            out,
            "  suppressed  {} (unreachable {}, capped {}",
            j.suppressed,
            j.suppressed_by_reason[SuppressReason::Unreachable as usize],
            j.suppressed_by_reason[SuppressReason::Capped as usize]
        );
        let failed = j.suppressed_by_reason[SuppressReason::RenderFailed as usize];
        if failed > 0 {
            let _ = write!(out, ", render_failed {failed}");
        }
        out.push_str(")\n");
        for f in &j.render_failures {
            let line = journey.nodes.get(f.node as usize).map_or(0, |n| n.line);
            let _ = writeln!(
                out,
                "    template {} failed to render {} times (step at line {line}): first `{}`",
                f.template, f.count, f.first
            );
            if f.count > 1 && f.last != f.first {
                let _ = writeln!(out, "      latest `{}`", f.last);
            }
        }
        let exits: Vec<String> = ExitReason::ALL
            .iter()
            .filter(|r| j.exits(**r) > 0)
            .map(|r| format!("{} {}", r.name(), j.exits(*r)))
            .collect();
        let _ = writeln!(
            out,
            "  exited      {}",
            if exits.is_empty() {
                "none".to_string()
            } else {
                exits.join(", ")
            }
        );
        if journey.goal.is_some() {
            let l = lift(j);
            let _ = write!(
                out,
                "  converted   {} (treated {} of {}: {}",
                j.converted,
                j.converted - j.converted_held_out,
                j.entered - j.held_out,
                percent(l.treated)
            );
            if journey.holdout.is_some() {
                let _ = write!(
                    out,
                    "; held out {} of {}: {}; lift {}",
                    j.converted_held_out,
                    j.held_out,
                    percent(l.held_out),
                    signed_percent(l.lift)
                );
            }
            out.push_str(")\n");
        }
        let width = journey
            .nodes
            .iter()
            .map(|n| n.label.chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 60);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>5}  {:>8}  {:>6}  {:>10}",
            "step", "line", "arrived", "sent", "suppressed"
        );
        for (node, n) in journey.nodes.iter().zip(&j.nodes) {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>5}  {:>8}  {:>6}  {:>10}",
                node.label, node.line, n.arrived, n.sent, n.suppressed
            );
        }
    }
    out
}

/// The report for tools: one JSON object.
pub fn json(program: &Program, stats: &Stats, run: &RunCounts) -> String {
    let (events, journeys) = model(program, stats, run);
    let journeys: Vec<serde_json::Value> = journeys
        .iter()
        .map(|j| serde_json::to_value(j).unwrap_or_default())
        .collect();
    let report = json!({
        "events": events,
        "journeys": journeys,
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// The report for people, as one self-contained HTML page: the same
/// numbers as [`json()`]'s ([`super::report_html`]).
pub fn html(program: &Program, stats: &Stats, run: &RunCounts) -> Result<String, String> {
    let (events, journeys) = model(program, stats, run);
    super::report_html::html(program, &events, &journeys)
}

/// What both [`json()`] and [`html`] show: the event counters (the report's
/// `events` object) and each journey's report.
fn model(
    program: &Program,
    stats: &Stats,
    run: &RunCounts,
) -> (
    serde_json::Map<String, serde_json::Value>,
    Vec<JourneyReport>,
) {
    let journeys = program
        .journeys
        .iter()
        .zip(&stats.journeys)
        .map(|(journey, j)| JourneyReport::new(program, journey, j))
        .collect();
    let mut events = serde_json::Map::new();
    events.insert("lines".into(), json!(run.lines));
    events.insert("malformed".into(), json!(run.malformed));
    events.insert("after_until".into(), json!(run.after_until));
    events.extend(runtime::report::events_json(stats));
    (events, journeys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceMap;

    fn program() -> Program {
        let mut sources = SourceMap::new();
        sources.add(
            "welcome.journey",
            "journey welcome {\n  trigger signed_up\n\n  send email welcome_email\n}\n".to_string(),
        );
        crate::pipeline::build(sources)
            .program
            .unwrap_or_else(|| panic!("the fixture compiles"))
    }

    #[test]
    fn early_evictions_are_reported_in_text_when_any_and_always_in_json() {
        let program = program();
        let mut stats = Stats::for_program(&program);
        let run = RunCounts::default();
        assert!(!text(&program, &stats, &run).contains("forgotten"));
        let report: serde_json::Value =
            serde_json::from_str(&json(&program, &stats, &run)).unwrap_or_default();
        assert_eq!(report["events"]["dedup_evicted_early"], 0);

        stats.dedup_evicted_early = 3;
        let text = text(&program, &stats, &run);
        assert!(
            text.contains("  3 message ids forgotten before their de-duplication window ended"),
            "{text}"
        );
        assert!(text.contains("raise `--dedup-capacity`"), "{text}");
        let report: serde_json::Value =
            serde_json::from_str(&json(&program, &stats, &run)).unwrap_or_default();
        assert_eq!(report["events"]["dedup_evicted_early"], 3);
    }
}
