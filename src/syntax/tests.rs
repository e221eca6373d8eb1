//! Parser tests: AST shapes, spans, every syntax diagnostic, recovery.

use super::ast::*;
use super::parse;
use crate::diagnostic::Diagnostic;
use crate::diagnostic::codes;
use crate::source::{FileId, SourceFile, Span};

fn parse_str(text: &str) -> (File, Vec<Diagnostic>, SourceFile) {
    let file = SourceFile::new(FileId(0), "test.journey", text);
    let (ast, diags) = parse(&file);
    (ast, diags, file)
}

/// Parses text that must be clean.
fn clean(text: &str) -> (File, SourceFile) {
    let (ast, diags, file) = parse_str(text);
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}");
    (ast, file)
}

fn journey(file: &File) -> &JourneyDecl {
    file.items
        .iter()
        .find_map(|i| match i {
            Item::Journey(j) => Some(j),
            _ => None,
        })
        .expect("a journey")
}

/// One diagnostic: code, message, 1-based line/column and the spanned text.
fn single(text: &str) -> (Diagnostic, (usize, usize), String) {
    let (_, diags, file) = parse_str(text);
    assert_eq!(diags.len(), 1, "expected one diagnostic: {diags:#?}");
    let d = diags.into_iter().next().unwrap();
    let at = file.line_col(d.span.start);
    let spanned = file.slice(d.span).to_owned();
    (d, at, spanned)
}

fn expr_of_segment(text: &str) -> Expr {
    let (ast, _) = clean(text);
    match &ast.items[0] {
        Item::Segment(s) => s.expr.clone(),
        other => panic!("not a segment: {other:?}"),
    }
}

/// Renders an expression with explicit parentheses.
fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number(n) => format!("{n}"),
        ExprKind::String(s) => format!("{s:?}"),
        ExprKind::Bool(b) => format!("{b}"),
        ExprKind::Null => "null".into(),
        ExprKind::Duration(s) => format!("{s}s"),
        ExprKind::Timestamp(ms) => format!("@{ms}"),
        ExprKind::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Path(p) => {
            let root = match &p.root {
                PathRoot::Profile => "profile".to_owned(),
                PathRoot::Event => "event".to_owned(),
                PathRoot::Trigger => "trigger".to_owned(),
                PathRoot::Journey => "journey".to_owned(),
                PathRoot::Name(n) => n.clone(),
            };
            std::iter::once(root)
                .chain(p.fields.iter().map(|f| f.name.clone()))
                .collect::<Vec<_>>()
                .join(".")
        }
        ExprKind::Call { func, args } => format!(
            "{}({})",
            func.name,
            args.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Unary { op, operand } => match op {
            UnaryOp::Not => format!("(not {})", show(operand)),
            UnaryOp::Neg => format!("(-{})", show(operand)),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", show(lhs), op.as_str(), show(rhs))
        }
    }
}

const REALISTIC: &str = r#"// Every construct of the language in one file.
profile {
  email: string?
  timezone: string?
  lifetime_value: number
  consent: { email: bool?, sms: bool? }
}
event cart_abandoned { cart_id: string, total: number, items: list<string> }
event "Order Completed" { order_id: string, cart_id: string?, total: number }
channel whatsapp { address profile.phone  consent profile.consent.whatsapp }
template cart_reminder { body "Hi {{ profile.first_name }}\n" subject "Your cart \u{1F6D2}" channel email }
segment vip = profile.lifetime_value >= 500 and profile.country in ["FR", "DE"]
policy {
  cap messages 3 per 7d
  quiet hours 21:00 to 08:00
}

/// Win back a customer who left a full cart.
/// Sent on email first.
journey abandoned_cart {
  name "Abandoned cart recovery"
  trigger cart_abandoned where event.total >= 20
  trigger no any for 30d
  audience profile.country != "US"
  reentry after 7d
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  exit if profile.unsubscribed == true
  goal "Order Completed" within 7d
  holdout 5%
  cap email 2 per 1d
  quiet hours 21:00 to 08:00 in profile.timezone

  wait 1h30m
  send email cart_reminder as reminder
  wait for reminder.opened within 1d else {
    send push cart_push or sms cart_sms with { if: 1, code: "X" } on capped wait transactional
  }
  if trigger.total > 100 {
    send email cart_discount with { code: "SAVE10" }
  } else if not vip {
    exit
  } else {
    wait until 09:00 on monday, friday
  }
  split ab { 50% a { wait 1m } 50% b { } }
  repeat 3 times { emit nudge with { n: -3 * 2 + 1 } }
  set profile.last.nudge = now() - 1d
  wait until 2026-12-24T09:00:00+01:00
  add to audience retarget until exit
  remove from audience retarget
  wait for "Order Completed" where event.total > 1 within 2d { exit }
  exit
}
"#;

