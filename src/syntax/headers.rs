//! Journey header clauses → AST (`trigger`, `goal`, `cap`, `quiet hours`, ...);
//! `cap` and `quiet hours` are shared with the policy block.

use pest::iterators::Pair;

use super::ast::{
    Cap, CapTarget, DateTrigger, EventPattern, Expr, ExprKind, Header, HeaderKind, QuietHours,
    Reentry, TriggerAt,
};
use super::grammar::Rule;
use super::items::visit_event_ref;
use super::{Ctx, children, expr, keyword, literals, next};
use crate::source::Span;

pub fn visit_header(ctx: &mut Ctx, pair: Pair<Rule>) -> Header {
    debug_assert_eq!(pair.as_rule(), Rule::header);
    let span = ctx.span(&pair);
    let inner = next(&mut children(pair));
    let (kind, keyword) = match inner.as_rule() {
        Rule::name_clause => visit_name_clause(ctx, inner),
        Rule::trigger_clause => visit_trigger_clause(ctx, inner),
        Rule::trigger_absence => visit_trigger_absence(ctx, inner),
        Rule::trigger_every => visit_trigger_every(ctx, inner),
        Rule::trigger_date | Rule::trigger_anniversary => visit_trigger_date(ctx, inner),
        Rule::trigger_segment => visit_trigger_segment(ctx, inner),
        Rule::audience_clause => visit_audience_clause(ctx, inner),
        Rule::reentry_clause => visit_reentry_clause(ctx, inner),
        Rule::per_clause => visit_per_clause(ctx, inner),
        Rule::exit_on => visit_exit_on(ctx, inner),
        Rule::exit_if => visit_exit_if(ctx, inner),
        Rule::goal_clause => visit_goal_clause(ctx, inner),
        Rule::holdout_clause => visit_holdout_clause(ctx, inner),
        Rule::allow_clause => {
            let (allow, keyword) = super::items::visit_allow(ctx, inner);
            (HeaderKind::Allow(allow), keyword)
        }
        Rule::cap_clause => {
            let (cap, keyword) = visit_cap_clause(ctx, inner);
            (HeaderKind::Cap(cap), keyword)
        }
        _ => {
            let (quiet, keyword) = visit_quiet_hours(ctx, inner);
            (HeaderKind::QuietHours(quiet), keyword)
        }
    };
    Header {
        kind,
        keyword,
        span,
    }
}

fn visit_name_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::name_clause);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let name = literals::visit_string(ctx, next(&mut it));
    (HeaderKind::Name(name), kw)
}

/// `where <expr>`
pub fn visit_where_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    debug_assert_eq!(pair.as_rule(), Rule::where_clause);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    expr::visit_expr(ctx, next(&mut it))
}

/// The optional `where` clause left in `it`.
fn optional_where<'i>(
    ctx: &mut Ctx,
    it: &mut std::iter::Peekable<impl Iterator<Item = Pair<'i, Rule>>>,
) -> Option<Expr> {
    let pair = it.next_if(|p| p.as_rule() == Rule::where_clause)?;
    Some(visit_where_clause(ctx, pair))
}

fn visit_trigger_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::trigger_clause);
    let mut it = children(pair).peekable();
    let kw = keyword(ctx, &mut it);
    let event = visit_event_ref(ctx, next(&mut it));
    let condition = optional_where(ctx, &mut it);
    (HeaderKind::Trigger { event, condition }, kw)
}

fn visit_trigger_absence(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::trigger_absence);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it).to(keyword(ctx, &mut it));
    let pattern = next(&mut it);
    let event = if pattern.as_rule() == Rule::kw_any {
        EventPattern::Any(ctx.span(&pattern))
    } else {
        EventPattern::Named(visit_event_ref(ctx, pattern))
    };
    keyword(ctx, &mut it);
    let silence = literals::visit_duration_slot(ctx, next(&mut it));
    (HeaderKind::TriggerAbsence { event, silence }, kw)
}

/// `trigger every day|<weekday>, ... at HH:MM [in <expr>]`
fn visit_trigger_every(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::trigger_every);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it).to(keyword(ctx, &mut it));
    let mut days = Vec::new();
    let mut at = None;
    for part in it {
        match part.as_rule() {
            Rule::weekday => days.push(literals::visit_weekday(ctx, part)),
            Rule::trigger_at => at = Some(visit_trigger_at(ctx, part)),
            _ => {}
        }
    }
    // The grammar requires `at`.
    let at = at.unwrap_or(TriggerAt {
        time: ast_midnight(kw),
        zone: None,
    });
    (HeaderKind::TriggerEvery { days, at }, kw)
}

fn ast_midnight(span: Span) -> super::ast::TimeOfDay {
    super::ast::TimeOfDay { minutes: 0, span }
}

/// `trigger on|<d> before|<d> after|anniversary of <path> [at ...]`
fn visit_trigger_date(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    let anniversary = pair.as_rule() == Rule::trigger_anniversary;
    let mut it = children(pair).peekable();
    let mut kw = keyword(ctx, &mut it);
    let mut kind = DateTrigger::On;
    let mut path = None;
    let mut at = None;
    let mut duration = None;
    for part in it {
        match part.as_rule() {
            Rule::kw_on | Rule::kw_anniversary | Rule::kw_of | Rule::kw_before | Rule::kw_after => {
                let span = ctx.span(&part);
                kw = kw.to(span);
                kind = match (part.as_rule(), duration) {
                    (Rule::kw_before, Some(d)) => DateTrigger::Before(d),
                    (Rule::kw_after, Some(d)) => DateTrigger::After(d),
                    _ if anniversary => DateTrigger::Anniversary,
                    _ => DateTrigger::On,
                };
            }
            Rule::path => {
                let span = ctx.span(&part);
                path = Some(Expr {
                    kind: ExprKind::Path(expr::visit_path(ctx, part)),
                    span,
                });
            }
            Rule::trigger_at => at = Some(visit_trigger_at(ctx, part)),
            _ => duration = Some(literals::visit_duration_slot(ctx, part)),
        }
    }
    let path = path.unwrap_or(Expr {
        kind: ExprKind::Null,
        span: kw,
    });
    (HeaderKind::TriggerDate { kind, path, at }, kw)
}

