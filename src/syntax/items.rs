//! Top-level items → AST: schemas, channels, templates, segments, the policy
//! and journeys (whose headers and steps live in `headers` and `steps`).

use pest::iterators::Pair;

use super::ast::{
    Allow, AttributionDecl, ChannelDecl, Conversion, EventRef, EventSchema, FieldDecl, Item,
    JourneyDecl, PolicyDecl, ProfileSchema, SegmentDecl, StrLit, TemplateDecl, TypeExpr, TypeKind,
};
use super::errors;
use super::grammar::Rule;
use super::{Ctx, children, expr, headers, keyword, literals, next, steps};
use crate::source::Span;

/// One item; `None` when it lacks a mandatory part (reported).
pub fn visit_item(ctx: &mut Ctx, pair: Pair<Rule>, doc: Option<String>) -> Option<Item> {
    debug_assert_eq!(pair.as_rule(), Rule::item);
    let inner = next(&mut children(pair));
    Some(match inner.as_rule() {
        Rule::event_schema => Item::Event(visit_event_schema(ctx, inner)),
        Rule::profile_schema => Item::Profile(visit_profile_schema(ctx, inner)),
        Rule::channel_decl => Item::Channel(visit_channel_decl(ctx, inner)),
        Rule::template_decl => Item::Template(visit_template_decl(ctx, inner)?),
        Rule::segment_decl => Item::Segment(visit_segment_decl(ctx, inner)),
        Rule::policy_decl => Item::Policy(visit_policy_decl(ctx, inner)),
        Rule::attribution_decl => Item::Attribution(visit_attribution_decl(ctx, inner)),
        Rule::allow_clause => Item::Allow(visit_allow(ctx, inner).0),
        _ => Item::Journey(visit_journey_decl(ctx, inner, doc)),
    })
}

/// `allow W0005, W0003`: the codes and the keyword's span.
pub fn visit_allow(ctx: &mut Ctx, pair: Pair<Rule>) -> (Allow, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::allow_clause);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let codes = it.map(|p| ctx.ident(&p)).collect();
    (Allow { codes, span }, kw)
}

/// `cart_abandoned` or `"Order Completed"`.
pub fn visit_event_ref(ctx: &mut Ctx, pair: Pair<Rule>) -> EventRef {
    debug_assert_eq!(pair.as_rule(), Rule::event_ref);
    let span = ctx.span(&pair);
    let inner = next(&mut children(pair));
    if inner.as_rule() == Rule::string {
        let StrLit { value, .. } = literals::visit_string(ctx, inner);
        EventRef {
            name: value,
            quoted: true,
            span,
        }
    } else {
        EventRef {
            name: inner.as_str().to_owned(),
            quoted: false,
            span,
        }
    }
}

fn visit_event_schema(ctx: &mut Ctx, pair: Pair<Rule>) -> EventSchema {
    debug_assert_eq!(pair.as_rule(), Rule::event_schema);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let name = visit_event_ref(ctx, next(&mut it));
    let fields = it.map(|p| visit_field_decl(ctx, p)).collect();
    EventSchema { name, fields, span }
}

fn visit_profile_schema(ctx: &mut Ctx, pair: Pair<Rule>) -> ProfileSchema {
    debug_assert_eq!(pair.as_rule(), Rule::profile_schema);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let keyword = keyword(ctx, &mut it);
    let fields = it.map(|p| visit_field_decl(ctx, p)).collect();
    ProfileSchema {
        fields,
        keyword,
        span,
    }
}