#[test]
fn realistic_file_parses_into_every_item() {
    let (ast, file) = clean(REALISTIC);
    let kinds: Vec<&str> = ast
        .items
        .iter()
        .map(|i| match i {
            Item::Event(_) => "event",
            Item::Profile(_) => "profile",
            Item::Channel(_) => "channel",
            Item::Template(_) => "template",
            Item::Segment(_) => "segment",
            Item::Policy(_) => "policy",
            Item::Allow(_) => "allow",
            Item::Attribution(_) => "attribution",
            Item::Journey(_) => "journey",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "profile", "event", "event", "channel", "template", "segment", "policy", "journey"
        ]
    );
    let Item::Template(t) = &ast.items[4] else {
        unreachable!()
    };
    assert_eq!(t.channel.name, "email");
    assert_eq!(t.subject.as_ref().unwrap().value, "Your cart \u{1F6D2}");
    assert_eq!(
        t.body.as_ref().unwrap().value,
        "Hi {{ profile.first_name }}\n"
    );
    let Item::Event(e) = &ast.items[2] else {
        unreachable!()
    };
    assert!(e.name.quoted && e.name.name == "Order Completed");
    assert!(e.fields[1].optional);
    let Item::Profile(p) = &ast.items[0] else {
        unreachable!()
    };
    let TypeKind::Object(consent) = &p.fields[3].ty.kind else {
        panic!()
    };
    assert_eq!(consent.len(), 2);
    assert_eq!(
        file.slice(p.fields[3].span),
        "consent: { email: bool?, sms: bool? }"
    );

    let j = journey(&ast);
    assert_eq!(j.name.name, "abandoned_cart");
    assert_eq!(
        j.doc.as_deref(),
        Some("Win back a customer who left a full cart.\nSent on email first.")
    );
    assert_eq!(j.headers.len(), 11);
    assert_eq!(file.slice(j.headers[5].keyword), "exit on");
    assert_eq!(file.slice(j.headers[10].keyword), "quiet hours");
    assert_eq!(file.slice(j.headers[2].keyword), "trigger no");
    assert!(matches!(
        j.headers[2].kind,
        HeaderKind::TriggerAbsence {
            event: EventPattern::Any(_),
            silence: DurationLit {
                secs: 2_592_000,
                ..
            }
        }
    ));
    let HeaderKind::QuietHours(q) = &j.headers[10].kind else {
        panic!()
    };
    assert_eq!((q.from.minutes, q.to.minutes), (21 * 60, 8 * 60));
    assert_eq!(file.slice(j.first_step.unwrap()), "wait 1h30m");
    assert_eq!(j.steps.len(), 12);
    assert!(matches!(
        j.steps[0].kind,
        StepKind::Wait(DurationLit { secs: 5400, .. })
    ));
}

#[test]
fn send_chains_and_wait_blocks() {
    let (ast, file) = clean(REALISTIC);
    let j = journey(&ast);
    let StepKind::Send(first) = &j.steps[1].kind else {
        panic!()
    };
    assert_eq!(first.handle.as_ref().unwrap().name, "reminder");
    let StepKind::WaitForEngagement {
        handle,
        engagement,
        within,
        then,
        otherwise,
    } = &j.steps[2].kind
    else {
        panic!()
    };
    assert_eq!(
        (handle.name.as_str(), engagement.name.as_str(), within.secs),
        ("reminder", "opened", 86_400)
    );
    assert!(then.is_none());
    let StepKind::Send(chain) = &otherwise.as_ref().unwrap().steps[0].kind else {
        panic!()
    };
    let names: Vec<(&str, &str)> = chain
        .alternatives
        .iter()
        .map(|a| (a.channel.name.as_str(), a.template.name()))
        .collect();
    assert_eq!(names, [("push", "cart_push"), ("sms", "cart_sms")]);
    assert_eq!(chain.alternatives[1].with[0].key.name, "if");
    assert_eq!(
        file.slice(chain.alternatives[1].span),
        r#"sms cart_sms with { if: 1, code: "X" }"#
    );
    assert!(chain.transactional.is_some());
    assert_eq!(chain.on_capped.map(|(m, _)| m), Some(OnCapped::Wait));
    assert_eq!(file.slice(chain.on_capped.unwrap().1), "on capped wait");

    let StepKind::WaitForEvent {
        alternatives,
        then,
        otherwise,
        ..
    } = &j.steps[10].kind
    else {
        panic!()
    };
    assert_eq!(alternatives.len(), 1);
    assert_eq!(alternatives[0].event.name, "Order Completed");
    let condition = alternatives[0].condition.as_ref();
    assert_eq!(show(condition.unwrap()), "(event.total > 1)");
    assert!(matches!(
        then.as_ref().unwrap().steps[0].kind,
        StepKind::Exit
    ));
    assert!(otherwise.is_none());
}

