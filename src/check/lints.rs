//! Warnings: things that compile but are almost certainly not what the
//! marketer meant (unreachable steps, constant conditions, a journey that
//! sends nothing, an exit on its own trigger, a time of day without a zone,
//! an address the profile never has, ...). W0004 (sends always blocked by
//! caps) needs the execution graph and belongs to the compiler.

use super::{Checker, codes};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::source::Span;
use crate::syntax::ast::{self, BinaryOp, Expr, ExprKind, HeaderKind, UnaryOp};

/// W0001: `span` covers the steps after an `exit` on every path.
pub(crate) fn unreachable(cx: &mut Checker, span: Span, steps: usize) {
    let (message, label) = if steps == 1 {
        ("this step can never run", "unreachable")
    } else {
        ("these steps can never run", "unreachable")
    };
    cx.report(
        Diagnostic::new(codes::UNREACHABLE_STEP, span, message)
            .with_label(label)
            .with_help("every path to here ends with `exit` first: remove what comes after it, or the `exit`"),
    );
}

/// W0002.
pub(crate) fn sends_nothing(cx: &mut Checker, journey: &ast::JourneyDecl) {
    cx.report(
        Diagnostic::new(
            codes::SENDS_NOTHING,
            journey.name.span,
            format!("journey `{}` sends nothing", journey.name.name),
        )
        .with_label("no `send` step")
        .with_help(
            "add a `send` step, unless the journey only updates profiles, audiences or events",
        ),
    );
}

/// W0005: an `exit on` or `goal` without a `where` on an event that also
/// starts the journey. With a `where` it can tell the events apart
/// (`where event.cart_id == trigger.cart_id`), so it is not flagged.
pub(crate) fn exit_on_trigger(
    cx: &mut Checker,
    journey: &ast::JourneyDecl,
    header: &ast::Header,
    event: &ast::EventRef,
) {
    let has_condition = matches!(
        &header.kind,
        HeaderKind::ExitOn {
            condition: Some(_),
            ..
        } | HeaderKind::Goal {
            condition: Some(_),
            ..
        }
    );
    if has_condition {
        return;
    }
    let trigger = journey.headers.iter().find_map(|h| match &h.kind {
        HeaderKind::Trigger { event: t, .. } if t.name == event.name => Some(t.span),
        _ => None,
    });
    let Some(trigger) = trigger else { return };
    let (message, help) = if matches!(header.kind, HeaderKind::Goal { .. }) {
        (
            format!(
                "the goal `{}` is also the event that starts this journey",
                event.name
            ),
            "every entrant converts at once; pick the event that shows success, or add a `where` clause",
        )
    } else {
        (
            format!(
                "`exit on {}` exits on the event that starts this journey",
                event.name
            ),
            "the next such event ends the instance; add a `where` clause that tells the events apart",
        )
    };
    cx.report(
        Diagnostic::new(codes::EXIT_ON_TRIGGER, event.span, message)
            .with_related(trigger, "the trigger")
            .with_help(help),
    );
}

/// W0006.
pub(crate) fn wait_until_without_zone(cx: &mut Checker, span: Span, time: ast::TimeOfDay) {
    let hhmm = format_time(time.minutes);
    cx.report(
        Diagnostic::new(
            codes::WAIT_UNTIL_WITHOUT_ZONE,
            span,
            format!("`wait until {hhmm}` has no time zone to read {hhmm} in"),
        )
        .with_label("read in UTC")
        .with_help("add `timezone: string?` to the profile schema, or `quiet hours ... in <zone>` to the journey or the policy"),
    );
}

/// W0007 and W0008 for one send.
pub(crate) fn send_warnings(cx: &mut Checker, send: &ast::Send) {
    if let (Some(_), Some((_, span))) = (send.transactional, send.on_capped) {
        cx.report(
            Diagnostic::new(
                codes::USELESS_ON_CAPPED,
                span,
                "`on capped` has no effect on a transactional send",
            )
            .with_label("never capped")
            .with_help("transactional sends are exempt from caps: remove `on capped ...`"),
        );
    }
    if cx.scope.profile.is_none() {
        return;
    }
    for alt in &send.alternatives {
        let field = match alt.channel.name.as_str() {
            "email" => "email",
            "sms" | "whatsapp" => "phone",
            "push" | "in_app" => "push_token",
            _ => continue,
        };
        let overridden = cx
            .scope
            .channels
            .get(&alt.channel.name)
            .and_then(|c| c.decl)
            .is_some_and(|d| d.address.is_some());
        if overridden || cx.scope.profile_declares(field) {
            continue;
        }
        let channel = &alt.channel.name;
        cx.report(
            Diagnostic::new(
                codes::ADDRESS_UNDECLARED,
                alt.channel.span,
                format!(
                    "`{channel}` sends to `profile.{field}`, which the profile schema does not declare"
                ),
            )
            .with_label("nobody is reachable here")
            .with_help(format!(
                "add `{field}: string?` to `profile {{ }}`, or declare `channel {channel} {{ address ... }}`"
            )),
        );
    }
}

