//! Expressions on the fast path, in the two steps pest and the visitor take:
//! the flat sequence of the `expr` rule (prefix operators, operands, infix
//! operators), then the same precedence climbing as the Pratt parser of
//! `syntax/expr.rs`, so that precedence, associativity, spans and the
//! folding of `-3` into a literal come out identical.

use super::super::ast::{BinaryOp, Expr, ExprKind, Ident, Path, PathRoot, UnaryOp};
use super::super::literals;
use super::cursor::{Parser, is_ident_char, is_ident_start};
use crate::source::Span;

/// Operands and operators one expression may chain before the visitor
/// reports it as too long (`MAX_EXPR_PARTS` in `syntax/expr.rs`).
const MAX_PARTS: usize = 1_000;

/// One element of an expression's flat sequence.
pub(in crate::syntax) enum Part {
    Prefix(UnaryOp, Span),
    Infix(BinaryOp),
    Operand(Expr),
}

// The Pratt parser's binding powers: pest gives the n-th `.op(...)` the
// precedence 10 * (n + 1), and a prefix operator binds its operand at one less.
const OR: u32 = 20;
const AND: u32 = 30;
const NOT: u32 = 40;
const COMPARE: u32 = 50;
const ADD: u32 = 60;
const MUL: u32 = 70;
const NEG: u32 = 80;

fn binding_power(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Add | BinaryOp::Sub => ADD,
        BinaryOp::Mul | BinaryOp::Div => MUL,
        _ => COMPARE,
    }
}