#[test]
fn nested_blocks_and_other_steps() {
    let (ast, file) = clean(REALISTIC);
    let j = journey(&ast);
    let StepKind::If {
        branches,
        otherwise,
    } = &j.steps[3].kind
    else {
        panic!()
    };
    assert_eq!(branches.len(), 2);
    assert_eq!(show(&branches[1].0), "(not vip)");
    let StepKind::WaitUntilTime { time, days } = &otherwise.as_ref().unwrap().steps[0].kind else {
        panic!()
    };
    assert_eq!(time.minutes, 540);
    assert_eq!(
        days.iter().map(|d| d.0).collect::<Vec<_>>(),
        [Weekday::Monday, Weekday::Friday]
    );
    let StepKind::Split { name, arms } = &j.steps[4].kind else {
        panic!()
    };
    assert_eq!(name.as_ref().unwrap().name, "ab");
    assert_eq!(arms.iter().map(|a| a.percent.value).sum::<f64>(), 100.0);
    assert_eq!(file.slice(arms[0].span), "50% a { wait 1m }");
    let StepKind::Repeat { count, body } = &j.steps[5].kind else {
        panic!()
    };
    assert_eq!(count.value, 3);
    let StepKind::Emit { event, with } = &body.steps[0].kind else {
        panic!()
    };
    assert_eq!(event.name, "nudge");
    assert_eq!(show(&with[0].value), "((-3 * 2) + 1)");
    let StepKind::Set { path, value } = &j.steps[6].kind else {
        panic!()
    };
    assert_eq!(
        path.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["last", "nudge"]
    );
    assert_eq!(show(value), "(now() - 86400s)");
    let StepKind::WaitUntilExpr(ts) = &j.steps[7].kind else {
        panic!()
    };
    // 2026-12-24T08:00:00Z
    assert_eq!(ts.kind, ExprKind::Timestamp(1_798_099_200_000));
    assert!(matches!(
        &j.steps[8].kind,
        StepKind::AudienceAdd {
            until_exit: true,
            ..
        }
    ));
    assert!(matches!(&j.steps[9].kind, StepKind::AudienceRemove { .. }));
    assert!(matches!(&j.steps[11].kind, StepKind::Exit));
}

#[test]
fn operator_precedence() {
    let cases = [
        ("a or b and c", "(a or (b and c))"),
        ("not a and b", "((not a) and b)"),
        ("not profile.x == 1", "(not (profile.x == 1))"),
        ("1 + 2 * 3 - 4 / 2", "((1 + (2 * 3)) - (4 / 2))"),
        ("-x * 2", "((-x) * 2)"),
        ("- 3", "-3"),
        ("a + 1 > b * 2 or c", "(((a + 1) > (b * 2)) or c)"),
        (
            "x not in [1, 2] and y contains \"z\"",
            "((x not in [1, 2]) and (y contains \"z\"))",
        ),
        ("(a or b) and c", "((a or b) and c)"),
        (
            "lower(profile.plan) in [\"pro\"]",
            "(lower(profile.plan) in [\"pro\"])",
        ),
        (
            "journey.entered_at + 2d < now()",
            "((journey.entered_at + 172800s) < now())",
        ),
        ("event.in == null", "(event.in == null)"),
    ];
    for (src, expected) in cases {
        let e = expr_of_segment(&format!("segment s = {src}"));
        assert_eq!(show(&e), expected, "{src}");
    }
}

