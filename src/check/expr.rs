//! Type inference and checking of expressions. An [`Env`] says which roots an
//! expression may use where it is written: `event.` only in `where` clauses
//! (E0212); `trigger.` inside a journey, except in its own trigger clauses and
//! in a journey that only starts after a silence (E0213); handles only after
//! a send that binds them on every path (E0211). Segments, channel rules and
//! the policy see only `profile`, segments and functions.

use std::rc::Rc;

use super::Checker;
use super::journey::{HandleView, check_bound};
use super::problem::{
    InvalidPathKind, Mismatch, Problem, TriggerScope, UnknownFieldKind, UnknownNameKind,
};
use super::types::{Object, Type};
use crate::builtins::{Engagement, Function, HandleField};
use crate::diagnostic::did_you_mean;
use crate::syntax::ast::{self, BinaryOp, Expr, ExprKind, PathRoot, UnaryOp};

/// What `event.` refers to.
pub(crate) enum EventEnv<'e> {
    /// Not inside a `where` clause.
    Outside,
    /// The event being matched: its name and schema (`None`: no schema).
    Where {
        name: &'e str,
        fields: Option<Rc<Object>>,
    },
}

/// What `trigger.` refers to.
#[derive(Clone, Copy)]
pub(crate) enum TriggerEnv<'e> {
    /// Segments, channels, the policy.
    NotInJourney,
    /// A trigger's own `where` clause: the instance does not exist yet.
    OwnClause,
    /// A journey whose triggers are all `trigger no ... for`.
    NoEvent,
    /// The events that can start the instance.
    Events(&'e [TriggerEvent]),
}

/// One event that can start a journey.
pub(crate) struct TriggerEvent {
    pub name: String,
    pub fields: Option<Rc<Object>>,
}

pub(crate) struct Env<'e> {
    pub event: EventEnv<'e>,
    pub trigger: TriggerEnv<'e>,
    pub handles: Option<HandleView<'e>>,
}

impl<'e> Env<'e> {
    /// Segments, channel rules and the policy: the profile, segments and
    /// functions only.
    pub fn profile_only() -> Env<'static> {
        Env {
            event: EventEnv::Outside,
            trigger: TriggerEnv::NotInJourney,
            handles: None,
        }
    }

    fn in_journey(&self) -> bool {
        !matches!(self.trigger, TriggerEnv::NotInJourney)
    }
}

/// Profile fields read by the built-in channel rules: usable even when a
/// declared profile schema lacks them (they are then simply `null`).
fn builtin_profile_field(name: &str) -> Option<Type> {
    use crate::channels::{CONSENT, UNSUBSCRIBED, is_builtin_profile_field};
    match name {
        UNSUBSCRIBED => Some(Type::Bool),
        CONSENT => Some(Type::Unknown),
        _ if is_builtin_profile_field(name) => Some(Type::String),
        _ => None,
    }
}

/// Infers the type of `e`, reporting every problem inside it. A part with
/// an error has the unknown type, so one mistake is reported once.
pub(crate) fn infer(cx: &mut Checker, env: &Env, e: &Expr) -> Type {
    match &e.kind {
        ExprKind::Number(_) => Type::Number,
        ExprKind::String(_) => Type::String,
        ExprKind::Bool(_) => Type::Bool,
        ExprKind::Null => Type::Null,
        ExprKind::Duration(_) => Type::Duration,
        ExprKind::Timestamp(_) => Type::Timestamp,
        ExprKind::List(items) => infer_list(cx, env, items),
        ExprKind::Path(p) => infer_path(cx, env, p, e),
        ExprKind::Call { func, args } => infer_call(cx, env, func, args),
        ExprKind::Unary { op, operand } => infer_unary(cx, env, *op, operand),
        ExprKind::Binary { op, lhs, rhs } => infer_binary(cx, env, *op, lhs, rhs, e),
    }
}

fn infer_list(cx: &mut Checker, env: &Env, items: &[Expr]) -> Type {
    let mut element = Type::Unknown;
    let mut first: Option<&Expr> = None;
    for item in items {
        let ty = infer(cx, env, item);
        if !ty.compatible(&element) {
            if let Some(first) = first {
                cx.report(Problem::TypeMismatch {
                    span: item.span,
                    kind: Mismatch::ListItems {
                        first: cx.snippet(first.span),
                        first_type: element.clone(),
                        first_span: first.span,
                        item: cx.snippet(item.span),
                        item_type: ty,
                    },
                });
            }
            continue;
        }
        if element.is_open() && !ty.is_open() {
            first = Some(item);
        }
        element = element.join(&ty);
    }
    Type::List(Rc::new(element))
}