impl Parser<'_> {
    /// `prefix_op* primary (infix_op prefix_op* primary)*`
    pub fn expr(&mut self) -> Option<Expr> {
        let base = self.parts.len();
        let parsed = self.expr_parts();
        let count = self.parts.len() - base;
        let expr = match parsed {
            Some(()) if count <= MAX_PARTS => {
                let mut parts = self.parts.drain(base..).peekable();
                climb(&mut parts, 0)
            }
            Some(()) => self.decline(),
            None => None,
        };
        self.parts.truncate(base);
        expr
    }

    fn expr_parts(&mut self) -> Option<()> {
        self.operand()?;
        while let Some(op) = self.infix_op() {
            self.parts.push(Part::Infix(op));
            // pest would give up this operator and end the expression
            // before it; that path is left to pest.
            if self.operand().is_none() {
                return self.decline();
            }
        }
        Some(())
    }

    /// `prefix_op* primary`, pushed onto `parts`.
    fn operand(&mut self) -> Option<()> {
        loop {
            let start = self.pos;
            if self.at_word("not") {
                self.take_to(start + 3);
                let span = self.span(start, start + 3);
                self.parts.push(Part::Prefix(UnaryOp::Not, span));
            } else if self.peek() == b'-' {
                self.take_to(start + 1);
                let span = self.span(start, start + 1);
                self.parts.push(Part::Prefix(UnaryOp::Neg, span));
            } else {
                break;
            }
        }
        let primary = self.primary()?;
        self.parts.push(Part::Operand(primary));
        Some(())
    }

    /// The infix operator at `pos`, taken; `None` (nothing taken) when
    /// there is none and the expression ends. Tried in the grammar's order.
    fn infix_op(&mut self) -> Option<BinaryOp> {
        let start = self.pos;
        let word = self.word();
        let (op, len) = match word {
            "or" => (BinaryOp::Or, 2),
            "and" => (BinaryOp::And, 3),
            "in" => (BinaryOp::In, 2),
            "contains" => (BinaryOp::Contains, 8),
            "not" => (BinaryOp::NotIn, self.not_in_len()?),
            "" => match (self.peek(), self.byte(start + 1)) {
                (b'=', b'=') => (BinaryOp::Eq, 2),
                (b'!', b'=') => (BinaryOp::Ne, 2),
                (b'<', b'=') => (BinaryOp::Le, 2),
                (b'<', _) => (BinaryOp::Lt, 1),
                (b'>', b'=') => (BinaryOp::Ge, 2),
                (b'>', _) => (BinaryOp::Gt, 1),
                // `=` for `==` is reported by the visitor.
                (b'=', _) => return self.decline(),
                (b'+', _) => (BinaryOp::Add, 1),
                (b'-', _) => (BinaryOp::Sub, 1),
                (b'*', _) => (BinaryOp::Mul, 1),
                (b'/', _) => (BinaryOp::Div, 1),
                _ => return None,
            },
            _ => return None,
        };
        self.take_to(start + len);
        Some(op)
    }

    /// `not in`: the length of `not`, whitespace (no comments) and `in`.
    fn not_in_len(&self) -> Option<usize> {
        let gap = self.bytes[self.pos + 3..]
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        let in_at = self.pos + 3 + gap;
        (gap > 0 && self.word_at(in_at) == "in").then_some(3 + gap + 2)
    }

    fn primary(&mut self) -> Option<Expr> {
        let b = self.peek();
        if is_ident_start(b) {
            self.word_primary()
        } else if b.is_ascii_digit() {
            self.digit_primary()
        } else {
            match b {
                b'"' => {
                    let s = self.string()?;
                    Some(Expr {
                        kind: ExprKind::String(s.value),
                        span: s.span,
                    })
                }
                b'(' => self.paren(),
                b'[' => self.list(),
                _ => None,
            }
        }
    }

    /// `true`, `false`, `null`, a call or a path.
    fn word_primary(&mut self) -> Option<Expr> {
        let start = self.pos;
        let word = self.word();
        let end = start + word.len();
        let literal = match word {
            "true" => Some(ExprKind::Bool(true)),
            "false" => Some(ExprKind::Bool(false)),
            "null" => Some(ExprKind::Null),
            _ => None,
        };
        if let Some(kind) = literal {
            self.take_to(end);
            return Some(Expr {
                kind,
                span: self.span(start, end),
            });
        }
        self.take_to(end);
        let span = self.span(start, end);
        if self.peek() == b'(' {
            let func = Ident {
                name: word.to_owned(),
                span,
            };
            return self.call(start, func);
        }
        self.path(start, word, span)
    }

    /// `<func>(<expr>, ...)`; `func` is taken. A call that fails to parse
    /// would be retried by pest as a path: left to pest.
    fn call(&mut self, start: usize, func: Ident) -> Option<Expr> {
        self.take_to(self.pos + 1);
        let Some(args) = self.expr_list(b')') else {
            return self.decline();
        };
        Some(Expr {
            kind: ExprKind::Call { func, args },
            span: self.closed_span(start),
        })
    }

    /// `<expr> (, <expr>)* ,?` then `close`; the opening bracket is taken.
    fn expr_list(&mut self, close: u8) -> Option<Vec<Expr>> {
        let mut items = Vec::new();
        while self.peek() != close {
            items.push(self.expr()?);
            if self.peek() == b',' {
                self.take_to(self.pos + 1);
            } else {
                break;
            }
        }
        self.punct(close)?;
        Some(items)
    }

    /// A path, whose root `word` at `start` is taken (with the trivia after
    /// it, which a path cannot hold: the fields are read from the word's end).
    fn path(&mut self, start: usize, word: &str, root_span: Span) -> Option<Expr> {
        let root = match word {
            "profile" => PathRoot::Profile,
            "event" => PathRoot::Event,
            "trigger" => PathRoot::Trigger,
            "journey" => PathRoot::Journey,
            _ if super::super::ast::is_reserved(word) => return None,
            _ => PathRoot::Name(word.to_owned()),
        };
        let mut end = start + word.len();
        let mut fields = Vec::new();
        while self.byte(end) == b'.' && is_ident_start(self.byte(end + 1)) {
            let field = self.word_at(end + 1);
            let field_end = end + 1 + field.len();
            fields.push(Ident {
                name: field.to_owned(),
                span: self.span(end + 1, field_end),
            });
            end = field_end;
        }
        self.take_to(end);
        Some(Expr {
            kind: ExprKind::Path(Path {
                root,
                root_span,
                fields,
            }),
            span: self.span(start, end),
        })
    }

    /// `( <expr> )`: the inner expression, spanning the parentheses.
    fn paren(&mut self) -> Option<Expr> {
        let start = self.pos;
        self.take_to(start + 1);
        let inner = self.expr()?;
        self.punct(b')')?;
        Some(Expr {
            kind: inner.kind,
            span: self.closed_span(start),
        })
    }

    fn list(&mut self) -> Option<Expr> {
        let start = self.pos;
        self.take_to(start + 1);
        let items = self.expr_list(b']')?;
        Some(Expr {
            kind: ExprKind::List(items),
            span: self.closed_span(start),
        })
    }

    /// A timestamp, duration or number, tried in the grammar's order.
    fn digit_primary(&mut self) -> Option<Expr> {
        let start = self.pos;
        let (kind, end) = if let Some(end) = self.timestamp_end() {
            let Some(ms) = literals::parse_timestamp(&self.text[start..end]) else {
                return self.decline();
            };
            (ExprKind::Timestamp(ms), end)
        } else if let Some(end) = self.duration_end() {
            let Ok(secs) = literals::parse_duration(&self.text[start..end]) else {
                return self.decline();
            };
            (ExprKind::Duration(secs), end)
        } else if self.is_wordy_duration() {
            return self.decline();
        } else {
            let end = self.decimal(start)?;
            if is_ident_char(self.byte(end)) {
                return None;
            }
            let Some(n) = literals::parse_number(&self.text[start..end]) else {
                return self.decline();
            };
            (ExprKind::Number(n), end)
        };
        self.take_to(end);
        Some(Expr {
            kind,
            span: self.span(start, end),
        })
    }

    /// `dddd-dd-dd` with an optional `T...` part and no identifier after.
    fn timestamp_end(&self) -> Option<usize> {
        let s = self.pos;
        let shape = self.digits(s) >= 4
            && self.byte(s + 4) == b'-'
            && self.digits(s + 5) >= 2
            && self.byte(s + 7) == b'-'
            && self.digits(s + 8) >= 2;
        if !shape {
            return None;
        }
        let mut end = s + 10;
        if matches!(self.byte(end), b'T' | b't') {
            end += 1;
            while matches!(self.byte(end), b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b':' | b'.' | b'+' | b'-')
            {
                end += 1;
            }
        }
        (!is_ident_char(self.byte(end))).then_some(end)
    }

    /// `(digits unit)+` with no identifier or `.` after.
    fn duration_end(&self) -> Option<usize> {
        let mut end = self.pos;
        loop {
            let n = self.digits(end);
            if n == 0 || !matches!(self.byte(end + n), b's' | b'm' | b'h' | b'd' | b'w') {
                break;
            }
            end += n + 1;
        }
        let after = self.byte(end);
        (end > self.pos && !is_ident_char(after) && after != b'.').then_some(end)
    }

    /// `1 day`, `2 hours`, `30min`: pest reads them to report them.
    fn is_wordy_duration(&self) -> bool {
        const LONG: [&str; 16] = [
            "seconds", "second", "secs", "sec", "minutes", "minute", "mins", "min", "hours",
            "hour", "hrs", "hr", "days", "day", "weeks", "week",
        ];
        let Some(mut at) = self.decimal(self.pos) else {
            return false;
        };
        let rest = |at: usize| &self.bytes[at.min(self.bytes.len())..];
        let long = |at: usize| LONG.iter().find(|u| rest(at).starts_with(u.as_bytes()));
        let gap = rest(at)
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if gap > 0 {
            at += gap;
            match long(at) {
                Some(unit) => at += unit.len(),
                None if matches!(self.byte(at), b's' | b'm' | b'h' | b'd' | b'w') => at += 1,
                None => return false,
            }
        } else {
            match long(at) {
                Some(unit) => at += unit.len(),
                None => return false,
            }
        }
        !is_ident_char(self.byte(at))
    }
}

