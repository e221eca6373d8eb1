//! Type inference and checking of expressions. An [`Env`] says which roots an
//! expression may use where it is written: `event.` only in `where` clauses
//! (E0212); `trigger.` inside a journey, except in its own trigger clauses and
//! in a journey that only starts after a silence (E0213); handles only after
//! a send that binds them on every path (E0211). Segments, channel rules and
//! the policy see only `profile`, segments and functions.

use std::rc::Rc;

use super::journey::{HandleView, check_bound};
use super::types::{Object, Type};
use super::{Checker, codes};
use crate::diagnostic::{Diagnostic, did_you_mean};
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

/// The functions and how many arguments each takes (`None`: one or more).
const FUNCTIONS: &[(&str, Option<usize>)] = &[
    ("now", Some(0)),
    ("lower", Some(1)),
    ("upper", Some(1)),
    ("len", Some(1)),
    ("coalesce", None),
    ("days_since", Some(1)),
    ("hours_since", Some(1)),
    ("reachable", Some(1)),
];

/// Profile fields read by the built-in channel rules: usable even when a
/// declared profile schema lacks them (they are then simply `null`).
fn builtin_profile_field(name: &str) -> Option<Type> {
    match name {
        "email" | "phone" | "push_token" | "timezone" => Some(Type::String),
        "unsubscribed" => Some(Type::Bool),
        "consent" => Some(Type::Unknown),
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
                let (a, b) = (cx.snippet(first.span), cx.snippet(item.span));
                cx.report(
                    Diagnostic::new(
                        codes::TYPE_MISMATCH,
                        item.span,
                        format!(
                            "a list holds one kind of value, but `{a}` is {} and `{b}` is {}",
                            element.describe(),
                            ty.describe()
                        ),
                    )
                    .with_related(first.span, element.describe()),
                );
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
        Some(f) => f.ty.clone(),
        None => match builtin_profile_field(&first.name) {
            Some(_) if first.name == "consent" => return consent_path(cx, rest),
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
        let help = did_you_mean(&channel.name, cx.scope.channels.names()).unwrap_or_else(|| {
            "consent is recorded per channel, e.g. `profile.consent.email`".into()
        });
        cx.report(
            Diagnostic::new(
                codes::UNKNOWN_FIELD,
                channel.span,
                format!("unknown channel `{}` in `profile.consent`", channel.name),
            )
            .with_help(help),
        );
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
            let help = if env.in_journey() {
                "`event` is the event being matched by a `where` clause; use `trigger.` for the event that started the journey"
            } else {
                "segments and channel rules see only `profile`, other segments and functions"
            };
            cx.report(
                Diagnostic::new(
                    codes::EVENT_OUT_OF_SCOPE,
                    p.root_span,
                    "`event` can only be used in a `where` clause",
                )
                .with_help(help),
            );
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
    let (message, help) = match env.trigger {
        TriggerEnv::Events(events) => return trigger_fields(cx, events, &p.fields),
        TriggerEnv::NotInJourney => (
            "`trigger` can only be used inside a journey",
            "segments and channel rules see only `profile`, other segments and functions",
        ),
        TriggerEnv::OwnClause => (
            "`trigger` cannot be used in a trigger's own condition",
            "use `event.` for the event being matched",
        ),
        TriggerEnv::NoEvent => (
            "`trigger` has no value in this journey",
            "its triggers are all `trigger no ... for`: it starts after a silence, not on an event",
        ),
    };
    cx.report(Diagnostic::new(codes::TRIGGER_OUT_OF_SCOPE, p.root_span, message).with_help(help));
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
        cx.report(
            Diagnostic::new(
                codes::INVALID_PATH,
                e.span,
                format!("`{}` can only be used inside a journey", cx.snippet(e.span)),
            )
            .with_help(
                "segments and channel rules see only `profile`, other segments and functions",
            ),
        );
        return Type::Unknown;
    }
    if let [field] = p.fields.as_slice()
        && field.name == "entered_at"
    {
        return Type::Timestamp;
    }
    cx.report(
        Diagnostic::new(
            codes::INVALID_PATH,
            e.span,
            format!("`{}` is not something a journey has", cx.snippet(e.span)),
        )
        .with_help("the only property of `journey` is `journey.entered_at`, the time of entry"),
    );
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
    if cx.scope.segments.contains(name) {
        if let Some(field) = p.fields.first() {
            cx.report(
                Diagnostic::new(
                    codes::INVALID_PATH,
                    field.span,
                    format!("segment `{name}` has no fields"),
                )
                .with_help(format!(
                    "`{name}` is true or false: use it as a condition on its own"
                )),
            );
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
    let (message, fallback) = if env.handles.is_some() {
        (
            format!("unknown segment or message `{name}`"),
            format!(
                "declare `segment {name} = ...`, or name a send with `as {name}` to ask about its message"
            ),
        )
    } else {
        (
            format!("unknown segment `{name}`"),
            format!("declare it with `segment {name} = ...`"),
        )
    };
    cx.report(
        Diagnostic::new(codes::UNKNOWN_NAME, p.root_span, message)
            .with_help(suggestion.unwrap_or(fallback)),
    );
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
            cx.report(
                Diagnostic::new(
                    codes::INVALID_PATH,
                    e.span,
                    format!("`{name}` is a sent message, not a condition"),
                )
                .with_help(format!(
                    "ask what happened to it, e.g. `{name}.opened` or `{name}.sent`"
                )),
            );
            return Type::Unknown;
        }
        [engagement, rest @ ..] => {
            let known =
                ast::ENGAGEMENTS.contains(&engagement.name.as_str()) || engagement.name == "sent";
            if !known {
                unknown_engagement(cx, engagement, true);
                return Type::Unknown;
            }
            if let Some(extra) = rest.first() {
                cx.report(
                    Diagnostic::new(
                        codes::INVALID_PATH,
                        extra.span,
                        format!("`{name}.{}` has no fields", engagement.name),
                    )
                    .with_help("it is true or false: use it as a condition on its own"),
                );
            }
        }
    }
    check_bound(cx, view, id, name, p.root_span);
    Type::Bool
}

/// E0210; `sent` is suggested only where a condition is expected.
pub(crate) fn unknown_engagement(cx: &mut Checker, engagement: &ast::Ident, with_sent: bool) {
    let candidates = ast::ENGAGEMENTS
        .iter()
        .copied()
        .chain(with_sent.then_some("sent"));
    let help = did_you_mean(&engagement.name, candidates.clone()).unwrap_or_else(|| {
        let list: Vec<String> = candidates.map(|c| format!("`{c}`")).collect();
        format!("a message can be {}", list.join(", "))
    });
    let message = if engagement.name == "sent" {
        "`sent` cannot be waited for".to_string()
    } else {
        format!("unknown engagement `{}`", engagement.name)
    };
    let help = if engagement.name == "sent" {
        "a send happens at once; wait for `delivered` or `opened` instead".to_string()
    } else {
        help
    };
    cx.report(Diagnostic::new(codes::UNKNOWN_ENGAGEMENT, engagement.span, message).with_help(help));
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
                Some(f) => f.ty.clone(),
                None => {
                    let o = o.clone();
                    unknown_field(cx, field, &o, &format!("`{prefix}`"));
                    return Type::Unknown;
                }
            },
            Type::Unknown | Type::Null => return Type::Unknown,
            other => {
                cx.report(
                    Diagnostic::new(
                        codes::UNKNOWN_FIELD,
                        field.span,
                        format!(
                            "`{prefix}` is {} and has no field `{}`",
                            other.describe(),
                            field.name
                        ),
                    )
                    .with_help(format!("use `{prefix}` itself")),
                );
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
    let help = did_you_mean(&field.name, object.names()).unwrap_or_else(|| {
        if object.fields.is_empty() {
            format!("{owner} declares no fields")
        } else {
            format!("{owner} declares {}", object.list_names())
        }
    });
    cx.report(
        Diagnostic::new(
            codes::UNKNOWN_FIELD,
            field.span,
            format!("unknown field `{}` in {owner}", field.name),
        )
        .with_help(help),
    );
}

// ---------------------------------------------------------------- calls

fn infer_call(cx: &mut Checker, env: &Env, func: &ast::Ident, args: &[Expr]) -> Type {
    let Some(&(_, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == func.name) else {
        for a in args {
            infer(cx, env, a);
        }
        let help = did_you_mean(&func.name, FUNCTIONS.iter().map(|(n, _)| *n)).unwrap_or_else(
            || {
                "the functions are `now`, `lower`, `upper`, `len`, `coalesce`, `days_since`, `hours_since` and `reachable`".to_string()
            },
        );
        cx.report(
            Diagnostic::new(
                codes::UNKNOWN_FUNCTION,
                func.span,
                format!("unknown function `{}`", func.name),
            )
            .with_help(help),
        );
        return Type::Unknown;
    };
    check_arity(cx, func, arity, args.len());
    if func.name == "reachable" {
        for a in args {
            reachable_arg(cx, a);
        }
        return Type::Bool;
    }
    let types: Vec<Type> = args.iter().map(|a| infer(cx, env, a)).collect();
    let arg = |i: usize| types.get(i).cloned().unwrap_or(Type::Unknown);
    match func.name.as_str() {
        "now" => Type::Timestamp,
        "lower" | "upper" => {
            expect_arg(cx, func, args, &types, &[Type::String], "text");
            Type::String
        }
        "len" => {
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
        "days_since" | "hours_since" => {
            expect_arg(cx, func, args, &types, &[Type::Timestamp], "a timestamp");
            Type::Number
        }
        _ => coalesce(cx, args, &types).unwrap_or_else(|| arg(0)),
    }
}

fn check_arity(cx: &mut Checker, func: &ast::Ident, arity: Option<usize>, given: usize) {
    let (ok, wanted) = match arity {
        Some(n) => (given == n, plural(n, "argument")),
        None => (given >= 1, "at least 1 argument".to_string()),
    };
    if !ok {
        cx.report(
            Diagnostic::new(
                codes::WRONG_ARITY,
                func.span,
                format!(
                    "`{}` takes {wanted}, but {} given",
                    func.name,
                    match given {
                        0 => "none was".to_string(),
                        1 => "1 was".to_string(),
                        n => format!("{n} were"),
                    }
                ),
            )
            .with_help(format!("write `{}`", usage(&func.name))),
        );
    }
}

fn plural(n: usize, word: &str) -> String {
    match n {
        0 => format!("no {word}s"),
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

fn usage(func: &str) -> &'static str {
    match func {
        "now" => "now()",
        "lower" => "lower(text)",
        "upper" => "upper(text)",
        "len" => "len(list or text)",
        "coalesce" => "coalesce(value, fallback, ...)",
        "days_since" => "days_since(timestamp)",
        "hours_since" => "hours_since(timestamp)",
        _ => "reachable(channel)",
    }
}

/// E0301 when the first argument has none of the `accepted` types.
fn expect_arg(
    cx: &mut Checker,
    func: &ast::Ident,
    args: &[Expr],
    types: &[Type],
    accepted: &[Type],
    wanted: &str,
) {
    let (Some(a), Some(t)) = (args.first(), types.first()) else {
        return;
    };
    if accepted.iter().any(|acc| t.compatible(acc)) {
        return;
    }
    let snippet = cx.snippet(a.span);
    cx.report(
        Diagnostic::new(
            codes::TYPE_MISMATCH,
            a.span,
            format!(
                "`{}` needs {wanted}, but `{snippet}` is {}",
                func.name,
                t.describe()
            ),
        )
        .with_label(format!("expected {wanted}")),
    );
}

/// The common type of `coalesce`'s arguments.
fn coalesce(cx: &mut Checker, args: &[Expr], types: &[Type]) -> Option<Type> {
    let mut common = Type::Unknown;
    for (i, (a, t)) in args.iter().zip(types).enumerate() {
        if !t.compatible(&common) {
            let first = cx.snippet(args[0].span);
            let this = cx.snippet(a.span);
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    a.span,
                    format!(
                        "`coalesce` needs values of one kind, but `{first}` is {} and `{this}` is {}",
                        common.describe(),
                        t.describe()
                    ),
                )
                .with_label(format!("argument {} differs", i + 1))
                .with_help("give every argument the same kind of value"),
            );
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
            let snippet = cx.snippet(a.span);
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    a.span,
                    format!("`reachable` needs a channel name, but got `{snippet}`"),
                )
                .with_help("write e.g. `reachable(sms)`"),
            );
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
            t => {
                let snippet = cx.snippet(operand.span);
                cx.report(
                    Diagnostic::new(
                        codes::TYPE_MISMATCH,
                        operand.span,
                        format!(
                            "`-` needs a number or a duration, but `{snippet}` is {}",
                            t.describe()
                        ),
                    )
                    .with_label("cannot be negated"),
                );
                Type::Unknown
            }
        },
    }
}

