//! Journey steps and blocks → AST: waits, sends, branches, splits, repeats,
//! profile updates, emits, audience sync and `exit`.

use pest::iterators::Pair;

use super::ast::{
    BestHour, Block, Expr, Ident, OnCapped, Send, SendAlt, SplitArm, Step, StepKind, TemplateRef,
    WaitAlt, WithEntry,
};
use super::errors;
use super::grammar::Rule;
use super::items::visit_event_ref;
use super::{Ctx, children, expr, keyword, literals, next};

pub fn visit_block(ctx: &mut Ctx, pair: Pair<Rule>) -> Block {
    debug_assert_eq!(pair.as_rule(), Rule::block);
    let span = ctx.span(&pair);
    let steps = children(pair).map(|p| visit_step(ctx, p)).collect();
    Block { steps, span }
}

/// `else { ... }`
fn visit_else_block(ctx: &mut Ctx, pair: Pair<Rule>) -> Block {
    debug_assert_eq!(pair.as_rule(), Rule::else_block);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    visit_block(ctx, next(&mut it))
}

pub fn visit_step(ctx: &mut Ctx, pair: Pair<Rule>) -> Step {
    debug_assert_eq!(pair.as_rule(), Rule::step);
    let span = ctx.span(&pair);
    let inner = next(&mut children(pair));
    let kind = match inner.as_rule() {
        Rule::wait_step => visit_wait_step(ctx, inner),
        Rule::send_step => StepKind::Send(visit_send_step(ctx, inner)),
        Rule::if_step => visit_if_step(ctx, inner),
        Rule::split_step => visit_split_step(ctx, inner),
        Rule::repeat_step => visit_repeat_step(ctx, inner),
        Rule::set_step => visit_set_step(ctx, inner),
        Rule::emit_step => visit_emit_step(ctx, inner),
        Rule::audience_add => visit_audience_add(ctx, inner),
        Rule::audience_remove => visit_audience_remove(ctx, inner),
        _ => StepKind::Exit,
    };
    Step { kind, span }
}

fn visit_wait_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::wait_step);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let inner = next(&mut it);
    match inner.as_rule() {
        Rule::wait_for_engagement => visit_wait_for_engagement(ctx, inner),
        Rule::wait_for_event => visit_wait_for_event(ctx, inner),
        Rule::wait_until_time => visit_wait_until_time(ctx, inner),
        Rule::wait_until_expr => visit_wait_until_expr(ctx, inner),
        _ => StepKind::Wait(literals::visit_duration_slot(ctx, inner)),
    }
}

/// The `[{ ... }] [else { ... }]` tail of a `wait for`.
fn wait_blocks<'i>(
    ctx: &mut Ctx,
    it: impl Iterator<Item = Pair<'i, Rule>>,
) -> (Option<Block>, Option<Block>) {
    let (mut then, mut otherwise) = (None, None);
    for pair in it {
        if pair.as_rule() == Rule::block {
            then = Some(visit_block(ctx, pair));
        } else {
            otherwise = Some(visit_else_block(ctx, pair));
        }
    }
    (then, otherwise)
}

fn visit_wait_for_engagement(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::wait_for_engagement);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let (handle, engagement) = visit_handle_ref(ctx, next(&mut it));
    keyword(ctx, &mut it);
    let within = literals::visit_duration_slot(ctx, next(&mut it));
    let (then, otherwise) = wait_blocks(ctx, it);
    StepKind::WaitForEngagement {
        handle,
        engagement,
        within,
        then,
        otherwise,
    }
}

/// `reminder.opened`
fn visit_handle_ref(ctx: &mut Ctx, pair: Pair<Rule>) -> (Ident, Ident) {
    debug_assert_eq!(pair.as_rule(), Rule::handle_ref);
    let mut it = children(pair);
    let handle = ctx.name(&next(&mut it), "handle");
    let engagement = ctx.ident(&next(&mut it));
    (handle, engagement)
}