// ---------------------------------------------------------------- paths

fn infer_path(cx: &mut Checker, env: &Env, p: &ast::Path, e: &Expr) -> Type {
    match &p.root {
        PathRoot::Profile => profile_path(cx, &p.fields),
        PathRoot::Event => event_path(cx, env, p),
        PathRoot::Trigger => trigger_path(cx, env, p),
        PathRoot::Journey => journey_path(cx, env, p, e),
        PathRoot::Name(name) => name_path(cx, env, name, p, e),
    }
}

/// `profile.a.b`: strict once the project declares `profile`, except for the
/// fields the built-in channel rules read.
pub(crate) fn profile_path(cx: &mut Checker, fields: &[ast::Ident]) -> Type {
    let Some(profile) = cx.scope.profile.clone() else {
        return Type::Unknown;
    };
    let Some((first, rest)) = fields.split_first() else {
        return Type::Object(profile);
    };
    let ty = match profile.get(&first.name) {
        Some(f) => {
            cx.refs.field(first.span, f.decl);
            f.ty.clone()
        }
        None => match builtin_profile_field(&first.name) {
            Some(_) if first.name == crate::channels::CONSENT => return consent_path(cx, rest),
            Some(ty) => ty,
            None => {
                unknown_field(cx, first, &profile, "the profile schema");
                return Type::Unknown;
            }
        },
    };
    walk_fields(cx, ty, rest, format!("profile.{}", first.name))
}

/// `profile.consent.<channel>` when the schema does not declare `consent`.
fn consent_path(cx: &mut Checker, rest: &[ast::Ident]) -> Type {
    let Some((channel, more)) = rest.split_first() else {
        return Type::Unknown;
    };
    if !cx.scope.channels.contains(&channel.name) {
        let suggestion = did_you_mean(&channel.name, cx.scope.channels.names());
        cx.report(Problem::UnknownField {
            span: channel.span,
            kind: UnknownFieldKind::ConsentChannel {
                channel: channel.name.clone(),
                suggestion,
            },
        });
        return Type::Unknown;
    }
    walk_fields(
        cx,
        Type::Bool,
        more,
        format!("profile.consent.{}", channel.name),
    )
}

fn event_path(cx: &mut Checker, env: &Env, p: &ast::Path) -> Type {
    match &env.event {
        EventEnv::Outside => {
            cx.report(Problem::EventOutOfScope {
                span: p.root_span,
                in_journey: env.in_journey(),
            });
            Type::Unknown
        }
        EventEnv::Where { name, fields } => match fields {
            Some(fields) => {
                let owner = format!("event `{name}`");
                object_path(cx, fields, &p.fields, &owner, "event")
            }
            None => Type::Unknown,
        },
    }
}

fn trigger_path(cx: &mut Checker, env: &Env, p: &ast::Path) -> Type {
    let why = match env.trigger {
        TriggerEnv::Events(events) => return trigger_fields(cx, events, &p.fields),
        TriggerEnv::NotInJourney => TriggerScope::NotInJourney,
        TriggerEnv::OwnClause => TriggerScope::OwnClause,
        TriggerEnv::NoEvent => TriggerScope::NoEvent,
    };
    cx.report(Problem::TriggerOutOfScope {
        span: p.root_span,
        why,
    });
    Type::Unknown
}

/// `trigger.x...`: the field must exist on every event that can start the
/// journey (one without a schema accepts anything).
fn trigger_fields(cx: &mut Checker, events: &[TriggerEvent], fields: &[ast::Ident]) -> Type {
    let Some((first, rest)) = fields.split_first() else {
        return Type::Unknown;
    };
    let mut ty: Option<Type> = None;
    for event in events {
        let Some(schema) = &event.fields else {
            ty = Some(Type::Unknown);
            continue;
        };
        match schema.get(&first.name) {
            Some(f) => {
                cx.refs.field(first.span, f.decl);
                ty = Some(match ty {
                    None => f.ty.clone(),
                    Some(t) if t == f.ty => t,
                    Some(_) => Type::Unknown,
                });
            }
            None => {
                let owner = format!("the trigger event `{}`", event.name);
                unknown_field(cx, first, schema, &owner);
                return Type::Unknown;
            }
        }
    }
    walk_fields(
        cx,
        ty.unwrap_or(Type::Unknown),
        rest,
        format!("trigger.{}", first.name),
    )
}