/// W0009 for a zone written as a literal that the time-zone database lacks.
pub(crate) fn unknown_time_zone(cx: &mut Checker, zone: &Expr) {
    let ExprKind::String(name) = &zone.kind else {
        return;
    };
    if jiff::tz::TimeZone::get(name).is_ok() {
        return;
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
        "use an IANA zone name such as `Europe/Paris` or `America/New_York`".to_string()
    });
    cx.report(
        Diagnostic::new(
            codes::UNKNOWN_TIME_ZONE,
            zone.span,
            format!("unknown time zone `{name}`"),
        )
        .with_label("treated as UTC")
        .with_help(help),
    );
}

/// W0010.
pub(crate) fn empty_quiet_hours(cx: &mut Checker, q: &ast::QuietHours) {
    let hhmm = format_time(q.from.minutes);
    cx.report(
        Diagnostic::new(
            codes::EMPTY_QUIET_HOURS,
            q.from.span.to(q.to.span),
            format!("quiet hours from {hhmm} to {hhmm} cover no time"),
        )
        .with_label("starts and ends at the same time")
        .with_help("give the end of the quiet window, e.g. `quiet hours 21:00 to 08:00`"),
    );
}

fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

// ---------------------------------------------------------------- W0003

/// W0003: a condition that reads nothing that can change, or that compares
/// a value with itself.
pub(crate) fn constant_condition(cx: &mut Checker, e: &Expr) {
    if !is_dynamic(e) {
        let label = match const_eval(e) {
            Some(Const::Bool(b)) => format!("always `{b}`"),
            _ => "always the same".to_string(),
        };
        cx.report(
            Diagnostic::new(
                codes::CONSTANT_CONDITION,
                e.span,
                format!("the condition `{}` never changes", cx.snippet(e.span)),
            )
            .with_label(label)
            .with_help(
                "test something about the customer, such as a `profile.` field or a segment",
            ),
        );
        return;
    }
    if let Some((cmp, op)) = self_comparison(e) {
        let always = matches!(op, BinaryOp::Eq | BinaryOp::Le | BinaryOp::Ge);
        cx.report(
            Diagnostic::new(
                codes::CONSTANT_CONDITION,
                cmp.span,
                format!("`{}` compares a value with itself", cx.snippet(cmp.span)),
            )
            .with_label(format!("always `{always}` when the value is set"))
            .with_help("one side is probably meant to be another field or a value"),
        );
    }
}

/// True when the expression reads a path or the clock.
fn is_dynamic(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Path(_) => true,
        ExprKind::Call { func, args } => {
            matches!(
                func.name.as_str(),
                "now" | "days_since" | "hours_since" | "reachable"
            ) || args.iter().any(is_dynamic)
        }
        ExprKind::List(items) => items.iter().any(is_dynamic),
        ExprKind::Unary { operand, .. } => is_dynamic(operand),
        ExprKind::Binary { lhs, rhs, .. } => is_dynamic(lhs) || is_dynamic(rhs),
        _ => false,
    }
}

/// The first comparison of an expression with itself inside `e`.
fn self_comparison(e: &Expr) -> Option<(&Expr, BinaryOp)> {
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            let comparison = matches!(
                op,
                BinaryOp::Eq
                    | BinaryOp::Ne
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge
            );
            if comparison && same_expr(lhs, rhs) {
                return Some((e, *op));
            }
            self_comparison(lhs).or_else(|| self_comparison(rhs))
        }
        ExprKind::Unary { operand, .. } => self_comparison(operand),
        _ => None,
    }
}