#[test]
fn expression_spans() {
    let text = "segment s = profile.a + 2 * x";
    let (ast, file) = clean(text);
    let Item::Segment(s) = &ast.items[0] else {
        panic!()
    };
    assert_eq!(file.slice(s.expr.span), "profile.a + 2 * x");
    let ExprKind::Binary { lhs, rhs, .. } = &s.expr.kind else {
        panic!()
    };
    assert_eq!(file.slice(lhs.span), "profile.a");
    assert_eq!(file.slice(rhs.span), "2 * x");
    let ExprKind::Path(p) = &lhs.kind else {
        panic!()
    };
    assert_eq!(file.slice(p.root_span), "profile");
    assert_eq!(file.slice(p.fields[0].span), "a");
}

#[test]
fn spans_exclude_trailing_comments() {
    let text = "journey j {\n  trigger x // why\n  send email a // the first\n  // more\n}\n";
    let (ast, file) = clean(text);
    let j = journey(&ast);
    assert_eq!(file.slice(j.headers[0].span), "trigger x");
    assert_eq!(file.slice(j.steps[0].span), "send email a");
    assert_eq!(file.slice(j.span), &text[..text.len() - 1]);
}

#[test]
fn headers_after_steps_are_recorded() {
    let (ast, file) = clean("journey j { trigger a  wait 1h  goal b  send email t }");
    let j = journey(&ast);
    assert_eq!(j.headers.len(), 2);
    assert_eq!(file.slice(j.first_step.unwrap()), "wait 1h");
    assert!(j.headers[1].span.start > j.first_step.unwrap().start);
}

#[test]
fn literals() {
    let (ast, _) = clean(
        r#"segment s = [1h30m, 2w, 19.99, "a\"b\\c\n\t\u{1F600}", true, false, null, 2026-03-02T10:00:00Z]"#,
    );
    let Item::Segment(s) = &ast.items[0] else {
        panic!()
    };
    let ExprKind::List(items) = &s.expr.kind else {
        panic!()
    };
    let kinds: Vec<&ExprKind> = items.iter().map(|e| &e.kind).collect();
    assert_eq!(
        kinds,
        [
            &ExprKind::Duration(5400),
            &ExprKind::Duration(1_209_600),
            &ExprKind::Number(19.99),
            &ExprKind::String("a\"b\\c\n\t\u{1F600}".into()),
            &ExprKind::Bool(true),
            &ExprKind::Bool(false),
            &ExprKind::Null,
            &ExprKind::Timestamp(1_772_445_600_000),
        ]
    );
}

// ------------------------------------------------------------ diagnostics

