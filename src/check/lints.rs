//! Warnings: things that compile but are almost certainly not what the
//! marketer meant (unreachable steps, constant conditions, a journey that
//! sends nothing, an exit on its own trigger, a time of day without a zone,
//! an address the profile never has, ...). W0004 (sends always blocked by
//! caps) needs the execution graph and belongs to the compiler.

use super::Checker;
use super::problem::{Constant, Problem};
use crate::diagnostic::did_you_mean;
use crate::source::Span;
use crate::syntax::ast::{self, BinaryOp, Expr, ExprKind, HeaderKind, UnaryOp};

/// W0001: `span` covers the steps after an `exit` on every path.
pub(crate) fn unreachable(cx: &mut Checker, span: Span, steps: usize) {
    cx.report(Problem::UnreachableStep { span, steps });
}

/// W0002.
pub(crate) fn sends_nothing(cx: &mut Checker, journey: &ast::JourneyDecl) {
    cx.report(Problem::SendsNothing {
        span: journey.name.span,
        journey: journey.name.name.clone(),
    });
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
    cx.report(Problem::ExitOnTrigger {
        span: event.span,
        trigger,
        event: event.name.clone(),
        goal: matches!(header.kind, HeaderKind::Goal { .. }),
    });
}

/// W0006.
pub(crate) fn wait_until_without_zone(cx: &mut Checker, span: Span, time: ast::TimeOfDay) {
    cx.report(Problem::WaitUntilWithoutZone {
        span,
        minutes: time.minutes,
    });
}

/// W0007 and W0008 for one send.
pub(crate) fn send_warnings(cx: &mut Checker, send: &ast::Send) {
    if let (Some(_), Some((_, span))) = (send.transactional, send.on_capped) {
        cx.report(Problem::UselessOnCapped { span });
    }
    if cx.scope.profile.is_none() {
        return;
    }
    for alt in &send.alternatives {
        let Some(field) = crate::channels::builtin(&alt.channel.name).and_then(|b| b.address)
        else {
            continue;
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
        cx.report(Problem::AddressUndeclared {
            span: alt.channel.span,
            channel: alt.channel.name.clone(),
            field: field.to_string(),
        });
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
    cx.report(Problem::UnknownTimeZone {
        span: zone.span,
        zone: name.clone(),
        suggestion: did_you_mean(name, names.iter().map(String::as_str)),
    });
}

/// W0010.
pub(crate) fn empty_quiet_hours(cx: &mut Checker, q: &ast::QuietHours) {
    cx.report(Problem::EmptyQuietHours {
        span: q.from.span.to(q.to.span),
        minutes: q.from.minutes,
    });
}

// ---------------------------------------------------------------- W0003

/// W0003: a condition that reads nothing that can change, or that compares
/// a value with itself.
pub(crate) fn constant_condition(cx: &mut Checker, e: &Expr) {
    if !is_dynamic(e) {
        let value = match const_eval(e) {
            Some(Const::Bool(b)) => Some(b),
            _ => None,
        };
        cx.report(Problem::ConstantCondition {
            span: e.span,
            snippet: cx.snippet(e.span),
            kind: Constant::Value(value),
        });
        return;
    }
    if let Some((cmp, op)) = self_comparison(e) {
        let always = matches!(op, BinaryOp::Eq | BinaryOp::Le | BinaryOp::Ge);
        cx.report(Problem::ConstantCondition {
            span: cmp.span,
            snippet: cx.snippet(cmp.span),
            kind: Constant::SelfComparison { always },
        });
    }
}

/// True when the expression reads a path or the clock, or calls a function
/// that does not exist (E0208 says so; whether the condition is constant
/// cannot be told, so no W0003 is added).
fn is_dynamic(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Path(_) => true,
        ExprKind::Call { func, args } => {
            use crate::builtins::Function as F;
            match F::from_name(&func.name) {
                None | Some(F::Now | F::DaysSince | F::HoursSince | F::Reachable) => true,
                Some(F::Lower | F::Upper | F::Len | F::Coalesce) => args.iter().any(is_dynamic),
            }
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
