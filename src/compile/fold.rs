//! Constant folding: literal arithmetic and comparisons, `not` of a literal,
//! `and`/`or` with a constant side, pure functions of literals. A fold only
//! happens when its result is certain under the runtime's rules (a mixed-type
//! comparison or a division by zero is left for the runtime to count).

use std::cmp::Ordering;
use std::sync::Arc;

use super::program::{BinOp, CExpr, Func};
use crate::value::Value;

pub(crate) fn not(operand: CExpr) -> CExpr {
    match operand {
        CExpr::Const(Value::Bool(b)) => CExpr::Const(Value::Bool(!b)),
        other => CExpr::Not(Box::new(other)),
    }
}

pub(crate) fn neg(operand: CExpr) -> CExpr {
    match operand {
        CExpr::Const(Value::Number(n)) => CExpr::Const(Value::Number(-n)),
        CExpr::Const(Value::Duration(ms)) if ms != i64::MIN => CExpr::Const(Value::Duration(-ms)),
        other => CExpr::Neg(Box::new(other)),
    }
}

/// A list literal: a constant when every element is.
pub(crate) fn list(items: Vec<CExpr>) -> CExpr {
    if items.iter().all(|i| matches!(i, CExpr::Const(_))) {
        let values: Vec<Value> = items
            .into_iter()
            .filter_map(|i| match i {
                CExpr::Const(v) => Some(v),
                _ => None,
            })
            .collect();
        CExpr::Const(Value::List(Arc::from(values)))
    } else {
        CExpr::List(items)
    }
}

pub(crate) fn binary(op: BinOp, lhs: CExpr, rhs: CExpr) -> CExpr {
    match op {
        BinOp::And => logic(false, lhs, rhs, BinOp::And),
        BinOp::Or => logic(true, lhs, rhs, BinOp::Or),
        _ => match (&lhs, &rhs) {
            (CExpr::Const(a), CExpr::Const(b)) => match eval(op, a, b) {
                Some(v) => CExpr::Const(v),
                None => CExpr::Binary(op, Box::new(lhs), Box::new(rhs)),
            },
            _ => CExpr::Binary(op, Box::new(lhs), Box::new(rhs)),
        },
    }
}

/// `and` (absorbing `false`) and `or` (absorbing `true`): an absorbing
/// constant decides, the neutral one disappears.
fn logic(absorbing: bool, lhs: CExpr, rhs: CExpr, op: BinOp) -> CExpr {
    let as_bool = |e: &CExpr| match e {
        CExpr::Const(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    match (as_bool(&lhs), as_bool(&rhs)) {
        (Some(b), _) | (_, Some(b)) if b == absorbing => CExpr::Const(Value::Bool(absorbing)),
        (Some(_), _) => rhs,
        (_, Some(_)) => lhs,
        _ => CExpr::Binary(op, Box::new(lhs), Box::new(rhs)),
    }
}

/// The value of `a op b` for two constants, when certain.
fn eval(op: BinOp, a: &Value, b: &Value) -> Option<Value> {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arithmetic(op, a, b),
        BinOp::Eq => equal(a, b).map(Value::Bool),
        BinOp::Ne => equal(a, b).map(|e| Value::Bool(!e)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, a, b),
        BinOp::In => member(a, b).map(Value::Bool),
        BinOp::NotIn => member(a, b).map(|m| Value::Bool(!m)),
        BinOp::Contains => contains(a, b).map(Value::Bool),
        BinOp::And | BinOp::Or => None,
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Option<Value> {
    use Value::{Duration as D, Number as N, Timestamp as T};
    let v = match (op, a, b) {
        (BinOp::Add, N(x), N(y)) => N(x + y),
        (BinOp::Sub, N(x), N(y)) => N(x - y),
        (BinOp::Mul, N(x), N(y)) => N(x * y),
        (BinOp::Div, N(x), N(y)) if *y != 0.0 => N(x / y),
        (BinOp::Add, T(t), D(d)) | (BinOp::Add, D(d), T(t)) => T(t.checked_add(*d)?),
        (BinOp::Sub, T(t), D(d)) => T(t.checked_sub(*d)?),
        (BinOp::Sub, T(x), T(y)) => D(x.checked_sub(*y)?),
        (BinOp::Add, D(x), D(y)) => D(x.checked_add(*y)?),
        (BinOp::Sub, D(x), D(y)) => D(x.checked_sub(*y)?),
        _ => return None,
    };
    match v {
        N(n) if !n.is_finite() => None,
        v => Some(v),
    }
}

/// `==` under the runtime's rules; `None` when the types differ (the
/// runtime counts that as a mismatch, so it is not folded).
fn equal(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(true),
        (Value::Null, _) | (_, Value::Null) => Some(false),
        _ if std::mem::discriminant(a) == std::mem::discriminant(b) => Some(a == b),
        _ => None,
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> Option<Value> {
    let ordering = match (a, b) {
        (Value::Null, _) | (_, Value::Null) => return Some(Value::Bool(false)),
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y)?,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) | (Value::Duration(x), Value::Duration(y)) => {
            x.cmp(y)
        }
        _ => return None,
    };
    let holds = match op {
        BinOp::Lt => ordering == Ordering::Less,
        BinOp::Le => ordering != Ordering::Greater,
        BinOp::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    };
    Some(Value::Bool(holds))
}

/// `a in b` for a list `b`; `None` when any comparison is uncertain.
fn member(a: &Value, b: &Value) -> Option<bool> {
    let (Value::List(items), false) = (b, a.is_null()) else {
        return None;
    };
    let mut found = false;
    for item in items.iter() {
        found |= equal(a, item)?;
    }
    Some(found)
}

fn contains(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::List(_), _) => member(b, a),
        (Value::String(s), Value::String(sub)) => Some(s.contains(&**sub)),
        _ => None,
    }
}

