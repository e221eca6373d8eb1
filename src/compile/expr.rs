//! Expressions → [`CExpr`]: profile paths to slots, `event.x` and `trigger.x`
//! to field indices, segments inlined, handles to ids; constants are folded
//! on the way up (see `fold`). What cannot be resolved reads `null`.

use std::sync::Arc;

use super::fold;
use super::program::{BinOp, CExpr, Engagement, FieldPath, Func};
use super::tables::Compiler;
use crate::source::Span;
use crate::syntax::ast;
use crate::value::Value;

impl<'p> Compiler<'p> {
    pub(crate) fn expr(&mut self, e: &'p ast::Expr) -> CExpr {
        match &e.kind {
            ast::ExprKind::Number(n) => CExpr::Const(Value::Number(*n)),
            ast::ExprKind::String(s) => CExpr::Const(Value::str(s)),
            ast::ExprKind::Bool(b) => CExpr::Const(Value::Bool(*b)),
            ast::ExprKind::Null => CExpr::Const(Value::Null),
            ast::ExprKind::Duration(secs) => CExpr::Const(Value::Duration(secs_to_ms(*secs))),
            ast::ExprKind::Timestamp(ms) => CExpr::Const(Value::Timestamp(*ms)),
            ast::ExprKind::List(items) => fold::list(items.iter().map(|i| self.expr(i)).collect()),
            ast::ExprKind::Path(path) => self.path(path),
            ast::ExprKind::Call { func, args } => self.call(func, args),
            ast::ExprKind::Unary { op, operand } => {
                let operand = self.expr(operand);
                match op {
                    ast::UnaryOp::Not => fold::not(operand),
                    ast::UnaryOp::Neg => fold::neg(operand),
                }
            }
            ast::ExprKind::Binary { op, lhs, rhs } => {
                let lhs = self.expr(lhs);
                let rhs = self.expr(rhs);
                fold::binary(bin_op(*op), lhs, rhs)
            }
        }
    }

    fn path(&mut self, path: &'p ast::Path) -> CExpr {
        let fields: FieldPath = path
            .fields
            .iter()
            .map(|f| Arc::from(f.name.as_str()))
            .collect();
        let in_journey = self.journey.active && self.neutral == 0;
        match &path.root {
            _ if fields.is_empty() && !matches!(path.root, ast::PathRoot::Name(_)) => null(),
            ast::PathRoot::Profile => CExpr::Profile(self.slot_of(fields)),
            ast::PathRoot::Event => match self.event {
                Some(event) if self.neutral == 0 => CExpr::Event(self.event_field(event, fields)),
                _ => null(),
            },
            ast::PathRoot::Trigger if in_journey => {
                CExpr::Trigger(self.journey.trigger_field(fields))
            }
            ast::PathRoot::Trigger => null(),
            ast::PathRoot::Journey => match path.fields.as_slice() {
                [f] if f.name == "entered_at" && in_journey => CExpr::EnteredAt,
                _ => null(),
            },
            ast::PathRoot::Name(name) => match path.fields.as_slice() {
                [] => self.segment(path.root_span),
                [field] if in_journey => self.handle_state(name, &field.name),
                _ => null(),
            },
        }
    }

    /// The segment a bare name resolved to, compiled once in a profile-only
    /// context and inlined.
    fn segment(&mut self, name: Span) -> CExpr {
        let model = self.model;
        let Some(&key) = model.refs.segments.get(&name) else {
            return null();
        };
        let Some(decl) = model.scope.segments.at(key) else {
            return null();
        };
        let expr = &decl.expr;
        if let Some(compiled) = self.segment_cache.get(&key) {
            return compiled.clone();
        }
        if self.segment_stack.contains(&key) {
            // A cycle (reported by the checker): break it with `null`.
            return null();
        }
        self.segment_stack.push(key);
        let outer_event = self.event.take();
        self.neutral += 1;
        let compiled = self.expr(expr);
        self.neutral -= 1;
        self.event = outer_event;
        self.segment_stack.pop();
        self.segment_cache.insert(key, compiled.clone());
        compiled
    }

    /// `<handle>.<engagement>` or `<handle>.sent`.
    fn handle_state(&mut self, handle: &str, field: &str) -> CExpr {
        if field == "sent" {
            return CExpr::Sent(self.journey.handle(handle));
        }
        match Engagement::from_name(field) {
            Some(e) => CExpr::Engaged(self.journey.handle(handle), e),
            None => null(),
        }
    }

    fn call(&mut self, func: &ast::Ident, args: &'p [ast::Expr]) -> CExpr {
        let f = match func.name.as_str() {
            "now" => return CExpr::Now,
            "reachable" => return self.reachable(args),
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "len" => Func::Len,
            "coalesce" => Func::Coalesce,
            "days_since" => Func::DaysSince,
            "hours_since" => Func::HoursSince,
            _ => return null(),
        };
        let args = args.iter().map(|a| self.expr(a)).collect();
        fold::call(f, args)
    }

    /// `reachable(<channel>)`: the channel is a bare name (or a string).
    fn reachable(&mut self, args: &[ast::Expr]) -> CExpr {
        let Some(arg) = args.first() else {
            return null();
        };
        // The span the checker resolved: the bare name's, or the string's.
        let name = match &arg.kind {
            ast::ExprKind::Path(p)
                if p.fields.is_empty() && matches!(p.root, ast::PathRoot::Name(_)) =>
            {
                p.root_span
            }
            ast::ExprKind::String(_) => arg.span,
            _ => return null(),
        };
        match self.channel_ref(name) {
            Some(id) => CExpr::Reachable(id),
            None => null(),
        }
    }
}

fn null() -> CExpr {
    CExpr::Const(Value::Null)
}

pub(crate) fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

fn bin_op(op: ast::BinaryOp) -> BinOp {
    match op {
        ast::BinaryOp::Or => BinOp::Or,
        ast::BinaryOp::And => BinOp::And,
        ast::BinaryOp::Eq => BinOp::Eq,
        ast::BinaryOp::Ne => BinOp::Ne,
        ast::BinaryOp::Lt => BinOp::Lt,
        ast::BinaryOp::Le => BinOp::Le,
        ast::BinaryOp::Gt => BinOp::Gt,
        ast::BinaryOp::Ge => BinOp::Ge,
        ast::BinaryOp::In => BinOp::In,
        ast::BinaryOp::NotIn => BinOp::NotIn,
        ast::BinaryOp::Contains => BinOp::Contains,
        ast::BinaryOp::Add => BinOp::Add,
        ast::BinaryOp::Sub => BinOp::Sub,
        ast::BinaryOp::Mul => BinOp::Mul,
        ast::BinaryOp::Div => BinOp::Div,
    }
}
