//! The report of `journey simulate`: per journey and per step, what
//! happened — entries, hold-outs, sends per channel, suppressions and exits
//! by reason, conversions of treated and held-out users and the lift. As
//! text for people and JSON for tools; both deterministic.

use std::fmt::Write as _;

use serde_json::json;

use crate::compile::Program;
use crate::io::late::LateEvents;
use crate::runtime::report::{AttributionReport, JourneyReport, lift};
use crate::runtime::{self, ExitReason, Stats, SuppressReason};

/// What the CLI counted while reading the event file.
#[derive(Clone, Debug, Default)]
pub struct RunCounts {
    /// The event file as the user named it (for the command that sorts it).
    pub file: String,
    pub lines: u64,
    pub malformed: u64,
    /// Events after `--until`, not processed.
    pub after_until: u64,
    /// Events stamped before the clock, with their lines.
    pub late: LateEvents,
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
    late_text(&mut out, run);
    let mut idle = Vec::new();
    for (journey, j) in program.journeys.iter().zip(&stats.journeys) {
        let report = JourneyReport::new(program, journey, j);
        let refused: u64 = j.not_admitted.all().iter().map(|(_, n)| n).sum();
        if j.entered == 0 && refused == 0 {
            idle.push(journey.name.to_string());
            continue;
        }
        let _ = write!(out, "\njourney {}", journey.name);
        if let Some(name) = &journey.display_name {
            let _ = write!(out, " ({name})");
        }
        out.push('\n');
        let _ = writeln!(out, "  entered     {} ({} held out)", j.entered, j.held_out);
        if refused > 0 {
            let reasons: Vec<String> = j
                .not_admitted
                .all()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{} {n}", reason_words(reason)))
                .collect();
            let _ = writeln!(out, "  not admitted {refused} ({})", reasons.join(", "));
        }
        if report.active > 0 {
            let _ = writeln!(
                out,
                "  active      {} (still inside at the end of the run)",
                report.active
            );
        }
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
        steps_text(&mut out, &report);
    }
    if !idle.is_empty() {
        let _ = writeln!(out, "\njourneys with no entry: {}", idle.join(", "));
    }
    if let Some(a) = AttributionReport::new(program, stats) {
        attribution_text(&mut out, &a);
    }
    out
}

/// A not-admitted reason in words.
fn reason_words(reason: &str) -> &'static str {
    match reason {
        "already_active" => "already active",
        "reentry" => "re-entry not allowed yet",
        "audience" => "not in the audience",
        _ => "null key",
    }
}

/// The late events: how many, how far behind, where, and the command
/// that sorts the file.
fn late_text(out: &mut String, run: &RunCounts) {
    let late = &run.late;
    if late.count == 0 {
        return;
    }
    let lines: Vec<String> = late.lines().iter().map(u64::to_string).collect();
    let more = if late.count as usize > lines.len() {
        ", …"
    } else {
        ""
    };
    let file = if run.file.is_empty() || run.file == "<stdin>" {
        "events.ndjson"
    } else {
        &run.file
    };
    let _ = writeln!(
        out,
        "  {} events out of time order, up to {} behind the latest before them (line{} {}{more}): \
         each was processed at that latest time, not its own; sort the file by time first:\n    {}",
        late.count,
        crate::compile::graph::span_text(late.max_behind_ms),
        if lines.len() == 1 { "" } else { "s" },
        lines.join(", "),
        LateEvents::sort_command(file)
    );
}