/// Pure functions of constants; `coalesce` drops leading `null`s.
pub(crate) fn call(f: Func, mut args: Vec<CExpr>) -> CExpr {
    let first = match args.as_slice() {
        [CExpr::Const(v)] => Some(v),
        _ => None,
    };
    let folded = match (f, first) {
        (Func::Lower, Some(Value::String(s))) => Some(Value::str(&s.to_lowercase())),
        (Func::Upper, Some(Value::String(s))) => Some(Value::str(&s.to_uppercase())),
        (Func::Len, Some(Value::String(s))) => Some(Value::Number(s.chars().count() as f64)),
        (Func::Len, Some(Value::List(items))) => Some(Value::Number(items.len() as f64)),
        _ => None,
    };
    if let Some(v) = folded {
        return CExpr::Const(v);
    }
    if f == Func::Coalesce {
        let leading_nulls = args
            .iter()
            .take_while(|a| matches!(a, CExpr::Const(Value::Null)))
            .count();
        args.drain(..leading_nulls);
        match args.first() {
            None => return CExpr::Const(Value::Null),
            Some(CExpr::Const(v)) => return CExpr::Const(v.clone()),
            Some(_) if args.len() == 1 => return args.remove(0),
            Some(_) => {}
        }
    }
    CExpr::Call(f, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: f64) -> CExpr {
        CExpr::Const(Value::Number(n))
    }

    fn boolean(b: bool) -> CExpr {
        CExpr::Const(Value::Bool(b))
    }

    #[test]
    fn folds_literal_arithmetic_and_comparisons() {
        assert_eq!(binary(BinOp::Add, num(1.0), num(2.0)), num(3.0));
        assert_eq!(binary(BinOp::Lt, num(1.0), num(2.0)), boolean(true));
        assert_eq!(
            binary(BinOp::Eq, CExpr::Const(Value::Null), num(2.0)),
            boolean(false)
        );
        assert_eq!(
            binary(
                BinOp::Sub,
                CExpr::Const(Value::Timestamp(10_000)),
                CExpr::Const(Value::Duration(4_000))
            ),
            CExpr::Const(Value::Timestamp(6_000))
        );
    }

    #[test]
    fn leaves_uncertain_operations_to_the_runtime() {
        let div = binary(BinOp::Div, num(1.0), num(0.0));
        assert!(matches!(div, CExpr::Binary(BinOp::Div, ..)));
        let mixed = binary(BinOp::Eq, num(1.0), CExpr::Const(Value::str("1")));
        assert!(matches!(mixed, CExpr::Binary(BinOp::Eq, ..)));
    }

    #[test]
    fn logic_with_a_constant_side() {
        let p = CExpr::Profile(0);
        assert_eq!(
            binary(BinOp::And, p.clone(), boolean(false)),
            boolean(false)
        );
        assert_eq!(binary(BinOp::And, boolean(true), p.clone()), p);
        assert_eq!(binary(BinOp::Or, p.clone(), boolean(true)), boolean(true));
        assert_eq!(binary(BinOp::Or, boolean(false), p.clone()), p);
        assert_eq!(not(boolean(true)), boolean(false));
    }

    #[test]
    fn membership_and_coalesce() {
        let list = super::list(vec![
            CExpr::Const(Value::str("FR")),
            CExpr::Const(Value::str("DE")),
        ]);
        assert_eq!(
            binary(BinOp::In, CExpr::Const(Value::str("DE")), list.clone()),
            boolean(true)
        );
        assert_eq!(
            binary(BinOp::NotIn, CExpr::Const(Value::str("US")), list),
            boolean(true)
        );
        let c = call(
            Func::Coalesce,
            vec![CExpr::Const(Value::Null), CExpr::Profile(3)],
        );
        assert_eq!(c, CExpr::Profile(3));
    }
}