fn journey_path(cx: &mut Checker, env: &Env, p: &ast::Path, e: &Expr) -> Type {
    if !env.in_journey() {
        cx.report(Problem::InvalidPath {
            span: e.span,
            kind: InvalidPathKind::JourneyOutside {
                text: cx.snippet(e.span),
            },
        });
        return Type::Unknown;
    }
    if let [field] = p.fields.as_slice()
        && field.name == "entered_at"
    {
        return Type::Timestamp;
    }
    cx.report(Problem::InvalidPath {
        span: e.span,
        kind: InvalidPathKind::NotOfJourney {
            text: cx.snippet(e.span),
        },
    });
    Type::Unknown
}

/// A bare name: a handle (which wins over a segment of the same name inside
/// its journey, since the send is the nearer declaration), else a segment.
fn name_path(cx: &mut Checker, env: &Env, name: &str, p: &ast::Path, e: &Expr) -> Type {
    if let Some(view) = &env.handles
        && let Some(id) = view.handles.index(name)
    {
        return handle_path(cx, view, id, name, p, e);
    }
    if let Some(index) = cx.scope.segments.index(name) {
        cx.refs.segments.insert(p.root_span, index);
        if let Some(field) = p.fields.first() {
            cx.report(Problem::InvalidPath {
                span: field.span,
                kind: InvalidPathKind::SegmentField {
                    segment: name.to_string(),
                },
            });
        }
        return Type::Bool;
    }
    let handles: Vec<&str> = env
        .handles
        .as_ref()
        .map(|v| v.handles.names().collect())
        .unwrap_or_default();
    let roots: &[&str] = if p.fields.is_empty() {
        &[]
    } else {
        &["profile", "event", "trigger", "journey"]
    };
    let candidates = cx
        .scope
        .segments
        .names()
        .chain(handles.iter().copied())
        .chain(roots.iter().copied());
    let suggestion = did_you_mean(name, candidates);
    cx.report(Problem::UnknownName {
        span: p.root_span,
        name: name.to_string(),
        suggestion,
        kind: UnknownNameKind::Segment {
            handles: env.handles.is_some(),
        },
    });
    Type::Unknown
}

fn handle_path(
    cx: &mut Checker,
    view: &HandleView,
    id: usize,
    name: &str,
    p: &ast::Path,
    e: &Expr,
) -> Type {
    match p.fields.as_slice() {
        [] => {
            cx.report(Problem::InvalidPath {
                span: e.span,
                kind: InvalidPathKind::HandleAlone {
                    handle: name.to_string(),
                },
            });
            return Type::Unknown;
        }
        [engagement, rest @ ..] => {
            let Some(field) = HandleField::from_name(&engagement.name) else {
                unknown_engagement(cx, engagement, true);
                return Type::Unknown;
            };
            cx.refs.handle_fields.insert(engagement.span, field);
            if let Some(extra) = rest.first() {
                cx.report(Problem::InvalidPath {
                    span: extra.span,
                    kind: InvalidPathKind::EngagementField {
                        handle: name.to_string(),
                        engagement: engagement.name.clone(),
                    },
                });
            }
        }
    }
    check_bound(cx, view, id, name, p.root_span);
    Type::Bool
}

/// E0210; `sent` is suggested only where a condition is expected.
pub(crate) fn unknown_engagement(cx: &mut Checker, engagement: &ast::Ident, with_sent: bool) {
    let candidates: Vec<&'static str> = Engagement::names()
        .chain(with_sent.then_some("sent"))
        .collect();
    let suggestion = did_you_mean(&engagement.name, candidates.iter().copied());
    cx.report(Problem::UnknownEngagement {
        span: engagement.span,
        name: engagement.name.clone(),
        suggestion,
        candidates,
    });
}

/// Walks `fields` from an object of a schema; `owner` names it in messages.
fn object_path(
    cx: &mut Checker,
    object: &Rc<Object>,
    fields: &[ast::Ident],
    owner: &str,
    root: &str,
) -> Type {
    let Some((first, rest)) = fields.split_first() else {
        return Type::Object(object.clone());
    };
    match object.get(&first.name) {
        Some(f) => {
            cx.refs.field(first.span, f.decl);
            let ty = f.ty.clone();
            walk_fields(cx, ty, rest, format!("{root}.{}", first.name))
        }
        None => {
            unknown_field(cx, first, object, owner);
            Type::Unknown
        }
    }
}