/// After a journey's step table: why a send step's arrivals were not all
/// decided, and each split's arms.
fn steps_text(out: &mut String, report: &JourneyReport) {
    for step in &report.steps {
        if let Some(u) = &step.undecided {
            let mut why = Vec::new();
            if u.waiting > 0 {
                why.push(format!(
                    "{} still waiting there (quiet hours or a cap) at the end of the run",
                    u.waiting
                ));
            }
            if u.exited > 0 {
                let reasons: Vec<String> = step
                    .exited
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                why.push(format!(
                    "{} ended there before it was decided ({})",
                    u.exited,
                    reasons.join(", ")
                ));
            }
            let _ = writeln!(
                out,
                "  line {}: arrived {} = sent {} + suppressed {} + {}",
                step.line,
                step.arrived,
                step.sent,
                step.suppressed,
                why.join(" + ")
            );
        }
    }
    for step in report.steps.iter().filter(|s| !s.arms.is_empty()) {
        let _ = writeln!(out, "  {} (line {})", step.step, step.line);
        let width = step
            .arms
            .iter()
            .map(|a| a.arm.chars().count() + 1 + format!("{}%", a.percent).len())
            .max()
            .unwrap_or(3)
            .max(3);
        let _ = writeln!(
            out,
            "    {:<width$}  {:>8}  {:>6}  {:>9}  {:>6}",
            "arm", "entered", "sent", "converted", "rate"
        );
        for a in &step.arms {
            let _ = writeln!(
                out,
                "    {:<width$}  {:>8}  {:>6}  {:>9}  {:>6}",
                format!("{} {}%", a.arm, a.percent),
                a.entered,
                a.sent,
                a.converted,
                percent(a.conversion_rate)
            );
        }
    }
}

/// The attribution table for people: per journey, channel and template,
/// its sends and the credit of each model, then the value of each model.
fn attribution_text(out: &mut String, a: &AttributionReport) {
    let _ = writeln!(
        out,
        "\nattribution: {} conversions ({} with no message before them), value {}",
        a.conversions,
        a.unattributed,
        number(a.value)
    );
    if a.touches.is_empty() {
        return;
    }
    let models = crate::runtime::attribution::MODELS;
    for (title, numbers) in [("credit", true), ("value", false)] {
        let mut rows: Vec<Vec<String>> = vec![
            ["journey", "channel", "template", "sends"]
                .into_iter()
                .chain(models)
                .map(str::to_string)
                .collect(),
        ];
        rows[0][0] = format!("{title}: journey");
        for t in &a.touches {
            let shown = if numbers { &t.credit } else { &t.value };
            rows.push(
                [
                    t.journey.clone(),
                    t.channel.clone(),
                    t.template.clone(),
                    t.sends.to_string(),
                ]
                .into_iter()
                .chain(shown.all().into_iter().map(number))
                .collect(),
            );
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::from(" ");
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                line.push(' ');
                if i < 3 {
                    let _ = write!(line, "{cell:<w$} ");
                } else {
                    let _ = write!(line, "{cell:>w$} ");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

/// A number as people read it: at most 3 decimals, none when whole.
pub(super) fn number(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// The report for tools: one JSON object.
pub fn json(program: &Program, stats: &Stats, run: &RunCounts) -> String {
    let (events, journeys) = model(program, stats, run);
    let journeys: Vec<serde_json::Value> = journeys
        .iter()
        .map(|j| serde_json::to_value(j).unwrap_or_default())
        .collect();
    let mut report = json!({
        "events": events,
        "journeys": journeys,
    });
    if let Some(a) = AttributionReport::new(program, stats)
        && let Some(map) = report.as_object_mut()
    {
        map.insert(
            "attribution".into(),
            serde_json::to_value(a).unwrap_or_default(),
        );
    }
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// The report for people, as one self-contained HTML page: the same
/// numbers as [`json()`]'s ([`super::report_html`]).
pub fn html(program: &Program, stats: &Stats, run: &RunCounts) -> Result<String, String> {
    let (events, journeys) = model(program, stats, run);
    let attribution = AttributionReport::new(program, stats);
    super::report_html::html(program, &events, &journeys, attribution.as_ref())
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
    events.insert("late_max_behind_ms".into(), json!(run.late.max_behind_ms));
    events.insert("late_lines".into(), json!(run.late.lines()));
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