fn visit_field_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> FieldDecl {
    debug_assert_eq!(pair.as_rule(), Rule::field_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let name = ctx.ident(&next(&mut it));
    let ty = visit_type_expr(ctx, next(&mut it));
    let optional = it.next().is_some();
    FieldDecl {
        name,
        ty,
        optional,
        span,
    }
}

fn visit_type_expr(ctx: &mut Ctx, pair: Pair<Rule>) -> TypeExpr {
    debug_assert_eq!(pair.as_rule(), Rule::type_expr);
    let span = ctx.span(&pair);
    let inner = next(&mut children(pair));
    let kind = match inner.as_rule() {
        Rule::list_type => visit_list_type(ctx, inner),
        Rule::object_type => visit_object_type(ctx, inner),
        _ => match inner.as_str() {
            "string" => TypeKind::String,
            "number" => TypeKind::Number,
            "bool" => TypeKind::Bool,
            "timestamp" => TypeKind::Timestamp,
            // The grammar admits only these five names.
            _ => TypeKind::Duration,
        },
    };
    TypeExpr { kind, span }
}

fn visit_list_type(ctx: &mut Ctx, pair: Pair<Rule>) -> TypeKind {
    debug_assert_eq!(pair.as_rule(), Rule::list_type);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    TypeKind::List(Box::new(visit_type_expr(ctx, next(&mut it))))
}

fn visit_object_type(ctx: &mut Ctx, pair: Pair<Rule>) -> TypeKind {
    debug_assert_eq!(pair.as_rule(), Rule::object_type);
    TypeKind::Object(children(pair).map(|p| visit_field_decl(ctx, p)).collect())
}

/// Reports a part of a declaration given twice (`subject` twice).
fn duplicate_part(ctx: &mut Ctx, pair: &Pair<Rule>, part: &str, owner: &str) {
    let span = ctx.span(pair);
    ctx.diags.push(errors::given_twice(span, part, owner));
}

fn visit_channel_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> ChannelDecl {
    debug_assert_eq!(pair.as_rule(), Rule::channel_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let name = ctx.name(&next(&mut it), "channel");
    let owner = format!("channel `{}`", name.name);
    let (mut address, mut consent) = (None, None);
    for part in it {
        let is_address = part.as_rule() == Rule::channel_address;
        let (slot, word) = if is_address {
            (&mut address, "address")
        } else {
            (&mut consent, "consent")
        };
        if slot.is_some() {
            duplicate_part(ctx, &part, word, &owner);
            continue;
        }
        let mut parts = children(part);
        keyword(ctx, &mut parts);
        *slot = Some(expr::visit_expr(ctx, next(&mut parts)));
    }
    ChannelDecl {
        name,
        address,
        consent,
        span,
    }
}

fn visit_template_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<TemplateDecl> {
    debug_assert_eq!(pair.as_rule(), Rule::template_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let name = ctx.name(&next(&mut it), "template");
    let owner = format!("template `{}`", name.name);
    let (mut channel, mut subject, mut body, mut html) = (None, None, None, None);
    for part in it {
        let rule = part.as_rule();
        let word = match rule {
            Rule::template_channel if channel.is_some() => Some("channel"),
            Rule::template_subject if subject.is_some() => Some("subject"),
            Rule::template_body if body.is_some() => Some("body"),
            Rule::template_html if html.is_some() => Some("html"),
            _ => None,
        };
        if let Some(word) = word {
            duplicate_part(ctx, &part, word, &owner);
            continue;
        }
        let mut parts = children(part);
        keyword(ctx, &mut parts);
        let value = next(&mut parts);
        match rule {
            Rule::template_channel => channel = Some(ctx.name(&value, "channel")),
            Rule::template_subject => subject = Some(literals::visit_string(ctx, value)),
            Rule::template_html => html = Some(literals::visit_string(ctx, value)),
            _ => body = Some(literals::visit_string(ctx, value)),
        }
    }
    let Some(channel) = channel else {
        ctx.diags
            .push(errors::template_without_channel(name.span, &name.name));
        return None;
    };
    Some(TemplateDecl {
        name,
        channel,
        subject,
        body,
        html,
        span,
    })
}

fn visit_segment_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> SegmentDecl {
    debug_assert_eq!(pair.as_rule(), Rule::segment_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let name = ctx.name(&next(&mut it), "segment");
    let expr = expr::visit_expr(ctx, next(&mut it));
    SegmentDecl { name, expr, span }
}

fn visit_policy_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> PolicyDecl {
    debug_assert_eq!(pair.as_rule(), Rule::policy_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let keyword = keyword(ctx, &mut it);
    let mut caps = Vec::new();
    let mut quiet_hours = Vec::new();
    for clause in it {
        if clause.as_rule() == Rule::cap_clause {
            caps.push(headers::visit_cap_clause(ctx, clause).0);
        } else {
            quiet_hours.push(headers::visit_quiet_hours(ctx, clause).0);
        }
    }
    PolicyDecl {
        caps,
        quiet_hours,
        keyword,
        span,
    }
}

fn visit_attribution_decl(ctx: &mut Ctx, pair: Pair<Rule>) -> AttributionDecl {
    debug_assert_eq!(pair.as_rule(), Rule::attribution_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let keyword = keyword(ctx, &mut it);
    let mut decl = AttributionDecl {
        conversions: Vec::new(),
        windows: Vec::new(),
        half_lives: Vec::new(),
        keyword,
        span,
    };
    for part in it {
        let rule = part.as_rule();
        let part_span = ctx.span(&part);
        let mut parts = children(part).peekable();
        match rule {
            Rule::attribution_conversion => {
                super::keyword(ctx, &mut parts);
                let event = visit_event_ref(ctx, next(&mut parts));
                let condition = parts
                    .next_if(|p| p.as_rule() == Rule::where_clause)
                    .map(|p| headers::visit_where_clause(ctx, p));
                let value = parts.next().map(|p| {
                    let mut value = children(p);
                    super::keyword(ctx, &mut value);
                    expr::visit_expr(ctx, next(&mut value))
                });
                decl.conversions.push(Conversion {
                    event,
                    condition,
                    value,
                    span: part_span,
                });
            }
            Rule::attribution_window => {
                super::keyword(ctx, &mut parts);
                let d = literals::visit_duration_slot(ctx, next(&mut parts));
                decl.windows.push(d);
            }
            _ => {
                super::keyword(ctx, &mut parts);
                super::keyword(ctx, &mut parts);
                let d = literals::visit_duration_slot(ctx, next(&mut parts));
                decl.half_lives.push(d);
            }
        }
    }
    decl
}

fn visit_journey_decl(ctx: &mut Ctx, pair: Pair<Rule>, doc: Option<String>) -> JourneyDecl {
    debug_assert_eq!(pair.as_rule(), Rule::journey_decl);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let name = ctx.name(&next(&mut it), "journey");
    let mut headers = Vec::new();
    let mut steps = Vec::new();
    for statement in it {
        if statement.as_rule() == Rule::header {
            headers.push(headers::visit_header(ctx, statement));
        } else {
            steps.push(steps::visit_step(ctx, statement));
        }
    }
    let first_step = steps.first().map(|s: &super::ast::Step| s.span);
    JourneyDecl {
        doc,
        name,
        headers,
        steps,
        first_step,
        span,
    }
}