/// Structural equality, ignoring spans.
fn same_expr(a: &Expr, b: &Expr) -> bool {
    match (&a.kind, &b.kind) {
        (ExprKind::Number(x), ExprKind::Number(y)) => x == y,
        (ExprKind::String(x), ExprKind::String(y)) => x == y,
        (ExprKind::Bool(x), ExprKind::Bool(y)) => x == y,
        (ExprKind::Null, ExprKind::Null) => true,
        (ExprKind::Duration(x), ExprKind::Duration(y)) => x == y,
        (ExprKind::Timestamp(x), ExprKind::Timestamp(y)) => x == y,
        (ExprKind::List(x), ExprKind::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_expr(a, b))
        }
        (ExprKind::Path(x), ExprKind::Path(y)) => {
            x.root == y.root
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|(a, b)| a.name == b.name)
        }
        (ExprKind::Call { func: f, args: x }, ExprKind::Call { func: g, args: y }) => {
            f.name == g.name
                && f.name != "now"
                && x.len() == y.len()
                && x.iter().zip(y).all(|(a, b)| same_expr(a, b))
        }
        (ExprKind::Unary { op: o, operand: x }, ExprKind::Unary { op: p, operand: y }) => {
            o == p && same_expr(x, y)
        }
        (
            ExprKind::Binary {
                op: o,
                lhs: a1,
                rhs: b1,
            },
            ExprKind::Binary {
                op: p,
                lhs: a2,
                rhs: b2,
            },
        ) => o == p && same_expr(a1, a2) && same_expr(b1, b2),
        _ => false,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Const {
    Number(f64),
    String(String),
    Bool(bool),
    Null,
    Other,
}

/// Evaluates a constant expression as far as it is simple to.
fn const_eval(e: &Expr) -> Option<Const> {
    Some(match &e.kind {
        ExprKind::Number(n) => Const::Number(*n),
        ExprKind::String(s) => Const::String(s.clone()),
        ExprKind::Bool(b) => Const::Bool(*b),
        ExprKind::Null => Const::Null,
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => match const_eval(operand)? {
            Const::Bool(b) => Const::Bool(!b),
            _ => return None,
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let (l, r) = (const_eval(lhs)?, const_eval(rhs)?);
            match (op, l, r) {
                (BinaryOp::And, Const::Bool(a), Const::Bool(b)) => Const::Bool(a && b),
                (BinaryOp::Or, Const::Bool(a), Const::Bool(b)) => Const::Bool(a || b),
                (BinaryOp::Eq, a, b) if a != Const::Other && b != Const::Other => {
                    Const::Bool(a == b)
                }
                (BinaryOp::Ne, a, b) if a != Const::Other && b != Const::Other => {
                    Const::Bool(a != b)
                }
                (op, Const::Number(a), Const::Number(b)) => match op {
                    BinaryOp::Lt => Const::Bool(a < b),
                    BinaryOp::Le => Const::Bool(a <= b),
                    BinaryOp::Gt => Const::Bool(a > b),
                    BinaryOp::Ge => Const::Bool(a >= b),
                    BinaryOp::Add => Const::Number(a + b),
                    BinaryOp::Sub => Const::Number(a - b),
                    BinaryOp::Mul => Const::Number(a * b),
                    _ => Const::Other,
                },
                _ => Const::Other,
            }
        }
        _ => Const::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{Path, PathRoot};

    fn e(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: Span::default(),
        }
    }

    fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        e(ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        })
    }

    fn profile(field: &str) -> Expr {
        e(ExprKind::Path(Path {
            root: PathRoot::Profile,
            root_span: Span::default(),
            fields: vec![ast::Ident {
                name: field.into(),
                span: Span::default(),
            }],
        }))
    }

    #[test]
    fn literals_only_are_constant() {
        let c = bin(
            BinaryOp::Gt,
            e(ExprKind::Number(1.0)),
            e(ExprKind::Number(2.0)),
        );
        assert!(!is_dynamic(&c));
        assert_eq!(const_eval(&c), Some(Const::Bool(false)));
        let d = bin(BinaryOp::Gt, profile("x"), e(ExprKind::Number(2.0)));
        assert!(is_dynamic(&d));
    }

    #[test]
    fn self_comparison_is_found_inside_a_condition() {
        let same = bin(BinaryOp::Eq, profile("plan"), profile("plan"));
        let cond = bin(
            BinaryOp::And,
            bin(BinaryOp::Gt, profile("x"), e(ExprKind::Number(1.0))),
            same.clone(),
        );
        assert_eq!(self_comparison(&cond).map(|(c, _)| c), Some(&same));
        let different = bin(BinaryOp::Eq, profile("plan"), profile("tier"));
        assert!(self_comparison(&different).is_none());
    }
}