#[test]
fn misspelt_step() {
    let (d, at, spanned) = single("journey j {\n  trigger x\n  sned email welcome\n}\n");
    assert_eq!(d.code, codes::SYNTAX);
    assert_eq!(
        d.message,
        "expected a step such as `wait`, `send` or `if`, found `sned`"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `send`?"));
    assert_eq!((at, spanned.as_str()), ((3, 3), "sned"));
}

#[test]
fn misspelt_top_level_keyword() {
    let (d, at, spanned) = single("jounrey j { trigger x }\n");
    assert_eq!(
        d.message,
        "expected a declaration such as `journey`, `segment` or `template`, found `jounrey`"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `journey`?"));
    assert_eq!((at, spanned.as_str()), ((1, 1), "jounrey"));
}

#[test]
fn header_inside_a_block() {
    let (d, at, _) = single("journey j {\n  trigger x\n  if a {\n    goal y\n  }\n}\n");
    assert_eq!(
        d.message,
        "expected a step such as `wait`, `send` or `if`, found `goal`"
    );
    assert!(
        d.help
            .unwrap()
            .starts_with("header clauses such as `goal` go at the top")
    );
    assert_eq!(at, (4, 5));
}

#[test]
fn missing_within() {
    let (d, at, spanned) =
        single("journey j {\n  trigger x\n  send email a\n  wait for a.opened else { exit }\n}\n");
    assert_eq!(d.message, "expected `within`, found `else`");
    assert!(d.help.unwrap().starts_with("`wait for` needs a time limit"));
    assert_eq!((at, spanned.as_str()), ((4, 21), "else"));
}

#[test]
fn elif() {
    let (d, at, _) = single("journey j {\n  trigger x\n  if a { exit } elif b { exit }\n}\n");
    assert_eq!(
        d.message,
        "expected a step such as `wait`, `send` or `if`, found `elif`"
    );
    assert_eq!(d.help.as_deref(), Some("write `else if` instead of `elif`"));
    assert_eq!(at, (3, 17));
}

#[test]
fn missing_closing_brace() {
    let text = "journey a {\n  trigger x\n  if b {\n    exit\n\njourney c {\n  trigger x\n}\n";
    let (ast, diags, file) = parse_str(text);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.message, "expected `}` to close a block, found `journey`");
    assert_eq!(file.line_col(d.span.start), (6, 1));
    let (open, label) = &d.related[0];
    assert_eq!(file.line_col(open.start), (3, 8));
    assert_eq!(label, "this `{` is never closed");
    assert_eq!(journey(&ast).name.name, "c");
}

#[test]
fn wordy_durations() {
    for (src, help) in [
        ("1 day", "write `1d`"),
        ("2 hours", "write `2h`"),
        ("30 minutes", "write `30m`"),
        ("1.5 hours", "write `1h30m`"),
    ] {
        let (d, _, spanned) = single(&format!("journey j {{ trigger x  wait {src} }}"));
        assert_eq!(d.code, codes::INVALID_DURATION);
        assert_eq!(d.message, format!("invalid duration `{src}`"));
        assert_eq!(d.help.as_deref(), Some(help));
        assert_eq!(spanned, src);
    }
    // Read as the duration meant, so checking goes on.
    let (ast, _, _) = parse_str("journey j { trigger x  wait 2 hours }");
    assert!(matches!(
        journey(&ast).steps[0].kind,
        StepKind::Wait(DurationLit { secs: 7200, .. })
    ));
}

#[test]
fn zero_and_malformed_durations() {
    let (d, at, spanned) = single("journey j {\n  trigger x\n  wait 0s\n}");
    assert_eq!(
        (d.code, d.message.as_str()),
        (codes::INVALID_DURATION, "zero duration `0s`")
    );
    assert_eq!((at, spanned.as_str()), ((3, 8), "0s"));
    let (d, _, _) = single("journey j { trigger x  wait 1h30 }");
    assert_eq!(d.message, "invalid duration `1h30`");
    let (d, _, _) = single("journey j { trigger x  cap email 1 per 5 }");
    assert_eq!(
        d.help.as_deref(),
        Some("add a unit: `5s`, `5m`, `5h`, `5d` or `5w`")
    );
}

#[test]
fn assignment_in_condition() {
    let text = "journey j {\n  trigger x\n  if profile.plan = \"pro\" { exit }\n}";
    let (ast, diags, file) = parse_str(text);
    assert_eq!(diags.len(), 1);
    let d = &diags[0];
    assert_eq!(
        (d.code, d.message.as_str()),
        (codes::ASSIGN_IN_CONDITION, "found `=` in a condition")
    );
    assert_eq!(d.help.as_deref(), Some("use `==` to compare"));
    assert_eq!(file.line_col(d.span.start), (3, 19));
    assert_eq!(file.slice(d.span), "=");
    let StepKind::If { branches, .. } = &journey(&ast).steps[0].kind else {
        panic!()
    };
    assert_eq!(show(&branches[0].0), "(profile.plan == \"pro\")");
}

#[test]
fn reserved_words_as_names() {
    let cases = [
        (
            "template exit { channel email body \"x\" }",
            "`exit` is a reserved word and cannot name a template",
        ),
        (
            "journey send { trigger x }",
            "`send` is a reserved word and cannot name a journey",
        ),
        (
            "segment and = true",
            "`and` is a reserved word and cannot name a segment",
        ),
        (
            "channel if { address profile.x }",
            "`if` is a reserved word and cannot name a channel",
        ),
        (
            "journey j { trigger x  send email a as wait }",
            "`wait` is a reserved word and cannot name a handle",
        ),
        (
            "journey j { trigger x  split exit { 100% a { } } }",
            "`exit` is a reserved word and cannot name a split",
        ),
        (
            "journey j { trigger x  split { 100% not { } } }",
            "`not` is a reserved word and cannot name a split label",
        ),
        (
            "journey j { trigger x  add to audience any }",
            "`any` is a reserved word and cannot name an audience",
        ),
    ];
    for (src, message) in cases {
        let (d, _, spanned) = single(src);
        assert_eq!(
            (d.code, d.message.as_str()),
            (codes::RESERVED_WORD, message),
            "{src}"
        );
        assert!(message.starts_with(&format!("`{spanned}`")));
        assert!(d.help.unwrap().starts_with("pick another name"));
    }
}

#[test]
fn invalid_times_of_day() {
    for (t, help) in [
        (
            "24:00",
            "hours go from `00` to `23`; write `00:00` for midnight",
        ),
        (
            "9:5",
            "write two digits for the hours and the minutes: `09:05`",
        ),
        ("12:60", "minutes go from `00` to `59`"),
    ] {
        let (d, at, spanned) = single(&format!("journey j {{\n  trigger x\n  wait until {t}\n}}"));
        assert_eq!(
            (d.code, d.message.clone()),
            (
                codes::INVALID_TIME_OF_DAY,
                format!("invalid time of day `{t}`")
            )
        );
        assert_eq!(d.help.as_deref(), Some(help));
        assert_eq!((at, spanned.as_str()), ((3, 14), t));
    }
}

#[test]
fn invalid_timestamp() {
    let (d, at, spanned) = single("journey j {\n  trigger x\n  wait until 2026-02-30T09:00:00Z\n}");
    assert_eq!(d.code, codes::INVALID_TIMESTAMP);
    assert_eq!(d.message, "invalid timestamp `2026-02-30T09:00:00Z`");
    assert_eq!((at, spanned.len()), ((3, 14), 20));
    let (d, _, _) = single("segment s = journey.entered_at > 2026-02-03");
    assert_eq!(
        d.help.as_deref(),
        Some("add a time and an offset, such as `2026-12-24T09:00:00Z`")
    );
}

#[test]
fn invalid_percentages() {
    for p in ["0%", "120%", "-5%"] {
        let (d, _, spanned) = single(&format!(
            "journey j {{ trigger x  goal y within 1d  holdout {p} }}"
        ));
        assert_eq!(
            (d.code, d.message.clone()),
            (codes::INVALID_PERCENT, format!("invalid percentage `{p}`"))
        );
        assert_eq!(spanned, p);
    }
    let (d, _, _) = single("journey j { trigger x  split { 0% a { } 100% b { } } }");
    assert_eq!(d.code, codes::INVALID_PERCENT);
}

#[test]
fn invalid_escapes() {
    let (d, at, spanned) = single("journey j {\n  trigger x\n  send email \"bad \\q\"\n}");
    assert_eq!(
        (d.code, d.message.as_str()),
        (codes::INVALID_ESCAPE, "invalid escape `\\q` in a string")
    );
    assert_eq!((at, spanned.as_str()), ((3, 19), "\\q"));
    let (d, _, spanned) = single(r#"segment s = profile.x == "\u{D800}""#);
    assert_eq!(
        (d.code, spanned.as_str()),
        (codes::INVALID_ESCAPE, r"\u{D800}")
    );
}

#[test]
fn invalid_numbers() {
    let big = "9".repeat(400);
    let (d, _, _) = single(&format!("segment s = profile.x > {big}"));
    assert_eq!(d.code, codes::INVALID_NUMBER);
    assert!(d.message.starts_with("number `9999"));
    let (d, _, spanned) = single("journey j { trigger x  repeat 9007199254740993 times { exit } }");
    assert_eq!(
        (d.code, spanned.as_str()),
        (codes::INVALID_NUMBER, "9007199254740993")
    );
    let (d, _, _) = single("journey j { trigger x  repeat 2.5 times { exit } }");
    assert_eq!(d.message, "expected a whole number, found `2.5`");
}

#[test]
fn unterminated_string() {
    let (d, at, _) = single("journey j {\n  trigger x\n  send email \"oops\n}\n");
    assert_eq!(d.message, "unterminated string");
    assert_eq!(at, (3, 14));
}

#[test]
fn expected_things_in_words() {
    let (d, _, spanned) = single("profile { age: int }");
    assert_eq!(
        d.message,
        "expected a type such as `string`, `number`, `bool`, `timestamp`, `duration` or `list<string>`, found `int`"
    );
    assert_eq!(spanned, "int");
    let (d, _, _) = single("segment s = profile.x and\n");
    assert_eq!(d.message, "expected an expression, found end of file");
    let (d, _, _) = single("segment s = profile.x ==");
    assert_eq!(d.message, "expected an expression, found end of file");
    let (d, _, _) = single("journey j { trigger x  wait for y within 1d { } else { } else { } }");
    assert_eq!(
        d.message,
        "expected a step such as `wait`, `send` or `if`, found `else`"
    );
}

// ------------------------------------------------------------ recovery

#[test]
fn errors_in_two_journeys_do_not_hide_a_third() {
    let text = "\
journey a {
  trigger x
  sned email t
}

journey b {
  trigger x
  wait for y 1d
}

/// Still here.
journey c {
  trigger x
  send email t
}
";
    let (ast, diags, file) = parse_str(text);
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert_eq!(file.line_col(diags[0].span.start), (3, 3));
    assert_eq!(file.line_col(diags[1].span.start), (8, 14));
    assert_eq!(ast.items.len(), 1);
    let j = journey(&ast);
    assert_eq!(
        (j.name.name.as_str(), j.doc.as_deref()),
        ("c", Some("Still here."))
    );
}

#[test]
fn two_bad_steps_in_one_journey_give_two_errors() {
    let text = "journey a {\n  trigger x\n  sned email t\n  wait 1h\n  if a { exit } elif b {\n    exit\n  }\n  wait 0s\n}\n";
    let (ast, diags, file) = parse_str(text);
    let found: Vec<(&str, (usize, usize))> = diags
        .iter()
        .map(|d| (d.code.id, file.line_col(d.span.start)))
        .collect();
    assert_eq!(
        found,
        [("E0101", (3, 3)), ("E0101", (5, 17)), ("E0102", (8, 8))]
    );
    assert!(ast.items.is_empty());
}

#[test]
fn spans_are_file_offsets() {
    let text = "segment a = true\nsegment b = a";
    let (ast, _) = clean(text);
    let Item::Segment(b) = &ast.items[1] else {
        panic!()
    };
    assert_eq!(b.name.span, Span::new(FileId(0), 25, 26));
}

// ------------------------------------------------------------ fixtures

fn fixtures(dir: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journey"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn construct_fixtures_parse_cleanly() {
    let all = fixtures("constructs");
    assert!(all.len() >= 30);
    for (name, text) in all {
        assert!(
            text.starts_with("// "),
            "{name}: first line must say what it tests"
        );
        let (ast, diags, _) = parse_str(&text);
        assert!(diags.is_empty(), "{name}: {diags:#?}");
        assert!(!ast.items.is_empty(), "{name}");
    }
}

#[test]
fn syntax_fixtures_report_their_code() {
    let all = fixtures("syntax");
    let mut codes_seen = std::collections::BTreeSet::new();
    for (name, text) in all {
        assert!(
            text.starts_with("// "),
            "{name}: first line must say what it tests"
        );
        let code = name[..5].to_uppercase();
        let (_, diags, _) = parse_str(&text);
        assert!(
            diags.iter().any(|d| d.code.id == code),
            "{name}: {diags:#?}"
        );
        codes_seen.insert(code);
    }
    let expected: Vec<String> = (1..=9).map(|n| format!("E010{n}")).collect();
    assert_eq!(codes_seen.into_iter().collect::<Vec<_>>(), expected);
}

#[test]
fn deep_nesting_is_one_error_not_a_crash() {
    let parens = format!("segment s = {}x", "(".repeat(100_000));
    let braces = format!("journey j {{\n{}", "if x {".repeat(100_000));
    let raw = "{".repeat(100_000);
    for text in [parens, braces, raw] {
        let (d, _, spanned) = single(&text);
        assert_eq!(d.code, codes::SYNTAX);
        assert_eq!(d.message, "this item is nested too deeply");
        assert!(spanned == "(" || spanned == "{", "{spanned:?}");
    }
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let depth = super::split::MAX_NESTING;
    let parens = format!("segment s = {}x{}", "(".repeat(depth), ")".repeat(depth));
    clean(&parens);
    let blocks = format!(
        "journey j {{\n  trigger e\n{}{}}}\n",
        "if x {\n".repeat(depth - 1),
        "}\n".repeat(depth - 1)
    );
    clean(&blocks);
}

#[test]
fn absurdly_long_operator_chains_are_one_error_not_a_crash() {
    let nots = format!("segment s = {}profile.vip", "not ".repeat(100_000));
    let ors = format!(
        "segment s = profile.vip{}",
        " or profile.vip".repeat(100_000)
    );
    let negs = format!("segment s = {}1 > 0", "- ".repeat(100_000));
    for text in [nots, ors, negs] {
        let (d, _, _) = single(&text);
        assert_eq!(d.code, codes::SYNTAX);
        assert_eq!(d.message, "this expression is too long");
    }
    // A long but sane condition is fine.
    clean(&format!(
        "segment s = profile.vip{}",
        " or profile.vip".repeat(200)
    ));
}

#[test]
fn entry_triggers_of_v1_1() {
    let src = r#"journey j {
  trigger every monday, thursday at 09:00
  trigger every day at 18:30 in "America/New_York"
  trigger 30d before profile.renewal_date at 09:00 in profile.tz
  trigger 1d after profile.trial_ends_at
  trigger on profile.appointment_at
  trigger anniversary of profile.birthday at 10:00
  trigger enters vip
  trigger leaves vip
  trigger every
  send email x
}"#;
    let (ast, file) = clean(src);
    let j = journey(&ast);
    assert_eq!(j.headers.len(), 9);
    let HeaderKind::TriggerEvery { days, at } = &j.headers[0].kind else {
        panic!("{:?}", j.headers[0].kind)
    };
    assert_eq!(
        days.iter().map(|d| d.0).collect::<Vec<_>>(),
        [Weekday::Monday, Weekday::Thursday]
    );
    assert_eq!(at.time.minutes, 9 * 60);
    assert_eq!(file.slice(j.headers[0].keyword), "trigger every");
    let HeaderKind::TriggerEvery { days, at } = &j.headers[1].kind else {
        panic!()
    };
    assert!(days.is_empty() && at.zone.is_some() && at.time.minutes == 18 * 60 + 30);
    let HeaderKind::TriggerDate { kind, path, at } = &j.headers[2].kind else {
        panic!()
    };
    assert!(matches!(
        kind,
        DateTrigger::Before(DurationLit {
            secs: 2_592_000,
            ..
        })
    ));
    assert_eq!(file.slice(path.span), "profile.renewal_date");
    assert!(at.as_ref().is_some_and(|a| a.zone.is_some()));
    assert_eq!(file.slice(j.headers[2].keyword), "trigger 30d before");
    assert!(matches!(
        &j.headers[3].kind,
        HeaderKind::TriggerDate {
            kind: DateTrigger::After(_),
            at: None,
            ..
        }
    ));
    assert!(matches!(
        &j.headers[4].kind,
        HeaderKind::TriggerDate {
            kind: DateTrigger::On,
            at: None,
            ..
        }
    ));
    assert!(matches!(
        &j.headers[5].kind,
        HeaderKind::TriggerDate {
            kind: DateTrigger::Anniversary,
            at: Some(_),
            ..
        }
    ));
    assert!(matches!(
        &j.headers[6].kind,
        HeaderKind::TriggerSegment { enters: true, .. }
    ));
    assert!(matches!(
        &j.headers[7].kind,
        HeaderKind::TriggerSegment { enters: false, .. }
    ));
    // An event named `every` is still an event trigger.
    assert!(matches!(&j.headers[8].kind, HeaderKind::Trigger { .. }));
}

