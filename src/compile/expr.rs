//! Expressions → [`CExpr`]: profile paths to slots, `event.x` and `trigger.x`
//! to field indices, segments inlined, handles to ids; constants are folded
//! on the way up (see `fold`). Every name reads what the checker resolved
//! it to; one it did not resolve is recorded ([`Compiler::unresolved`]) and
//! no program is made.

use std::sync::Arc;

use super::fold;
use super::program::{BinOp, CExpr, FieldPath, Func};
use super::tables::Compiler;
use crate::builtins::{Function, HandleField};
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
            ast::ExprKind::Path(path) => self.path(path, e.span),
            ast::ExprKind::Call { func, args } => self.call(func, args, e.span),
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

    fn path(&mut self, path: &'p ast::Path, at: Span) -> CExpr {
        let fields: FieldPath = path
            .fields
            .iter()
            .map(|f| Arc::from(f.name.as_str()))
            .collect();
        let in_journey = self.journey.active && self.neutral == 0;
        match (&path.root, path.fields.as_slice()) {
            (ast::PathRoot::Profile, [_, ..]) => CExpr::Profile(self.slot_of(fields)),
            (ast::PathRoot::Event, [_, ..]) if self.neutral == 0 => match self.event {
                Some(event) => CExpr::Event(self.event_field(event, fields)),
                None => self.unresolved(at),
            },
            (ast::PathRoot::Trigger, [_, ..]) if in_journey => {
                CExpr::Trigger(self.journey.trigger_field(fields))
            }
            (ast::PathRoot::Journey, [f]) if in_journey && f.name == "entered_at" => {
                CExpr::EnteredAt
            }
            (ast::PathRoot::Name(_), []) => self.segment(path.root_span),
            (ast::PathRoot::Name(name), [field]) if in_journey => {
                self.handle_state(name, path.root_span, field.span)
            }
            _ => self.unresolved(at),
        }
    }

    /// The segment a bare name resolved to, compiled once in a profile-only
    /// context and inlined.
    fn segment(&mut self, name: Span) -> CExpr {
        let model = self.model;
        let Some(&key) = model.refs.segments.get(&name) else {
            return self.unresolved(name);
        };
        let Some(decl) = model.scope.segments.at(key) else {
            return self.unresolved(name);
        };
        let expr = &decl.expr;
        if let Some(compiled) = self.segment_cache.get(&key) {
            return compiled.clone();
        }
        if self.segment_stack.contains(&key) {
            // A cycle, which the checker reports.
            return self.unresolved(name);
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

    /// `<handle>.<engagement>` or `<handle>.sent`, as the checker resolved
    /// the handle (by `handle`) and the field after it (by `field`).
    fn handle_state(&mut self, name: &str, handle: Span, field: Span) -> CExpr {
        let refs = &self.model.refs;
        let (Some(&checked), Some(&read)) =
            (refs.handles.get(&handle), refs.handle_fields.get(&field))
        else {
            return self.unresolved(handle.to(field));
        };
        let id = self.journey.handle(checked, name);
        match read {
            HandleField::Sent => CExpr::Sent(id),
            HandleField::Engaged(e) => CExpr::Engaged(id, e),
        }
    }

    fn call(&mut self, func: &ast::Ident, args: &'p [ast::Expr], at: Span) -> CExpr {
        let Some(&function) = self.model.refs.functions.get(&func.span) else {
            return self.unresolved(at);
        };
        let f = match function {
            Function::Now => return CExpr::Now,
            Function::Reachable => return self.reachable(args, at),
            Function::Lower => Func::Lower,
            Function::Upper => Func::Upper,
            Function::Len => Func::Len,
            Function::Coalesce => Func::Coalesce,
            Function::DaysSince => Func::DaysSince,
            Function::HoursSince => Func::HoursSince,
        };
        let args = args.iter().map(|a| self.expr(a)).collect();
        fold::call(f, args)
    }

    /// `reachable(<channel>)`: the channel is a bare name (or a string).
    fn reachable(&mut self, args: &[ast::Expr], at: Span) -> CExpr {
        // The span the checker resolved: the bare name's, or the string's.
        let name = match args.first().map(|a| (a, &a.kind)) {
            Some((_, ast::ExprKind::Path(p)))
                if p.fields.is_empty() && matches!(p.root, ast::PathRoot::Name(_)) =>
            {
                p.root_span
            }
            Some((arg, ast::ExprKind::String(_))) => arg.span,
            _ => return self.unresolved(at),
        };
        // An unresolved channel is recorded by `channel_ref`.
        self.channel_ref(name)
            .map_or(CExpr::Const(Value::Null), CExpr::Reachable)
    }
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
