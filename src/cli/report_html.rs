//! The report of `journey simulate --report FILE.html`: one self-contained
//! page (inline CSS and SVG, nothing fetched when it is viewed) drawn from
//! the same [`JourneyReport`]s as the JSON report. Per journey: the graph
//! laid out top-down with each step's counts on it, the funnel to the goal,
//! treated against held-out conversion with the lift and its interval, and
//! the sends per day per channel.
//!
//! Every number shown is an element with a `data-json` attribute, the JSON
//! pointer of the same number in the JSON report (`/journeys/0/entered`);
//! the template ([`TEMPLATE`]) escapes everything (minijinja's HTML
//! auto-escaping), and the page is a pure function of the report.

use minijinja::{Environment, Value};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Map;

use crate::compile::Program;
use crate::compile::program::{Journey, NodeKind};
use crate::runtime::report::{AttributionReport, JourneyReport, StepReport};

/// The page's template (HTML, auto-escaped).
const TEMPLATE: &str = include_str!("report.html");

/// Colours of the channels, by channel id (wrapping).
const PALETTE: [&str; 8] = [
    "#2f6fde", "#1a9c6b", "#e0821b", "#9a4fd1", "#d1455b", "#2aa3b8", "#7a8b1e", "#8a6a4f",
];

/// The page, from the report's events counters and journeys.
pub fn html(
    program: &Program,
    events: &Map<String, serde_json::Value>,
    journeys: &[JourneyReport],
    attribution: Option<&AttributionReport>,
) -> Result<String, String> {
    let channels: Vec<Channel> = program
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| Channel {
            name: c.name.to_string(),
            colour: PALETTE[i % PALETTE.len()],
        })
        .collect();
    let colour = |name: &str| {
        channels
            .iter()
            .find(|c| c.name == name)
            .map_or(PALETTE[0], |c| c.colour)
    };
    let pages: Vec<JourneyPage<'_>> = program
        .journeys
        .iter()
        .zip(journeys)
        .enumerate()
        .map(|(index, (journey, report))| JourneyPage {
            index,
            title: journey
                .display_name
                .as_deref()
                .unwrap_or(&journey.name)
                .to_string(),
            description: journey.description.as_deref().map(str::to_string),
            goal: journey.goal.as_ref().map(|g| g.name.to_string()),
            holdout: journey.holdout.map(|p| format!("{p}%")),
            graph: layout(journey, &report.steps),
            chart: day_chart(report, &colour),
            report,
        })
        .collect();
    let mut env = Environment::new();
    env.add_filter("count", count);
    env.add_filter("percent", |x: Option<f64>| percent(x, false));
    env.add_filter("signed_percent", |x: Option<f64>| percent(x, true));
    env.add_filter("points", points);
    env.add_filter("decimal", decimal);
    env.add_filter("pointer", |key: &str| pointer_token(key));
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| e.to_string())?;
    let template = env.get_template("report.html").map_err(|e| e.to_string())?;
    template
        .render(minijinja::context! {
            events => Value::from_serialize(events),
            journeys => Value::from_serialize(&pages),
            channels => Value::from_serialize(&channels),
            attribution => Value::from_serialize(attribution),
            models => Value::from_serialize(crate::runtime::attribution::MODELS),
        })
        .map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct Channel {
    name: String,
    colour: &'static str,
}

#[derive(Serialize)]
struct JourneyPage<'a> {
    index: usize,
    title: String,
    description: Option<String>,
    goal: Option<String>,
    /// The share held out, as written: `10%`.
    holdout: Option<String>,
    report: &'a JourneyReport,
    graph: Graph,
    chart: Chart,
}

/// A number that is not a count (credit, value): at most 3 decimals, none
/// when whole.
fn decimal(x: f64) -> String {
    super::report::number(x)
}

/// A count with thousands separators: `12,345`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A proportion as a percentage with one decimal: `12.3%`, `+4.0%`.
fn percent(x: Option<f64>, signed: bool) -> String {
    match x {
        None => "n/a".to_string(),
        Some(x) if signed => format!("{:+.1}%", x * 100.0),
        Some(x) => format!("{:.1}%", x * 100.0),
    }
}

/// A difference of proportions in percentage points: `+3.2 pts`.
fn points(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |x| format!("{:+.1} pts", x * 100.0))
}

// ----- the graph -----