/// Walks nested fields from a value of type `ty` written as `prefix`.
pub(crate) fn walk_fields(
    cx: &mut Checker,
    mut ty: Type,
    fields: &[ast::Ident],
    mut prefix: String,
) -> Type {
    for field in fields {
        ty = match &ty {
            Type::Object(o) => match o.get(&field.name) {
                Some(f) => {
                    cx.refs.field(field.span, f.decl);
                    f.ty.clone()
                }
                None => {
                    let o = o.clone();
                    unknown_field(cx, field, &o, &format!("`{prefix}`"));
                    return Type::Unknown;
                }
            },
            Type::Unknown | Type::Null => return Type::Unknown,
            other => {
                cx.report(Problem::UnknownField {
                    span: field.span,
                    kind: UnknownFieldKind::NotAnObject {
                        prefix,
                        found: other.clone(),
                        field: field.name.clone(),
                    },
                });
                return Type::Unknown;
            }
        };
        prefix.push('.');
        prefix.push_str(&field.name);
    }
    ty
}

/// E0207 with a suggestion, or the list of fields that do exist.
pub(crate) fn unknown_field(cx: &mut Checker, field: &ast::Ident, object: &Object, owner: &str) {
    let suggestion = did_you_mean(&field.name, object.names());
    cx.report(Problem::UnknownField {
        span: field.span,
        kind: UnknownFieldKind::Missing {
            field: field.name.clone(),
            owner: owner.to_string(),
            suggestion,
            declared: (!object.fields.is_empty()).then(|| object.list_names()),
        },
    });
}

// ---------------------------------------------------------------- calls

fn infer_call(cx: &mut Checker, env: &Env, func: &ast::Ident, args: &[Expr]) -> Type {
    let Some(function) = Function::from_name(&func.name) else {
        for a in args {
            infer(cx, env, a);
        }
        let functions: Vec<&'static str> = Function::names().collect();
        cx.report(Problem::UnknownFunction {
            span: func.span,
            name: func.name.clone(),
            suggestion: did_you_mean(&func.name, functions.iter().copied()),
            functions,
        });
        return Type::Unknown;
    };
    cx.refs.functions.insert(func.span, function);
    check_arity(cx, func, function.arity(), function.usage(), args.len());
    if function == Function::Reachable {
        for a in args {
            reachable_arg(cx, a);
        }
        return Type::Bool;
    }
    let types: Vec<Type> = args.iter().map(|a| infer(cx, env, a)).collect();
    let arg = |i: usize| types.get(i).cloned().unwrap_or(Type::Unknown);
    match function {
        Function::Now => Type::Timestamp,
        Function::Lower | Function::Upper => {
            expect_arg(cx, func, args, &types, &[Type::String], "text");
            Type::String
        }
        Function::Len => {
            let list = Type::List(Rc::new(Type::Unknown));
            expect_arg(
                cx,
                func,
                args,
                &types,
                &[Type::String, list],
                "a list or text",
            );
            Type::Number
        }
        Function::DaysSince | Function::HoursSince => {
            expect_arg(cx, func, args, &types, &[Type::Timestamp], "a timestamp");
            Type::Number
        }
        Function::Coalesce | Function::Reachable => {
            coalesce(cx, args, &types).unwrap_or_else(|| arg(0))
        }
    }
}

fn check_arity(
    cx: &mut Checker,
    func: &ast::Ident,
    arity: Option<usize>,
    usage: &'static str,
    given: usize,
) {
    let ok = match arity {
        Some(n) => given == n,
        None => given >= 1,
    };
    if !ok {
        cx.report(Problem::WrongArity {
            span: func.span,
            func: func.name.clone(),
            arity,
            given,
            usage,
        });
    }
}

/// E0301 when the first argument has none of the `accepted` types.
fn expect_arg(
    cx: &mut Checker,
    func: &ast::Ident,
    args: &[Expr],
    types: &[Type],
    accepted: &[Type],
    wanted: &'static str,
) {
    let (Some(a), Some(t)) = (args.first(), types.first()) else {
        return;
    };
    if accepted.iter().any(|acc| t.compatible(acc)) {
        return;
    }
    cx.report(Problem::TypeMismatch {
        span: a.span,
        kind: Mismatch::Argument {
            func: func.name.clone(),
            wanted,
            snippet: cx.snippet(a.span),
            found: t.clone(),
        },
    });
}