fn expect_bool(cx: &mut Checker, e: &Expr, ty: &Type, op: &str) {
    if matches!(ty, Type::Bool) || ty.is_open() {
        return;
    }
    let snippet = cx.snippet(e.span);
    cx.report(
        Diagnostic::new(
            codes::TYPE_MISMATCH,
            e.span,
            format!(
                "`{op}` needs true/false, but `{snippet}` is {}",
                ty.describe()
            ),
        )
        .with_label("not a condition")
        .with_help("compare it with something first, e.g. `x > 0` or `x == \"gold\"`"),
    );
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
                    let snippet = cx.snippet(e.span);
                    cx.report(
                        Diagnostic::new(
                            codes::TYPE_MISMATCH,
                            e.span,
                            format!(
                                "`{}` needs numbers, but `{snippet}` is {}",
                                op.as_str(),
                                t.describe()
                            ),
                        )
                        .with_label("not a number"),
                    );
                    return Type::Unknown;
                }
            }
            Type::Number
        }
    }
}

/// "`profile.lifetime_value` is a number, but `"high"` is text".
fn mismatch(cx: &mut Checker, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type, label: &str) {
    let (a, b) = (cx.snippet(lhs.span), cx.snippet(rhs.span));
    let mut d = Diagnostic::new(
        codes::TYPE_MISMATCH,
        lhs.span.to(rhs.span),
        format!("`{a}` is {}, but `{b}` is {}", lt.describe(), rt.describe()),
    )
    .with_label(label);
    if let Some(help) = mismatch_help(lt, rt) {
        d = d.with_help(help);
    }
    cx.report(d);
}