/// Width of a step's box.
const BOX_WIDTH: f64 = 270.0;
/// Height of the box's title, and of each line of counts.
const TITLE_HEIGHT: f64 = 26.0;
const LINE_HEIGHT: f64 = 17.0;
/// Space between boxes side by side, and between layers.
const GAP_X: f64 = 30.0;
const GAP_Y: f64 = 44.0;
/// Most characters of a step's label in its box (the whole label is its
/// tooltip).
const LABEL_MAX: usize = 33;

#[derive(Serialize)]
struct Graph {
    /// A step's box width.
    box_width: f64,
    width: f64,
    height: f64,
    nodes: Vec<GraphNode>,
    edges: Vec<GraphEdge>,
}

#[derive(Serialize)]
struct GraphNode {
    id: usize,
    x: f64,
    y: f64,
    height: f64,
    /// `send`, `wait`, `branch`, `end` or `step`: the box's style.
    kind: &'static str,
    label: String,
    /// The whole label and its line, for the tooltip.
    title: String,
    unreachable: bool,
    /// Lines of counts, each with the JSON pointer of its count under the
    /// step's.
    lines: Vec<GraphLine>,
}

#[derive(Serialize)]
struct GraphLine {
    /// The baseline, from the box's top.
    y: f64,
    text: String,
    pointer: String,
    count: u64,
    class: &'static str,
}

#[derive(Serialize)]
struct GraphEdge {
    path: String,
    width: f64,
}