/// The common type of `coalesce`'s arguments.
fn coalesce(cx: &mut Checker, args: &[Expr], types: &[Type]) -> Option<Type> {
    let mut common = Type::Unknown;
    for (i, (a, t)) in args.iter().zip(types).enumerate() {
        if !t.compatible(&common) {
            cx.report(Problem::TypeMismatch {
                span: a.span,
                kind: Mismatch::Coalesce {
                    first: cx.snippet(args[0].span),
                    common: common.clone(),
                    this: cx.snippet(a.span),
                    found: t.clone(),
                    index: i,
                },
            });
            return Some(Type::Unknown);
        }
        common = common.join(t);
    }
    Some(common)
}

/// `reachable(<channel>)`: a channel name (or the same name as a string).
fn reachable_arg(cx: &mut Checker, a: &Expr) {
    let ident = match &a.kind {
        ExprKind::Path(ast::Path {
            root: PathRoot::Name(n),
            fields,
            root_span,
        }) if fields.is_empty() => ast::Ident {
            name: n.clone(),
            span: *root_span,
        },
        ExprKind::String(s) => ast::Ident {
            name: s.clone(),
            span: a.span,
        },
        _ => {
            cx.report(Problem::TypeMismatch {
                span: a.span,
                kind: Mismatch::ReachableArgument {
                    snippet: cx.snippet(a.span),
                },
            });
            return;
        }
    };
    cx.check_channel(&ident);
}

// ---------------------------------------------------------------- operators

fn infer_unary(cx: &mut Checker, env: &Env, op: UnaryOp, operand: &Expr) -> Type {
    let ty = infer(cx, env, operand);
    match op {
        UnaryOp::Not => {
            expect_bool(cx, operand, &ty, "not");
            Type::Bool
        }
        UnaryOp::Neg => match ty {
            Type::Number | Type::Duration => ty,
            t if t.is_open() => Type::Unknown,
            found => {
                cx.report(Problem::TypeMismatch {
                    span: operand.span,
                    kind: Mismatch::Negate {
                        snippet: cx.snippet(operand.span),
                        found,
                    },
                });
                Type::Unknown
            }
        },
    }
}

fn expect_bool(cx: &mut Checker, e: &Expr, ty: &Type, op: &'static str) {
    if matches!(ty, Type::Bool) || ty.is_open() {
        return;
    }
    cx.report(Problem::TypeMismatch {
        span: e.span,
        kind: Mismatch::NotBool {
            op,
            snippet: cx.snippet(e.span),
            found: ty.clone(),
        },
    });
}

fn infer_binary(
    cx: &mut Checker,
    env: &Env,
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    whole: &Expr,
) -> Type {
    let lt = infer(cx, env, lhs);
    let rt = infer(cx, env, rhs);
    match op {
        BinaryOp::Or | BinaryOp::And => {
            expect_bool(cx, lhs, &lt, op.as_str());
            expect_bool(cx, rhs, &rt, op.as_str());
            Type::Bool
        }
        BinaryOp::Eq | BinaryOp::Ne => {
            if !lt.compatible(&rt) {
                mismatch(cx, lhs, &lt, rhs, &rt, "cannot be compared");
            }
            Type::Bool
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            ordering(cx, op, lhs, &lt, rhs, &rt);
            Type::Bool
        }
        BinaryOp::In | BinaryOp::NotIn => {
            membership(cx, op, lhs, &lt, rhs, &rt);
            Type::Bool
        }
        BinaryOp::Contains => {
            contains(cx, lhs, &lt, rhs, &rt);
            Type::Bool
        }
        BinaryOp::Add | BinaryOp::Sub => arithmetic(cx, op, lhs, &lt, rhs, &rt, whole),
        BinaryOp::Mul | BinaryOp::Div => {
            for (e, t) in [(lhs, &lt), (rhs, &rt)] {
                if !t.compatible(&Type::Number) {
                    cx.report(Problem::TypeMismatch {
                        span: e.span,
                        kind: Mismatch::NotNumber {
                            op: op.as_str(),
                            snippet: cx.snippet(e.span),
                            found: t.clone(),
                        },
                    });
                    return Type::Unknown;
                }
            }
            Type::Number
        }
    }
}