/// Precedence climbing over the flat parts, step for step as pest's
/// `PrattParser::expr`; `None` only if the parts are not in the grammar's
/// shape, which `expr_parts` rules out.
fn climb(parts: &mut std::iter::Peekable<impl Iterator<Item = Part>>, rbp: u32) -> Option<Expr> {
    let mut lhs = match parts.next()? {
        Part::Operand(e) => e,
        Part::Prefix(op, span) => {
            let power = if op == UnaryOp::Not { NOT } else { NEG };
            let operand = climb(parts, power - 1)?;
            prefix(op, span, operand)
        }
        Part::Infix(_) => return None,
    };
    while let Some(Part::Infix(op)) = parts.peek() {
        let op = *op;
        let power = binding_power(op);
        if rbp >= power {
            break;
        }
        parts.next();
        let rhs = climb(parts, power)?;
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        };
    }
    Some(lhs)
}

/// As the visitor's `map_prefix`: `-` on a number literal folds into it.
fn prefix(op: UnaryOp, op_span: Span, operand: Expr) -> Expr {
    let span = op_span.to(operand.span);
    match (op, operand.kind) {
        (UnaryOp::Neg, ExprKind::Number(n)) => Expr {
            kind: ExprKind::Number(-n),
            span,
        },
        (op, kind) => Expr {
            kind: ExprKind::Unary {
                op,
                operand: Box::new(Expr {
                    kind,
                    span: operand.span,
                }),
            },
            span,
        },
    }
}
