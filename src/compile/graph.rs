//! Views of a compiled program for people: a journey's execution graph as
//! Graphviz DOT or Mermaid (`journey graph`), and the per-journey limits
//! table (`journey check --summary`). Output is a pure function of the
//! program: the same program always renders byte for byte the same.

use std::fmt::Write as _;

use super::program::{BinOp, CExpr, Edge, Func, Journey, Node, NodeKind, Program};
use crate::value::{Value, format_timestamp};

/// Most characters of a condition shown on an edge.
const CONDITION_MAX: usize = 40;

/// The journey's graph in Graphviz DOT.
pub fn to_dot(program: &Program, journey: &Journey) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_quote(&journey.name));
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\"];\n");
    let _ = writeln!(
        out,
        "  start [label={}, shape=invhouse];",
        dot_quote(&start_label(program, journey))
    );
    if !journey.nodes.is_empty() {
        out.push_str("  start -> n0;\n");
    }
    for (id, node) in journey.nodes.iter().enumerate() {
        let mut attrs = format!("label={}", dot_quote(&node.label));
        let shape = match &node.kind {
            NodeKind::Branch { .. } | NodeKind::Split { .. } => Some("diamond"),
            NodeKind::Exit | NodeKind::End => Some("doublecircle"),
            NodeKind::Wait { .. }
            | NodeKind::WaitUntilTime { .. }
            | NodeKind::WaitUntil { .. }
            | NodeKind::WaitForEvent { .. }
            | NodeKind::WaitForEngagement { .. } => Some("ellipse"),
            _ => None,
        };
        if let Some(shape) = shape {
            let _ = write!(attrs, ", shape={shape}");
        }
        if is_unreachable(journey, id) {
            attrs.push_str(", style=dashed, color=gray");
        }
        let _ = writeln!(out, "  n{id} [{attrs}];");
    }
    for (id, node) in journey.nodes.iter().enumerate() {
        for (edge, to) in node.kind.successors() {
            match edge_label(program, journey, node, &edge) {
                Some(label) => {
                    let _ = writeln!(out, "  n{id} -> n{to} [label={}];", dot_quote(&label));
                }
                None => {
                    let _ = writeln!(out, "  n{id} -> n{to};");
                }
            }
        }
    }
    out.push_str("}\n");
    out
}

/// The journey's graph as a Mermaid flowchart.
pub fn to_mermaid(program: &Program, journey: &Journey) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(
        out,
        "    start[/{}\\]",
        mermaid_lines(&start_label(program, journey))
    );
    if !journey.nodes.is_empty() {
        out.push_str("    start --> n0\n");
    }
    for (id, node) in journey.nodes.iter().enumerate() {
        let label = mermaid_quote(&node.label);
        let shaped = match &node.kind {
            NodeKind::Branch { .. } | NodeKind::Split { .. } => format!("{{{label}}}"),
            NodeKind::Exit | NodeKind::End => format!("(({label}))"),
            NodeKind::Send(_) => format!("[{label}]"),
            _ => format!("([{label}])"),
        };
        let _ = writeln!(out, "    n{id}{shaped}");
    }
    for (id, node) in journey.nodes.iter().enumerate() {
        for (edge, to) in node.kind.successors() {
            match edge_label(program, journey, node, &edge) {
                Some(label) => {
                    let _ = writeln!(out, "    n{id} -->|{}| n{to}", mermaid_quote(&label));
                }
                None => {
                    let _ = writeln!(out, "    n{id} --> n{to}");
                }
            }
        }
    }
    let unreachable: Vec<String> = journey
        .limits
        .unreachable
        .iter()
        .map(|n| format!("n{n}"))
        .collect();
    if !unreachable.is_empty() {
        out.push_str("    classDef unreachable stroke-dasharray: 5 5,color:#888\n");
        let _ = writeln!(out, "    class {} unreachable", unreachable.join(","));
    }
    out
}