/// "`profile.lifetime_value` is a number, but `"high"` is text".
fn mismatch(cx: &mut Checker, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type, label: &'static str) {
    cx.report(Problem::TypeMismatch {
        span: lhs.span.to(rhs.span),
        kind: Mismatch::Operands {
            lhs: cx.snippet(lhs.span),
            lhs_type: lt.clone(),
            rhs: cx.snippet(rhs.span),
            rhs_type: rt.clone(),
            label,
        },
    });
}

fn ordering(cx: &mut Checker, op: BinaryOp, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type) {
    if !lt.compatible(rt) {
        mismatch(cx, lhs, lt, rhs, rt, "cannot be compared");
        return;
    }
    for (e, t) in [(lhs, lt), (rhs, rt)] {
        if matches!(t, Type::Bool | Type::List(_) | Type::Object(_)) {
            cx.report(Problem::TypeMismatch {
                span: e.span,
                kind: Mismatch::Unordered {
                    op: op.as_str(),
                    snippet: cx.snippet(e.span),
                    found: t.clone(),
                },
            });
            return;
        }
    }
}

fn membership(cx: &mut Checker, op: BinaryOp, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type) {
    match rt {
        Type::List(element) => {
            if !lt.compatible(element) {
                mismatch(cx, lhs, lt, rhs, rt, "cannot be in that list");
            }
        }
        t if t.is_open() => {}
        t => {
            cx.report(Problem::TypeMismatch {
                span: rhs.span,
                kind: Mismatch::NotAList {
                    op: op.as_str(),
                    snippet: cx.snippet(rhs.span),
                    found: t.clone(),
                    lhs: cx.snippet(lhs.span),
                },
            });
        }
    }
}

fn contains(cx: &mut Checker, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type) {
    match lt {
        Type::List(element) => {
            if !rt.compatible(element) {
                mismatch(cx, lhs, lt, rhs, rt, "cannot be in that list");
            }
        }
        Type::String => {
            if !rt.compatible(&Type::String) {
                mismatch(cx, lhs, lt, rhs, rt, "text contains only text");
            }
        }
        t if t.is_open() => {}
        t => {
            cx.report(Problem::TypeMismatch {
                span: lhs.span,
                kind: Mismatch::NotAContainer {
                    snippet: cx.snippet(lhs.span),
                    found: t.clone(),
                },
            });
        }
    }
}

/// `+` and `-`: numbers, timestamp ± duration, timestamp − timestamp,
/// duration ± duration.
fn arithmetic(
    cx: &mut Checker,
    op: BinaryOp,
    lhs: &Expr,
    lt: &Type,
    rhs: &Expr,
    rt: &Type,
    whole: &Expr,
) -> Type {
    let sub = op == BinaryOp::Sub;
    match (lt, rt) {
        (Type::Number, Type::Number) => return Type::Number,
        (Type::Timestamp, Type::Duration) => return Type::Timestamp,
        (Type::Duration, Type::Timestamp) if !sub => return Type::Timestamp,
        (Type::Timestamp, Type::Timestamp) if sub => return Type::Duration,
        (Type::Duration, Type::Duration) => return Type::Duration,
        _ => {}
    }
    let addable =
        |t: &Type| t.is_open() || matches!(t, Type::Number | Type::Timestamp | Type::Duration);
    if lt.is_open() || rt.is_open() {
        // One side is unknown: only a side that can never be added is wrong.
        for (e, t) in [(lhs, lt), (rhs, rt)] {
            if !addable(t) {
                return not_addable(cx, op, e, t);
            }
        }
        return match (lt, rt) {
            (Type::Number, _) | (_, Type::Number) => Type::Number,
            _ => Type::Unknown,
        };
    }
    for (e, t) in [(lhs, lt), (rhs, rt)] {
        if !addable(t) {
            return not_addable(cx, op, e, t);
        }
    }
    cx.report(Problem::TypeMismatch {
        span: whole.span,
        kind: Mismatch::Arithmetic {
            subtract: sub,
            lhs: cx.snippet(lhs.span),
            lhs_type: lt.clone(),
            rhs: cx.snippet(rhs.span),
            rhs_type: rt.clone(),
        },
    });
    Type::Unknown
}

fn not_addable(cx: &mut Checker, op: BinaryOp, e: &Expr, t: &Type) -> Type {
    cx.report(Problem::TypeMismatch {
        span: e.span,
        kind: Mismatch::NotAddable {
            op: op.as_str(),
            snippet: cx.snippet(e.span),
            found: t.clone(),
        },
    });
    Type::Unknown
}