fn visit_wait_for_event(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::wait_for_event);
    let mut it = children(pair).peekable();
    keyword(ctx, &mut it);
    let mut alternatives = Vec::new();
    while let Some(alt) = it.next_if(|p| matches!(p.as_rule(), Rule::wait_alt | Rule::kw_or)) {
        if alt.as_rule() == Rule::wait_alt {
            alternatives.push(visit_wait_alt(ctx, alt));
        }
    }
    keyword(ctx, &mut it);
    let within = literals::visit_duration_slot(ctx, next(&mut it));
    let (then, otherwise) = wait_blocks(ctx, it);
    StepKind::WaitForEvent {
        alternatives,
        within,
        then,
        otherwise,
    }
}

/// One event of a `wait for`: `A [where <condition>]`.
fn visit_wait_alt(ctx: &mut Ctx, pair: Pair<Rule>) -> WaitAlt {
    debug_assert_eq!(pair.as_rule(), Rule::wait_alt);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let event = visit_event_ref(ctx, next(&mut it));
    let condition = it.next().map(|w| {
        let mut parts = children(w);
        keyword(ctx, &mut parts);
        expr::visit_expr(ctx, next(&mut parts))
    });
    WaitAlt {
        event,
        condition,
        span,
    }
}

fn visit_wait_until_time(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::wait_until_time);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let time = literals::visit_time_of_day(ctx, next(&mut it));
    let days = it
        .filter(|p| p.as_rule() == Rule::weekday)
        .map(|p| literals::visit_weekday(ctx, p))
        .collect();
    StepKind::WaitUntilTime { time, days }
}

fn visit_wait_until_expr(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::wait_until_expr);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    StepKind::WaitUntilExpr(expr::visit_expr(ctx, next(&mut it)))
}

/// Reports a send option given twice (`as` twice).
fn duplicate_option(ctx: &mut Ctx, span: crate::source::Span, option: &str) {
    ctx.diags
        .push(errors::given_twice(span, option, "one send"));
}

fn visit_send_step(ctx: &mut Ctx, pair: Pair<Rule>) -> Send {
    debug_assert_eq!(pair.as_rule(), Rule::send_step);
    let mut send = Send {
        alternatives: Vec::new(),
        handle: None,
        transactional: None,
        on_capped: None,
        best_hour: None,
    };
    for part in children(pair) {
        let span = ctx.span(&part);
        match part.as_rule() {
            Rule::send_alt => send.alternatives.push(visit_send_alt(ctx, part)),
            Rule::send_as => {
                let handle = visit_send_as(ctx, part);
                if send.handle.is_some() {
                    duplicate_option(ctx, span, "as");
                } else {
                    send.handle = Some(handle);
                }
            }
            Rule::send_transactional => {
                if send.transactional.is_some() {
                    duplicate_option(ctx, span, "transactional");
                } else {
                    send.transactional = Some(span);
                }
            }
            Rule::send_on_capped => {
                let mode = visit_send_on_capped(part);
                if send.on_capped.is_some() {
                    duplicate_option(ctx, span, "on capped");
                } else {
                    send.on_capped = Some((mode, span));
                }
            }
            Rule::send_best_hour => {
                let mut it = children(part);
                let within = it
                    .find(|p| p.as_rule() == Rule::kw_within)
                    .and_then(|_| it.next())
                    .map(|d| literals::visit_duration_slot(ctx, d));
                if send.best_hour.is_some() {
                    duplicate_option(ctx, span, "at best hour");
                } else {
                    send.best_hour = Some(BestHour { within, span });
                }
            }
            // `send` and `or`
            _ => {}
        }
    }
    send
}

fn visit_send_alt(ctx: &mut Ctx, pair: Pair<Rule>) -> SendAlt {
    debug_assert_eq!(pair.as_rule(), Rule::send_alt);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let channel = ctx.name(&next(&mut it), "channel");
    let template = next(&mut it);
    let template = if template.as_rule() == Rule::string {
        TemplateRef::External(literals::visit_string(ctx, template))
    } else {
        TemplateRef::Named(ctx.name(&template, "template"))
    };
    let with = it
        .next()
        .map_or_else(Vec::new, |w| visit_with_block(ctx, w));
    SendAlt {
        channel,
        template,
        with,
        span,
    }
}

fn visit_send_as(ctx: &mut Ctx, pair: Pair<Rule>) -> Ident {
    debug_assert_eq!(pair.as_rule(), Rule::send_as);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    ctx.name(&next(&mut it), "handle")
}