/// The journey's graph laid out in layers, top down: a step's layer is the
/// longest path to it from a step nothing leads to; within a layer, steps
/// are ordered by the mean position of the steps leading to them (then by
/// id), and each layer is centred.
fn layout(journey: &Journey, steps: &[StepReport]) -> Graph {
    let n = journey.nodes.len();
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(n, n);
    let index: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();
    let mut edges = Vec::new();
    for (id, node) in journey.nodes.iter().enumerate() {
        for (_, to) in node.kind.successors() {
            let to = to as usize;
            if to < n && to != id {
                graph.add_edge(index[id], index[to], ());
                edges.push((id, to));
            }
        }
    }
    // A compiled journey is acyclic; should it not be, node order stands in.
    let order: Vec<usize> = toposort(&graph, None)
        .map(|o| o.into_iter().map(|i| graph[i]).collect())
        .unwrap_or_else(|_| (0..n).collect());
    let mut layer = vec![0usize; n];
    for &id in &order {
        for &(from, to) in edges.iter().filter(|(from, _)| *from == id) {
            layer[to] = layer[to].max(layer[from] + 1);
        }
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    let mut position = vec![0.0f64; n];
    for (l, row) in rows.iter_mut().enumerate() {
        let mut members: Vec<(f64, usize)> = (0..n)
            .filter(|id| layer[*id] == l)
            .map(|id| {
                let parents: Vec<f64> = edges
                    .iter()
                    .filter(|(_, to)| *to == id)
                    .map(|(from, _)| position[*from])
                    .collect();
                let mean = if parents.is_empty() {
                    id as f64
                } else {
                    parents.iter().sum::<f64>() / parents.len() as f64
                };
                (mean, id)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (i, (_, id)) in members.iter().enumerate() {
            position[*id] = i as f64;
        }
        *row = members.into_iter().map(|(_, id)| id).collect();
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let width = (widest * BOX_WIDTH + (widest - 1.0).max(0.0) * GAP_X).max(BOX_WIDTH) + 2.0;
    let lines: Vec<Vec<GraphLine>> = steps.iter().map(step_lines).collect();
    let heights: Vec<f64> = lines
        .iter()
        .map(|l| TITLE_HEIGHT + LINE_HEIGHT * l.len() as f64 + 8.0)
        .collect();
    let height_of = |id: usize| heights.get(id).copied().unwrap_or(TITLE_HEIGHT);
    let mut x = vec![0.0f64; n];
    let mut y = vec![0.0f64; n];
    let mut top = 1.0;
    for row in &rows {
        let row_width = row.len() as f64 * BOX_WIDTH + (row.len() as f64 - 1.0) * GAP_X;
        let left = (width - row_width) / 2.0;
        for (i, id) in row.iter().enumerate() {
            x[*id] = left + i as f64 * (BOX_WIDTH + GAP_X);
            y[*id] = top;
        }
        top += row.iter().map(|id| height_of(*id)).fold(0.0, f64::max) + GAP_Y;
    }
    let most = steps.iter().map(|s| s.arrived).max().unwrap_or(0).max(1) as f64;
    let graph_edges = edges
        .iter()
        .map(|&(from, to)| {
            let (x1, y1) = (x[from] + BOX_WIDTH / 2.0, y[from] + height_of(from));
            let (x2, y2) = (x[to] + BOX_WIDTH / 2.0, y[to] - 2.0);
            let bend = ((y2 - y1) / 2.0).max(GAP_Y / 2.0);
            let arrived = steps.get(to).map_or(0, |s| s.arrived) as f64;
            GraphEdge {
                path: format!(
                    "M{x1:.1} {y1:.1} C{x1:.1} {:.1} {x2:.1} {:.1} {x2:.1} {y2:.1}",
                    y1 + bend,
                    y2 - bend
                ),
                width: r1(1.5 + 4.5 * arrived / most),
            }
        })
        .collect();
    let nodes = journey
        .nodes
        .iter()
        .enumerate()
        .zip(lines)
        .map(|((id, node), lines)| GraphNode {
            id,
            x: r1(x[id]),
            y: r1(y[id]),
            height: r1(height_of(id)),
            kind: match node.kind {
                NodeKind::Send(_) => "send",
                NodeKind::Wait { .. }
                | NodeKind::WaitUntilTime { .. }
                | NodeKind::WaitUntil { .. }
                | NodeKind::WaitForEvent { .. }
                | NodeKind::WaitForEngagement { .. } => "wait",
                NodeKind::Branch { .. } | NodeKind::Split { .. } => "branch",
                NodeKind::Exit | NodeKind::End => "end",
                _ => "step",
            },
            label: cut(&node.label, LABEL_MAX),
            title: format!("{} (line {})", node.label, node.line),
            unreachable: journey
                .limits
                .unreachable
                .binary_search(&(id as u32))
                .is_ok(),
            lines,
        })
        .collect();
    Graph {
        box_width: BOX_WIDTH,
        width: r1(width),
        height: r1((top - GAP_Y + 1.0).max(1.0)),
        nodes,
        edges: graph_edges,
    }
}

/// The counts of a step, one a line: arrivals, sends per channel,
/// suppressions and exits per reason.
fn step_lines(step: &StepReport) -> Vec<GraphLine> {
    let mut lines = vec![GraphLine {
        y: 0.0,
        text: "arrived".to_string(),
        pointer: "arrived".to_string(),
        count: step.arrived,
        class: "arrived",
    }];
    for (channel, n) in &step.sent_by_channel {
        lines.push(GraphLine {
            y: 0.0,
            text: format!("sent by {channel}"),
            pointer: format!("sent_by_channel/{}", pointer_token(channel)),
            count: *n,
            class: "sent",
        });
    }
    for (reason, n) in &step.suppressed_by_reason {
        lines.push(GraphLine {
            y: 0.0,
            text: format!("suppressed: {}", reason.replace('_', " ")),
            pointer: format!("suppressed_by_reason/{reason}"),
            count: *n,
            class: "suppressed",
        });
    }
    for (reason, n) in &step.exited {
        lines.push(GraphLine {
            y: 0.0,
            text: format!("exited: {}", reason.replace('_', " ")),
            pointer: format!("exited/{reason}"),
            count: *n,
            class: "exited",
        });
    }
    for (i, line) in lines.iter_mut().enumerate() {
        line.y = TITLE_HEIGHT + LINE_HEIGHT * (i + 1) as f64 - 4.0;
    }
    lines
}

/// To a tenth of a pixel, so that coordinates print short.
fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A JSON pointer reference token (RFC 6901): `~` and `/` escaped.
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

// ----- sends per day -----

const CHART_WIDTH: f64 = 860.0;
const CHART_HEIGHT: f64 = 170.0;
/// Room for the y axis' labels on the left and the days below.
const CHART_LEFT: f64 = 48.0;
const CHART_BOTTOM: f64 = 22.0;

#[derive(Serialize)]
struct Chart {
    /// Where the bars start (the y axis' labels are left of it).
    left: f64,
    width: f64,
    height: f64,
    bars: Vec<Bar>,
    /// Horizontal grid lines: (y, label).
    grid: Vec<(f64, String)>,
    /// Day labels under the bars: (x, text).
    days: Vec<(f64, String)>,
}

#[derive(Serialize)]
struct Bar {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    colour: &'static str,
    title: String,
    pointer: String,
    count: u64,
}

/// The sends per day as stacked bars, a bar a day with sends (channels in
/// name order from the bottom).
fn day_chart(report: &JourneyReport, colour: &dyn Fn(&str) -> &'static str) -> Chart {
    let days = &report.sent_by_day;
    let most = days.iter().map(|d| d.sent).max().unwrap_or(0);
    let plot_width = CHART_WIDTH - CHART_LEFT;
    let plot_height = CHART_HEIGHT - CHART_BOTTOM;
    let slot = plot_width / days.len().max(1) as f64;
    let bar_width = (slot * 0.72).min(40.0);
    let scale = |n: u64| {
        if most == 0 {
            0.0
        } else {
            n as f64 / most as f64 * (plot_height - 8.0)
        }
    };
    let mut bars = Vec::new();
    for (d, day) in days.iter().enumerate() {
        let x = CHART_LEFT + d as f64 * slot + (slot - bar_width) / 2.0;
        let mut base = plot_height;
        for (channel, n) in &day.by_channel {
            let height = scale(*n);
            base -= height;
            bars.push(Bar {
                x: r1(x),
                y: r1(base),
                width: r1(bar_width),
                height: r1(height),
                colour: colour(channel),
                title: format!("{} · {channel}: {}", day.day, count(*n)),
                pointer: format!("sent_by_day/{d}/by_channel/{}", pointer_token(channel)),
                count: *n,
            });
        }
    }
    let grid = [0, most / 2, most]
        .into_iter()
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .map(|n| (r1(plot_height - scale(n)), count(n)))
        .collect();
    // A label every so many days, so that labels (about 44px) do not meet.
    let every = (44.0 / slot).ceil().max(1.0) as usize;
    let labels = days
        .iter()
        .enumerate()
        .filter(|(d, _)| d.is_multiple_of(every))
        .map(|(d, day)| {
            (
                r1(CHART_LEFT + d as f64 * slot + slot / 2.0),
                day.day.get(5..).unwrap_or(&day.day).to_string(),
            )
        })
        .collect();
    Chart {
        left: CHART_LEFT,
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        bars,
        grid,
        days: labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(Some(0.1234), false), "12.3%");
        assert_eq!(percent(Some(0.04), true), "+4.0%");
        assert_eq!(percent(None, true), "n/a");
        assert_eq!(points(Some(-0.032)), "-3.2 pts");
    }

    fn program(source: &str) -> Program {
        let mut sources = crate::SourceMap::new();
        sources.add("j.journey", source.to_string());
        crate::pipeline::build(sources)
            .program
            .unwrap_or_else(|| panic!("the fixture compiles"))
    }

    #[test]
    fn a_branch_lays_its_arms_side_by_side_and_joins_below() {
        let program = program(
            "journey j {\n  trigger signed_up\n\n  if profile.vip == true {\n    send email a\n  } else {\n    send email b\n  }\n  wait 1d\n}\n",
        );
        let journey = &program.journeys[0];
        let stats = crate::runtime::Stats::for_program(&program);
        let report = JourneyReport::new(&program, journey, &stats.journeys[0]);
        let graph = layout(journey, &report.steps);
        let at = |label: &str| {
            graph
                .nodes
                .iter()
                .find(|n| n.label.starts_with(label))
                .map(|n| (n.x, n.y))
                .unwrap_or_else(|| panic!("no step {label}"))
        };
        let (branch, a, b, wait) = (at("if"), at("send email a"), at("send email b"), at("wait"));
        assert_eq!(a.1, b.1, "the arms share a layer");
        assert!(a.0 < b.0, "the first arm is on the left");
        assert!(branch.1 < a.1 && a.1 < wait.1, "top down");
        assert_eq!(branch.0, wait.0, "single steps are centred");
        assert!(
            graph
                .nodes
                .iter()
                .all(|n| n.x >= 0.0 && n.x + BOX_WIDTH <= graph.width)
        );
        assert_eq!(
            graph.edges.len(),
            journey
                .nodes
                .iter()
                .map(|n| n.kind.successors().len())
                .sum::<usize>()
        );
    }

    #[test]
    fn pointer_tokens_escape_tilde_and_slash() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