/// The start node's text: every trigger, one a line, then the exits and
/// the goal.
fn start_label(program: &Program, journey: &Journey) -> String {
    let event = |e: u32| {
        program
            .events
            .get(e as usize)
            .map_or_else(|| "event".to_string(), |e| e.name.to_string())
    };
    let mut lines = Vec::new();
    for t in &journey.triggers {
        let mut line = format!("trigger {}", event(t.event));
        if let Some(c) = &t.condition {
            let _ = write!(
                line,
                " where {}",
                cut(&expr_text(program, journey, c), CONDITION_MAX)
            );
        }
        lines.push(line);
    }
    for a in &journey.absence {
        let what = a.event.map_or_else(|| "any".to_string(), event);
        lines.push(format!(
            "trigger no {what} for {}",
            duration_literal(a.silence_ms)
        ));
    }
    for s in &journey.schedules {
        let days = if s.weekdays == 0 {
            "day".to_string()
        } else {
            const DAYS: [&str; 7] = [
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ];
            (0..7)
                .filter(|d| s.weekdays & (1 << d) != 0)
                .map(|d| DAYS[d])
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut line = format!("trigger every {days} at {}", hhmm(s.minute));
        if let Some(z) = &s.zone {
            let _ = write!(line, " in {}", expr_text(program, journey, z));
        }
        lines.push(line);
    }
    for d in &journey.dates {
        let path = expr_text(program, journey, &d.value);
        let mut line = match (d.kind, d.offset_ms) {
            (super::program::DateKind::Anniversary, _) => format!("trigger anniversary of {path}"),
            (_, 0) => format!("trigger on {path}"),
            (_, ms) if ms < 0 => format!("trigger {} before {path}", duration_literal(-ms)),
            (_, ms) => format!("trigger {} after {path}", duration_literal(ms)),
        };
        if let Some(at) = d.at {
            let _ = write!(line, " at {}", hhmm(at));
        }
        if let Some(z) = &d.zone {
            let _ = write!(line, " in {}", expr_text(program, journey, z));
        }
        lines.push(line);
    }
    for s in &journey.segment_triggers {
        let verb = if s.enters { "enters" } else { "leaves" };
        lines.push(format!("trigger {verb} {}", s.segment));
    }
    if let Some(path) = journey
        .per
        .and_then(|i| journey.trigger_fields.get(i as usize))
    {
        lines.push(format!("per trigger.{}", path.join(".")));
    }
    for e in &journey.exit_on {
        lines.push(format!("exit on {}", event(e.event)));
    }
    for c in &journey.exit_if {
        lines.push(format!(
            "exit if {}",
            cut(&expr_text(program, journey, c), CONDITION_MAX)
        ));
    }
    if let Some(g) = &journey.goal {
        let mut line = format!("goal {}", g.name);
        if let Some(w) = g.within_ms {
            let _ = write!(line, " within {}", duration_literal(w));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn is_unreachable(journey: &Journey, id: usize) -> bool {
    journey
        .limits
        .unreachable
        .binary_search(&(id as u32))
        .is_ok()
}

/// What an edge says: the event or engagement that resumes a `wait for`,
/// `timeout`, an `if` arm's condition, `else`, a split arm's share.
fn edge_label(program: &Program, journey: &Journey, node: &Node, edge: &Edge) -> Option<String> {
    match (edge, &node.kind) {
        (Edge::Next, _) => None,
        (Edge::Matched, NodeKind::WaitForEngagement { engagement, .. }) => {
            Some(engagement.name().to_string())
        }
        (Edge::Matched, NodeKind::WaitForEvent { alternatives, .. }) => Some(
            alternatives
                .iter()
                .map(|alt| {
                    program
                        .events
                        .get(alt.event as usize)
                        .map_or_else(|| "event".to_string(), |e| e.name.to_string())
                })
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        (Edge::Matched, _) => Some("matched".to_string()),
        (Edge::Timeout, _) => Some("timeout".to_string()),
        (Edge::Arm(i), NodeKind::Branch { arms, .. }) => {
            // As written when the compiler kept it; else printed back from
            // the compiled expression (a program built by other means).
            let condition = match node.conditions.get(*i) {
                Some(text) => text.to_string(),
                None => arms
                    .get(*i)
                    .map(|(c, _)| expr_text(program, journey, c))
                    .unwrap_or_default(),
            };
            let keyword = if *i == 0 { "if" } else { "else if" };
            Some(format!("{keyword} {}", cut(&condition, CONDITION_MAX)))
        }
        (Edge::Arm(i), _) => Some(format!("arm {i}")),
        (Edge::Else, _) => Some("else".to_string()),
        (Edge::Split(label, percent), _) => Some(format!("{percent} {label}")),
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// A DOT string literal.
fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Mermaid quoted label of several lines.
fn mermaid_lines(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let quoted = mermaid_quote(line);
            quoted[1..quoted.len() - 1].to_string()
        })
        .collect();
    format!("\"{}\"", lines.join("<br/>"))
}

/// A Mermaid quoted label, with its special characters as entities.
fn mermaid_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- expressions

/// A compiled expression as journey source text (segments appear inlined).
pub fn expr_text(program: &Program, journey: &Journey, e: &CExpr) -> String {
    let mut out = String::new();
    write_expr(&mut out, program, journey, e, 0);
    out
}

/// Binding strength, lowest first, as in the grammar.
fn precedence(e: &CExpr) -> u8 {
    match e {
        CExpr::Binary(op, ..) => match op {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div => 6,
            _ => 4,
        },
        CExpr::Not(_) => 3,
        CExpr::Neg(_) => 7,
        _ => 8,
    }
}

fn write_expr(out: &mut String, program: &Program, journey: &Journey, e: &CExpr, min: u8) {
    let own = precedence(e);
    if own < min {
        out.push('(');
    }
    match e {
        CExpr::Const(v) => write_value(out, v),
        CExpr::Profile(slot) => {
            out.push_str("profile");
            if let Some(s) = program.profile_slots.get(*slot as usize) {
                for part in &s.path {
                    let _ = write!(out, ".{part}");
                }
            }
        }
        CExpr::Event(i) => {
            let _ = write!(out, "event.#{i}");
        }
        CExpr::Trigger(i) => {
            out.push_str("trigger");
            if let Some(path) = journey.trigger_fields.get(*i as usize) {
                for part in path {
                    let _ = write!(out, ".{part}");
                }
            }
        }
        CExpr::EnteredAt => out.push_str("journey.entered_at"),
        CExpr::Engaged(h, engagement) => {
            let _ = write!(out, "{}.{}", handle_name(journey, *h), engagement.name());
        }
        CExpr::Sent(h) => {
            let _ = write!(out, "{}.sent", handle_name(journey, *h));
        }
        CExpr::Reachable(c) => {
            let name = program.channels.get(*c as usize).map_or("?", |c| &c.name);
            let _ = write!(out, "reachable({name})");
        }
        CExpr::Now => out.push_str("now()"),
        CExpr::Call(f, args) => {
            out.push_str(func_name(*f));
            out.push('(');
            write_list(out, program, journey, args);
            out.push(')');
        }
        CExpr::List(items) => {
            out.push('[');
            write_list(out, program, journey, items);
            out.push(']');
        }
        CExpr::Not(x) => {
            out.push_str("not ");
            write_expr(out, program, journey, x, own);
        }
        CExpr::Neg(x) => {
            out.push('-');
            write_expr(out, program, journey, x, own);
        }
        CExpr::Binary(op, l, r) => {
            write_expr(out, program, journey, l, own);
            let _ = write!(out, " {} ", op_text(*op));
            write_expr(out, program, journey, r, own + 1);
        }
    }
    if own < min {
        out.push(')');
    }
}

fn write_list(out: &mut String, program: &Program, journey: &Journey, items: &[CExpr]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, program, journey, item, 0);
    }
}

fn handle_name(journey: &Journey, h: u16) -> &str {
    journey.handles.get(h as usize).map_or("?", |h| h)
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(_) => {
            let _ = write!(out, "{}", v.to_json());
        }
        Value::String(s) => {
            let _ = write!(out, "{}", serde_json::Value::String(s.to_string()));
        }
        Value::Timestamp(ms) => out.push_str(&format_timestamp(*ms)),
        Value::Duration(ms) => out.push_str(&duration_literal(*ms)),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(_) => {
            let _ = write!(out, "{}", v.to_json());
        }
    }
}

/// A duration as the language writes it: `1h30m`, `2d`.
fn duration_literal(ms: i64) -> String {
    let mut secs = ms / 1000;
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
        secs = -secs;
    }
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

fn func_name(f: Func) -> &'static str {
    match f {
        Func::Lower => "lower",
        Func::Upper => "upper",
        Func::Len => "len",
        Func::Coalesce => "coalesce",
        Func::DaysSince => "days_since",
        Func::HoursSince => "hours_since",
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Or => "or",
        BinOp::And => "and",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::In => "in",
        BinOp::NotIn => "not in",
        BinOp::Contains => "contains",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
    }
}

// ---------------------------------------------------------------- summary

/// Per journey: the most messages per channel and in all, the longest an
/// instance stays active, the unreachable steps — as an aligned text table.
pub fn summary_table(program: &Program) -> String {
    let rows: Vec<[String; 5]> = program.journeys.iter().map(summary_row).collect();
    aligned(SUMMARY_COLUMNS, &rows)
}

/// The columns of [`summary_table`].
pub const SUMMARY_COLUMNS: [&str; 5] = [
    "journey",
    "max per channel",
    "max messages",
    "longest active",
    "unreachable",
];

/// One journey's row of [`summary_table`], a cell per [`SUMMARY_COLUMNS`]
/// (the language server's hover shows it too).
pub fn summary_row(j: &Journey) -> [String; 5] {
    let per_channel = if j.limits.max_sends.is_empty() {
        "-".to_string()
    } else {
        j.limits
            .max_sends
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut longest = span_text(j.limits.max_active_ms);
    if j.limits.unbounded {
        longest = format!("unbounded (≥ {longest})");
    }
    [
        j.name.to_string(),
        per_channel,
        j.limits.max_messages.to_string(),
        longest,
        j.limits.unreachable.len().to_string(),
    ]
}

/// `rows` under `header` in columns two spaces apart, each as wide as its
/// widest cell, lines trimmed at the end.
fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_string);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Each policy cap against all journeys together ([`super::cross_journey`]):
/// the cap, the most sends it counts that one customer could be offered
/// within its window, and the journeys that contribute, largest first.
/// Empty without policy caps.
pub fn cap_table(program: &Program) -> String {
    let cases = super::cross_journey(program);
    if cases.is_empty() {
        return String::new();
    }
    let count = |n: Option<u64>| n.map_or_else(|| "no bound".to_string(), |n| n.to_string());
    let rows: Vec<[String; 3]> = cases
        .iter()
        .filter_map(|case| {
            let cap = program.policy.caps.get(case.cap)?;
            let target = cap
                .channel
                .and_then(|c| program.channels.get(c as usize))
                .map_or("messages", |c| &*c.name);
            let label = format!(
                "cap {target} {} per {}",
                cap.limit,
                span_text(cap.window_ms).replace(' ', "")
            );
            let verdict = match case.total {
                Some(n) if n <= u64::from(cap.limit) => format!("{n} (within the cap)"),
                Some(n) => format!("{n} ({} over)", n - u64::from(cap.limit)),
                None => "no bound (over)".to_string(),
            };
            let journeys = if case.journeys.is_empty() {
                "-".to_string()
            } else {
                case.journeys
                    .iter()
                    .map(|(name, n)| format!("{name} {}", count(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Some([label, verdict, journeys])
        })
        .collect();
    aligned(
        ["policy cap", "worst case, all journeys", "journeys"],
        &rows,
    )
}

/// A length of time for people: `9d 2h`, `1h 30m`, `0s`.
pub fn span_text(ms: i64) -> String {
    let mut secs = ms.max(0) / 1000;
    if secs == 0 {
        return "0s".to_string();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_durations_read_naturally() {
        assert_eq!(span_text((9 * 24 + 2) * 3_600_000), "9d 2h");
        assert_eq!(span_text(90 * 60_000), "1h 30m");
        assert_eq!(span_text(0), "0s");
        assert_eq!(duration_literal(90 * 60_000), "1h30m");
    }

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(
            dot_quote(r#"exit on "Order Completed""#),
            r#""exit on \"Order Completed\"""#
        );
        assert_eq!(mermaid_quote(r#"a "b" #1"#), r#""a #quot;b#quot; #35;1""#);
    }
}