#[test]
fn wait_for_one_of_several_events() {
    // An `or` after a `where` condition starts the next event; one inside
    // parentheses stays in the condition.
    let src = "journey j {\n  trigger a\n  wait for b where event.x == 1 or c or d where (event.y or event.z) within 1d\n}\n";
    let (ast, file) = clean(src);
    let j = journey(&ast);
    let StepKind::WaitForEvent { alternatives, .. } = &j.steps[0].kind else {
        panic!()
    };
    let names: Vec<&str> = alternatives.iter().map(|a| a.event.name.as_str()).collect();
    assert_eq!(names, ["b", "c", "d"]);
    assert_eq!(
        show(alternatives[0].condition.as_ref().unwrap()),
        "(event.x == 1)"
    );
    assert!(alternatives[1].condition.is_none());
    assert_eq!(
        show(alternatives[2].condition.as_ref().unwrap()),
        "(event.y or event.z)"
    );
    assert_eq!(
        file.slice(alternatives[2].span),
        "d where (event.y or event.z)"
    );
}

#[test]
fn per_clause_and_best_hour_send() {
    let src = "journey j {\n  trigger order\n  per trigger.order_id\n  send email a at best hour within 6h as h\n  send email b at best hour\n}\n";
    let (ast, file) = clean(src);
    let j = journey(&ast);
    assert!(j.headers.iter().any(
        |h| matches!(&h.kind, HeaderKind::Per(p) if file.slice(p.span) == "trigger.order_id")
    ));
    let StepKind::Send(first) = &j.steps[0].kind else {
        panic!()
    };
    let best = first.best_hour.as_ref().unwrap();
    assert_eq!(best.within.map(|d| d.secs), Some(6 * 3600));
    assert_eq!(file.slice(best.span), "at best hour within 6h");
    assert_eq!(first.handle.as_ref().map(|h| h.name.as_str()), Some("h"));
    let StepKind::Send(second) = &j.steps[1].kind else {
        panic!()
    };
    assert!(
        second
            .best_hour
            .as_ref()
            .is_some_and(|b| b.within.is_none())
    );
}