fn mismatch_help(lt: &Type, rt: &Type) -> Option<String> {
    match (lt, rt) {
        (Type::Number, Type::String) | (Type::String, Type::Number) => {
            Some("write numbers without quotes, and text in quotes".to_string())
        }
        (Type::Duration | Type::Timestamp, Type::Number)
        | (Type::Number, Type::Duration | Type::Timestamp) => {
            Some("give the number a unit, e.g. `2d` or `12h`".to_string())
        }
        (Type::Timestamp, Type::Duration) | (Type::Duration, Type::Timestamp) => {
            Some("to compare with a time in the past, write e.g. `now() - 7d`".to_string())
        }
        (Type::Bool, Type::String) | (Type::String, Type::Bool) => {
            Some("write `true` and `false` without quotes".to_string())
        }
        _ => None,
    }
}

fn ordering(cx: &mut Checker, op: BinaryOp, lhs: &Expr, lt: &Type, rhs: &Expr, rt: &Type) {
    if !lt.compatible(rt) {
        mismatch(cx, lhs, lt, rhs, rt, "cannot be compared");
        return;
    }
    for (e, t) in [(lhs, lt), (rhs, rt)] {
        if matches!(t, Type::Bool | Type::List(_) | Type::Object(_)) {
            let snippet = cx.snippet(e.span);
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    e.span,
                    format!(
                        "`{}` needs numbers, text, timestamps or durations, but `{snippet}` is {}",
                        op.as_str(),
                        t.describe()
                    ),
                )
                .with_label("has no order")
                .with_help("use `==` or `!=` to compare it"),
            );
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
            let snippet = cx.snippet(rhs.span);
            let mut d = Diagnostic::new(
                codes::TYPE_MISMATCH,
                rhs.span,
                format!(
                    "`{}` needs a list on its right, but `{snippet}` is {}",
                    op.as_str(),
                    t.describe()
                ),
            )
            .with_label("not a list");
            d = if matches!(t, Type::String) {
                d.with_help(format!(
                    "to look for text inside text, write `{snippet} contains {}`",
                    cx.snippet(lhs.span)
                ))
            } else {
                d.with_help("write a list such as `[\"FR\", \"DE\"]`")
            };
            cx.report(d);
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
            let snippet = cx.snippet(lhs.span);
            cx.report(
                Diagnostic::new(
                    codes::TYPE_MISMATCH,
                    lhs.span,
                    format!(
                        "`contains` needs a list or text on its left, but `{snippet}` is {}",
                        t.describe()
                    ),
                )
                .with_label("not a list or text"),
            );
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
    let (a, b) = (cx.snippet(lhs.span), cx.snippet(rhs.span));
    let verb = if sub { "subtract" } else { "add" };
    let mut d = Diagnostic::new(
        codes::TYPE_MISMATCH,
        whole.span,
        format!(
            "cannot {verb} `{b}` ({}) {} `{a}` ({})",
            rt.describe(),
            if sub { "from" } else { "to" },
            lt.describe()
        ),
    );
    if let Some(help) = mismatch_help(lt, rt) {
        d = d.with_help(help);
    } else if sub && matches!((lt, rt), (Type::Duration, Type::Timestamp)) {
        d = d.with_help("write the timestamp first: `timestamp - duration`");
    }
    cx.report(d);
    Type::Unknown
}

fn not_addable(cx: &mut Checker, op: BinaryOp, e: &Expr, t: &Type) -> Type {
    let snippet = cx.snippet(e.span);
    cx.report(
        Diagnostic::new(
            codes::TYPE_MISMATCH,
            e.span,
            format!(
                "`{}` works on numbers, timestamps and durations, but `{snippet}` is {}",
                op.as_str(),
                t.describe()
            ),
        )
        .with_label(format!("cannot be used with `{}`", op.as_str())),
    );
    Type::Unknown
}