/// `trigger enters|leaves <segment>`
fn visit_trigger_segment(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::trigger_segment);
    let mut it = children(pair);
    let first = keyword(ctx, &mut it);
    let word = next(&mut it);
    let enters = word.as_rule() == Rule::kw_enters;
    let kw = first.to(ctx.span(&word));
    let part = next(&mut it);
    let span = ctx.span(&part);
    let segment = Expr {
        kind: ExprKind::Path(expr::visit_path(ctx, part)),
        span,
    };
    (HeaderKind::TriggerSegment { enters, segment }, kw)
}

/// `at HH:MM [in <expr>]`
fn visit_trigger_at(ctx: &mut Ctx, pair: Pair<Rule>) -> TriggerAt {
    debug_assert_eq!(pair.as_rule(), Rule::trigger_at);
    let mut it = children(pair);
    keyword(ctx, &mut it);
    let time = literals::visit_time_of_day(ctx, next(&mut it));
    let zone = it.next().map(|_in_keyword| {
        let zone = next(&mut it);
        expr::visit_expr(ctx, zone)
    });
    TriggerAt { time, zone }
}

fn visit_audience_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::audience_clause);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let condition = expr::visit_expr(ctx, next(&mut it));
    (HeaderKind::Audience(condition), kw)
}

/// `per trigger.<path>`
fn visit_per_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::per_clause);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let part = next(&mut it);
    let span = ctx.span(&part);
    let path = Expr {
        kind: ExprKind::Path(expr::visit_path(ctx, part)),
        span,
    };
    (HeaderKind::Per(path), kw)
}

fn visit_reentry_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::reentry_clause);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let mode = next(&mut it);
    let reentry = match mode.as_rule() {
        Rule::kw_never => Reentry::Never,
        Rule::kw_always => Reentry::Always,
        _ => Reentry::After(literals::visit_duration_slot(ctx, next(&mut it))),
    };
    (HeaderKind::Reentry(reentry), kw)
}

fn visit_exit_on(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::exit_on);
    let mut it = children(pair).peekable();
    let kw = keyword(ctx, &mut it).to(keyword(ctx, &mut it));
    let event = visit_event_ref(ctx, next(&mut it));
    let condition = optional_where(ctx, &mut it);
    (HeaderKind::ExitOn { event, condition }, kw)
}

fn visit_exit_if(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::exit_if);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it).to(keyword(ctx, &mut it));
    let condition = expr::visit_expr(ctx, next(&mut it));
    (HeaderKind::ExitIf(condition), kw)
}

fn visit_goal_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::goal_clause);
    let mut it = children(pair).peekable();
    let kw = keyword(ctx, &mut it);
    let event = visit_event_ref(ctx, next(&mut it));
    let condition = optional_where(ctx, &mut it);
    let within = it.next().map(|_within_keyword| {
        let duration = next(&mut it);
        literals::visit_duration_slot(ctx, duration)
    });
    let kind = HeaderKind::Goal {
        event,
        condition,
        within,
    };
    (kind, kw)
}

fn visit_holdout_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (HeaderKind, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::holdout_clause);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let percent = literals::visit_percent(ctx, next(&mut it));
    (HeaderKind::Holdout(percent), kw)
}

/// `cap <channel|messages> <n> per <duration>`, with its keyword's span.
pub fn visit_cap_clause(ctx: &mut Ctx, pair: Pair<Rule>) -> (Cap, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::cap_clause);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it);
    let target = next(&mut it);
    let target = if target.as_rule() == Rule::kw_messages {
        CapTarget::Messages(ctx.span(&target))
    } else {
        CapTarget::Channel(ctx.name(&target, "channel"))
    };
    let limit = literals::visit_count(ctx, next(&mut it));
    keyword(ctx, &mut it);
    let per = literals::visit_duration_slot(ctx, next(&mut it));
    let cap = Cap {
        target,
        limit,
        per,
        span,
    };
    (cap, kw)
}

/// `quiet hours <HH:MM> to <HH:MM> [in <expr>]`, with its keywords' span.
pub fn visit_quiet_hours(ctx: &mut Ctx, pair: Pair<Rule>) -> (QuietHours, Span) {
    debug_assert_eq!(pair.as_rule(), Rule::quiet_hours);
    let span = ctx.span(&pair);
    let mut it = children(pair);
    let kw = keyword(ctx, &mut it).to(keyword(ctx, &mut it));
    let from = literals::visit_time_of_day(ctx, next(&mut it));
    keyword(ctx, &mut it);
    let to = literals::visit_time_of_day(ctx, next(&mut it));
    let zone = it.next().map(|_in_keyword| {
        let zone = next(&mut it);
        expr::visit_expr(ctx, zone)
    });
    let quiet = QuietHours {
        from,
        to,
        zone,
        span,
    };
    (quiet, kw)
}
