//! Expressions → AST, with precedence applied by one Pratt parser built once:
//! `or` < `and` < `not` < comparisons (`in`, `not in`, `contains`) < `+ -`
//! < `* /` < unary `-`.

use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{BinaryOp, Expr, ExprKind, Ident, Path, PathRoot, UnaryOp};
use super::errors;
use super::grammar::Rule;
use super::{Ctx, children, literals, next};
use crate::source::Span;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    use Assoc::Left;
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Left))
        .op(Op::infix(Rule::op_and, Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Left)
            | Op::infix(Rule::op_ne, Left)
            | Op::infix(Rule::op_lt, Left)
            | Op::infix(Rule::op_le, Left)
            | Op::infix(Rule::op_gt, Left)
            | Op::infix(Rule::op_ge, Left)
            | Op::infix(Rule::op_in, Left)
            | Op::infix(Rule::op_not_in, Left)
            | Op::infix(Rule::op_contains, Left)
            | Op::infix(Rule::op_assign, Left))
        .op(Op::infix(Rule::op_add, Left) | Op::infix(Rule::op_sub, Left))
        .op(Op::infix(Rule::op_mul, Left) | Op::infix(Rule::op_div, Left))
        .op(Op::prefix(Rule::op_neg))
});

/// Operands and operators one expression may chain. Precedence climbing
/// and every later pass recurse once per operator, so an absurd chain
/// (`not not not ...` a hundred thousand times) must stop here rather than
/// exhaust the stack; real conditions use a handful.
const MAX_EXPR_PARTS: usize = 1_000;

pub fn visit_expr(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    debug_assert!(matches!(pair.as_rule(), Rule::expr | Rule::wait_condition));
    let file = ctx.file;
    let offset = ctx.offset;
    let span_of = |p: &Pair<Rule>| {
        let s = p.as_span();
        Span::new(file, s.start() + offset, s.end() + offset)
    };
    if pair.clone().into_inner().nth(MAX_EXPR_PARTS).is_some() {
        let span = span_of(&pair);
        ctx.diags
            .push(errors::expression_too_long(span, MAX_EXPR_PARTS));
        return Expr {
            kind: ExprKind::Null,
            span,
        };
    }
    // `=` for `==` is reported after the Pratt pass, which borrows `ctx`.
    let mut assigns = Vec::new();
    let expr = PRATT
        .map_primary(|primary| visit_primary(ctx, primary))
        .map_prefix(|op, operand| {
            let span = span_of(&op).to(operand.span);
            match (op.as_rule(), operand.kind) {
                // `-3` is the number -3, so constants stay constants.
                (Rule::op_neg, ExprKind::Number(n)) => Expr {
                    kind: ExprKind::Number(-n),
                    span,
                },
                (rule, kind) => Expr {
                    kind: ExprKind::Unary {
                        op: if rule == Rule::op_not {
                            UnaryOp::Not
                        } else {
                            UnaryOp::Neg
                        },
                        operand: Box::new(Expr {
                            kind,
                            span: operand.span,
                        }),
                    },
                    span,
                },
            }
        })
        .map_infix(|lhs, op, rhs| {
            if op.as_rule() == Rule::op_assign {
                assigns.push(span_of(&op));
            }
            let span = lhs.span.to(rhs.span);
            Expr {
                kind: ExprKind::Binary {
                    op: binary_op(op.as_rule()),
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            }
        })
        .parse(pair.into_inner());
    ctx.diags
        .extend(assigns.into_iter().map(errors::assign_in_condition));
    expr
}

fn binary_op(rule: Rule) -> BinaryOp {
    match rule {
        Rule::op_or => BinaryOp::Or,
        Rule::op_and => BinaryOp::And,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_le => BinaryOp::Le,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_ge => BinaryOp::Ge,
        Rule::op_in => BinaryOp::In,
        Rule::op_not_in => BinaryOp::NotIn,
        Rule::op_contains => BinaryOp::Contains,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        // `==`, and `=` read as `==` once reported.
        _ => BinaryOp::Eq,
    }
}

fn visit_primary(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    let span = ctx.span(&pair);
    let kind = match pair.as_rule() {
        Rule::paren => return visit_paren(ctx, pair),
        Rule::list => visit_list(ctx, pair),
        Rule::timestamp => ExprKind::Timestamp(literals::visit_timestamp(ctx, pair)),
        Rule::duration => ExprKind::Duration(literals::visit_duration(ctx, pair).secs),
        Rule::wordy_duration => ExprKind::Duration(literals::visit_wordy_duration(ctx, pair).secs),
        Rule::number => ExprKind::Number(literals::visit_number(ctx, pair)),
        Rule::string => ExprKind::String(literals::visit_string(ctx, pair).value),
        Rule::kw_true => ExprKind::Bool(true),
        Rule::kw_false => ExprKind::Bool(false),
        Rule::kw_null => ExprKind::Null,
        Rule::call => visit_call(ctx, pair),
        _ => ExprKind::Path(visit_path(ctx, pair)),
    };
    Expr { kind, span }
}

/// `( <expr> )`: the inner expression, spanning the parentheses.
fn visit_paren(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    debug_assert_eq!(pair.as_rule(), Rule::paren);
    let span = ctx.span(&pair);
    let inner = visit_expr(ctx, next(&mut children(pair)));
    Expr {
        kind: inner.kind,
        span,
    }
}

fn visit_list(ctx: &mut Ctx, pair: Pair<Rule>) -> ExprKind {
    debug_assert_eq!(pair.as_rule(), Rule::list);
    ExprKind::List(children(pair).map(|p| visit_expr(ctx, p)).collect())
}

fn visit_call(ctx: &mut Ctx, pair: Pair<Rule>) -> ExprKind {
    debug_assert_eq!(pair.as_rule(), Rule::call);
    let mut it = children(pair);
    let func = ctx.ident(&next(&mut it));
    let args = it.map(|p| visit_expr(ctx, p)).collect();
    ExprKind::Call { func, args }
}

pub(crate) fn visit_path(ctx: &mut Ctx, pair: Pair<Rule>) -> Path {
    debug_assert_eq!(pair.as_rule(), Rule::path);
    let mut it = pair.into_inner();
    let root_pair = next(&mut it);
    let root_span = ctx.span(&root_pair);
    let root = match root_pair.as_str() {
        "profile" => PathRoot::Profile,
        "event" => PathRoot::Event,
        "trigger" => PathRoot::Trigger,
        "journey" => PathRoot::Journey,
        name => PathRoot::Name(name.to_owned()),
    };
    let fields: Vec<Ident> = it.map(|p| ctx.ident(&p)).collect();
    Path {
        root,
        root_span,
        fields,
    }
}