fn visit_send_on_capped(pair: Pair<Rule>) -> OnCapped {
    debug_assert_eq!(pair.as_rule(), Rule::send_on_capped);
    match children(pair).last().map(|p| p.as_rule()) {
        Some(Rule::kw_wait) => OnCapped::Wait,
        _ => OnCapped::Skip,
    }
}

/// `with { key: <expr>, ... }`
pub fn visit_with_block(ctx: &mut Ctx, pair: Pair<Rule>) -> Vec<WithEntry> {
    debug_assert_eq!(pair.as_rule(), Rule::with_block);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    it.map(|entry| visit_with_entry(ctx, entry)).collect()
}

fn visit_with_entry(ctx: &mut Ctx, pair: Pair<Rule>) -> WithEntry {
    debug_assert_eq!(pair.as_rule(), Rule::with_entry);
    let mut it = children(pair);
    let key = ctx.ident(&next(&mut it));
    let value = expr::visit_expr(ctx, next(&mut it));
    WithEntry { key, value }
}

fn visit_if_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::if_step);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let condition = expr::visit_expr(ctx, next(&mut it));
    let block = visit_block(ctx, next(&mut it));
    let mut branches = vec![(condition, block)];
    let mut otherwise = None;
    for pair in it {
        if pair.as_rule() == Rule::else_if {
            branches.push(visit_else_if(ctx, pair));
        } else {
            otherwise = Some(visit_else_block(ctx, pair));
        }
    }
    StepKind::If {
        branches,
        otherwise,
    }
}

fn visit_else_if(ctx: &mut Ctx, pair: Pair<Rule>) -> (Expr, Block) {
    debug_assert_eq!(pair.as_rule(), Rule::else_if);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    keyword(ctx, &mut it);
    let condition = expr::visit_expr(ctx, next(&mut it));
    (condition, visit_block(ctx, next(&mut it)))
}

fn visit_split_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::split_step);
    let mut it = children(pair).peekable();
    keyword(ctx, &mut it);
    let name = it
        .next_if(|p| p.as_rule() == Rule::name)
        .map(|p| ctx.name(&p, "split"));
    let arms = it.map(|arm| visit_split_arm(ctx, arm)).collect();
    StepKind::Split { name, arms }
}

fn visit_split_arm(ctx: &mut Ctx, pair: Pair<Rule>) -> SplitArm {
    debug_assert_eq!(pair.as_rule(), Rule::split_arm);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let percent = literals::visit_percent(ctx, next(&mut it));
    let label = ctx.name(&next(&mut it), "split label");
    let body = visit_block(ctx, next(&mut it));
    SplitArm {
        percent,
        label,
        body,
        span,
    }
}

fn visit_repeat_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::repeat_step);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let count = literals::visit_count(ctx, next(&mut it));
    keyword(ctx, &mut it);
    let body = visit_block(ctx, next(&mut it));
    StepKind::Repeat { count, body }
}

fn visit_set_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::set_step);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let path = visit_set_path(ctx, next(&mut it));
    let value = expr::visit_expr(ctx, next(&mut it));
    StepKind::Set { path, value }
}

/// `profile.a.b` → `[a, b]`
fn visit_set_path(ctx: &mut Ctx, pair: Pair<Rule>) -> Vec<Ident> {
    debug_assert_eq!(pair.as_rule(), Rule::set_path);
    children(pair)
        .filter(|p| p.as_rule() == Rule::ident)
        .map(|p| ctx.ident(&p))
        .collect()
}

fn visit_emit_step(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::emit_step);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let event = visit_event_ref(ctx, next(&mut it));
    let with = it
        .next()
        .map_or_else(Vec::new, |w| visit_with_block(ctx, w));
    StepKind::Emit { event, with }
}

fn visit_audience_add(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::audience_add);
    let mut it = children(pair).skip(3);
    let audience = ctx.name(&next(&mut it), "audience");
    let until_exit = it.next().is_some();
    StepKind::AudienceAdd {
        audience,
        until_exit,
    }
}

fn visit_audience_remove(ctx: &mut Ctx, pair: Pair<Rule>) -> StepKind {
    debug_assert_eq!(pair.as_rule(), Rule::audience_remove);
    let mut it = children(pair).skip(3);
    let audience = ctx.name(&next(&mut it), "audience");
    StepKind::AudienceRemove { audience }
}
