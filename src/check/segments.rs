//! Segments: each body must be a condition over the profile, and segments
//! may use other segments but never in a cycle (E0409, reported once per
//! cycle with its path `a → b → a`).

use super::Checker;
use super::expr::Env;
use super::problem::Problem;
use crate::source::Span;
use crate::syntax::ast::{self, Expr, ExprKind, PathRoot};

pub(crate) fn check(cx: &mut Checker) {
    let segments: Vec<&ast::SegmentDecl> = cx
        .scope
        .segments
        .names()
        .filter_map(|n| cx.scope.segments.get(n).copied())
        .collect();
    let env = Env::profile_only();
    for s in &segments {
        cx.expect_condition(&env, &s.expr, &format!("segment `{}`", s.name.name));
    }
    let graph = references(&segments);
    for cycle in cycles(&graph) {
        report_cycle(cx, &segments, &cycle);
    }
}

/// For each segment (by index), the segments its body uses, with where.
fn references(segments: &[&ast::SegmentDecl]) -> Vec<Vec<(usize, Span)>> {
    let index: rustc_hash::FxHashMap<&str, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.name.as_str(), i))
        .collect();
    segments
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            collect(&s.expr, &index, &mut out);
            out
        })
        .collect()
}

fn collect(e: &Expr, index: &rustc_hash::FxHashMap<&str, usize>, out: &mut Vec<(usize, Span)>) {
    match &e.kind {
        ExprKind::Path(p) => {
            if let PathRoot::Name(n) = &p.root
                && let Some(&i) = index.get(n.as_str())
            {
                out.push((i, p.root_span));
            }
        }
        ExprKind::List(items) => items.iter().for_each(|x| collect(x, index, out)),
        ExprKind::Call { args, .. } => args.iter().for_each(|x| collect(x, index, out)),
        ExprKind::Unary { operand, .. } => collect(operand, index, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect(lhs, index, out);
            collect(rhs, index, out);
        }
        _ => {}
    }
}

/// One cycle per back edge of a depth-first search in declaration order:
/// each is the list of (segment, the reference to the next one).
fn cycles(graph: &[Vec<(usize, Span)>]) -> Vec<Vec<(usize, Span)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    let mut color = vec![Color::White; graph.len()];
    let mut found = Vec::new();
    for root in 0..graph.len() {
        if color[root] != Color::White {
            continue;
        }
        // The path from the root: (node, index of its next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = Color::Gray;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let Some(&(to, span)) = graph[node].get(top.1) else {
                color[node] = Color::Black;
                stack.pop();
                continue;
            };
            top.1 += 1;
            match color[to] {
                Color::White => {
                    color[to] = Color::Gray;
                    stack.push((to, 0));
                }
                Color::Gray => {
                    let start = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                    let cycle = stack[start..]
                        .iter()
                        .map(|&(n, e)| {
                            // `e` was advanced past the edge being followed.
                            let edge = graph[n].get(e.saturating_sub(1)).map_or(span, |x| x.1);
                            (n, edge)
                        })
                        .collect();
                    found.push(cycle);
                }
                Color::Black => {}
            }
        }
    }
    found
}

fn report_cycle(cx: &mut Checker, segments: &[&ast::SegmentDecl], cycle: &[(usize, Span)]) {
    let Some(&(first, _)) = cycle.first() else {
        return;
    };
    let mut path: Vec<&str> = cycle
        .iter()
        .map(|&(i, _)| segments[i].name.name.as_str())
        .collect();
    path.push(&segments[first].name.name);
    let uses = cycle
        .iter()
        .enumerate()
        .map(|(k, &(i, span))| (span, segments[i].name.name.clone(), path[k + 1].to_string()))
        .collect();
    cx.report(Problem::SegmentCycle {
        span: segments[first].name.span,
        segment: segments[first].name.name.clone(),
        path: path.iter().map(|p| p.to_string()).collect(),
        uses,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[&[usize]]) -> Vec<Vec<(usize, Span)>> {
        edges
            .iter()
            .map(|es| es.iter().map(|&e| (e, Span::default())).collect())
            .collect()
    }

    fn nodes(cycles: Vec<Vec<(usize, Span)>>) -> Vec<Vec<usize>> {
        cycles
            .into_iter()
            .map(|c| c.into_iter().map(|(n, _)| n).collect())
            .collect()
    }

    #[test]
    fn finds_each_cycle_once() {
        // 0 → 1 → 2 → 0, and 3 → 3.
        let g = graph(&[&[1], &[2], &[0], &[3]]);
        assert_eq!(nodes(cycles(&g)), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn a_diamond_is_not_a_cycle() {
        let g = graph(&[&[1, 2], &[3], &[3], &[]]);
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn a_cycle_reached_from_outside_starts_at_its_entry() {
        let g = graph(&[&[1], &[2], &[1]]);
        assert_eq!(nodes(cycles(&g)), vec![vec![1, 2]]);
    }
}
