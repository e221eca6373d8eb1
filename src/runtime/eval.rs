//! Evaluation of compiled expressions against a user's profile, the event
//! being matched and the instance. `null` propagates (a comparison with it is
//! false but `== null` / `!= null`); operands of the wrong type are a
//! [`Mismatch`], which makes the condition false and is counted.

use std::borrow::Cow;
use std::sync::Arc;

use crate::compile::program::{BinOp, CExpr, Channel, ChannelId, Func};
use crate::value::{Value, parse_timestamp, parse_timestamp_in, representable};

use super::packed::Packed;
use super::store::Instance;

/// Operands of the wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch;

type Eval = Result<Value, Mismatch>;

/// What an expression can read.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub profile: &'a Packed,
    /// The matched event's fields (empty outside `where` clauses).
    pub event: &'a [Value],
    pub instance: Option<&'a Instance>,
    pub now: i64,
    pub channels: &'a [Channel],
    /// The `profile.unsubscribed` slot, if the program has one.
    pub unsubscribed: Option<u32>,
    /// Where the user's time zone comes from, for a date alone.
    pub zone: ZoneRule<'a>,
}

/// The user's time zone, as for quiet hours (LANGUAGE.md §6.4): the
/// quiet-hours `in` expression, else the `profile.timezone` slot, else UTC.
/// A date alone (`2026-03-20`) read as a timestamp is midnight there
/// (§4.4, "Dates").
#[derive(Clone, Copy, Default)]
pub struct ZoneRule<'a> {
    pub expr: Option<&'a CExpr>,
    pub slot: Option<u32>,
}

static NULL: Value = Value::Null;

impl<'a> Scope<'a> {
    /// The value of profile slot `slot` (unpacked: a copy).
    pub fn slot(&self, slot: u32) -> Value {
        self.profile.get(slot as usize).unwrap_or_default()
    }

    /// A condition: true only for `true`; a mismatch counts and is false.
    pub fn holds(&self, expr: &CExpr, mismatches: &mut u64) -> bool {
        match self.operand(expr).as_deref() {
            Ok(Value::Bool(b)) => *b,
            Ok(Value::Null) => false,
            Ok(_) | Err(Mismatch) => {
                *mismatches += 1;
                false
            }
        }
    }

    /// A value; a mismatch counts and is `null`.
    pub fn value(&self, expr: &CExpr, mismatches: &mut u64) -> Value {
        self.eval(expr).unwrap_or_else(|Mismatch| {
            *mismatches += 1;
            Value::Null
        })
    }

    /// Whether the user can be reached on `channel`: an address that is not
    /// null or `""`, consent not `false`, and (unless `transactional`) not
    /// unsubscribed. Consent is not needed for transactional sends.
    pub fn reachable(&self, channel: ChannelId, transactional: bool) -> Result<bool, Mismatch> {
        let Some(channel) = self.channels.get(channel as usize) else {
            return Ok(false);
        };
        if let Some(address) = &channel.address {
            // Most addresses are a profile slot: asked of the packed bytes,
            // a long email is not unpacked to be looked at.
            if let CExpr::Profile(slot) = address {
                if self.profile.is_blank(*slot as usize) {
                    return Ok(false);
                }
            } else {
                match &*self.operand(address)? {
                    Value::Null => return Ok(false),
                    Value::String(s) if s.is_empty() => return Ok(false),
                    _ => {}
                }
            }
        }
        if transactional {
            return Ok(true);
        }
        if let Some(consent) = &channel.consent
            && *self.operand(consent)? == Value::Bool(false)
        {
            return Ok(false);
        }
        if let Some(slot) = self.unsubscribed
            && self.slot(slot) == Value::Bool(true)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// An operand: borrowed when it is a constant or an event field (no
    /// reference count touched), unpacked or computed otherwise.
    pub fn operand<'e>(&self, expr: &'e CExpr) -> Result<Cow<'e, Value>, Mismatch>
    where
        'a: 'e,
    {
        match expr {
            CExpr::Const(v) => Ok(Cow::Borrowed(v)),
            CExpr::Profile(slot) => Ok(Cow::Owned(self.slot(*slot))),
            CExpr::Event(i) => Ok(Cow::Borrowed(self.event.get(*i as usize).unwrap_or(&NULL))),
            _ => self.eval(expr).map(Cow::Owned),
        }
    }

    pub fn eval(&self, expr: &CExpr) -> Eval {
        match expr {
            CExpr::Const(v) => Ok(v.clone()),
            CExpr::Profile(slot) => Ok(self.slot(*slot)),
            CExpr::Event(i) => Ok(self.event.get(*i as usize).cloned().unwrap_or_default()),
            CExpr::Trigger(i) => Ok(self
                .instance
                .and_then(|inst| inst.trigger.get(*i as usize))
                .unwrap_or_default()),
            CExpr::EnteredAt => Ok(self
                .instance
                .map_or(Value::Null, |inst| Value::Timestamp(inst.entered_at))),
            CExpr::Engaged(h, e) => Ok(Value::Bool(
                self.instance
                    .and_then(|inst| inst.handles.get(*h as usize))
                    .is_some_and(|handle| handle.engaged & e.bit() != 0),
            )),
            CExpr::Sent(h) => Ok(Value::Bool(
                self.instance
                    .and_then(|inst| inst.handles.get(*h as usize))
                    .is_some_and(|handle| handle.sent),
            )),
            CExpr::Reachable(ch) => self.reachable(*ch, false).map(Value::Bool),
            CExpr::Now => Ok(Value::Timestamp(self.now)),
            CExpr::Call(func, args) => self.call(*func, args),
            CExpr::List(items) => items
                .iter()
                .map(|e| self.eval(e))
                .collect::<Result<Arc<[Value]>, Mismatch>>()
                .map(Value::List),
            CExpr::Not(inner) => match self.eval(inner)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                // `not` of a missing flag: the flag is not set.
                Value::Null => Ok(Value::Bool(true)),
                _ => Err(Mismatch),
            },
            CExpr::Neg(inner) => match self.eval(inner)? {
                Value::Number(n) => Ok(Value::Number(-n)),
                Value::Duration(d) => Ok(Value::Duration(-d)),
                Value::Null => Ok(Value::Null),
                _ => Err(Mismatch),
            },
            CExpr::Binary(op, l, r) => self.binary(*op, l, r),
        }
    }

    fn binary(&self, op: BinOp, l: &CExpr, r: &CExpr) -> Eval {
        match op {
            BinOp::And => {
                if !self.boolean(l)? {
                    return Ok(Value::Bool(false));
                }
                self.boolean(r).map(Value::Bool)
            }
            BinOp::Or => {
                if self.boolean(l)? {
                    return Ok(Value::Bool(true));
                }
                self.boolean(r).map(Value::Bool)
            }
            BinOp::Eq | BinOp::Ne if is_null_literal(l) || is_null_literal(r) => {
                // `x == null` / `x != null`: a presence test.
                let other = if is_null_literal(l) { r } else { l };
                let absent = self.operand(other)?.is_null();
                Ok(Value::Bool(absent == (op == BinOp::Eq)))
            }
            _ => {
                let a = self.operand(l)?;
                let b = self.operand(r)?;
                self.apply(op, &a, &b)
            }
        }
    }

    /// An operand of `and`/`or`: `null` is false.
    fn boolean(&self, e: &CExpr) -> Result<bool, Mismatch> {
        match &*self.operand(e)? {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(Mismatch),
        }
    }

    fn call(&self, func: Func, args: &[CExpr]) -> Eval {
        if func == Func::Coalesce {
            for arg in args {
                let v = self.eval(arg)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        let Some(arg) = args.first() else {
            return Err(Mismatch);
        };
        let v = self.eval(arg)?;
        match (func, v) {
            (_, Value::Null) => Ok(Value::Null),
            (Func::Lower, Value::String(s)) => Ok(Value::str(&s.to_lowercase())),
            (Func::Upper, Value::String(s)) => Ok(Value::str(&s.to_uppercase())),
            (Func::Len, Value::String(s)) => Ok(Value::Number(s.chars().count() as f64)),
            (Func::Len, Value::List(items)) => Ok(Value::Number(items.len() as f64)),
            (Func::Len, Value::Object(map)) => Ok(Value::Number(map.len() as f64)),
            (Func::DaysSince, v) => self.since(v, 86_400_000.0),
            (Func::HoursSince, v) => self.since(v, 3_600_000.0),
            _ => Err(Mismatch),
        }
    }
}

fn is_null_literal(e: &CExpr) -> bool {
    matches!(e, CExpr::Const(Value::Null))
}

impl Scope<'_> {
    /// A timestamp, or a string that reads as one (event properties and
    /// undeclared profile fields arrive as JSON strings): RFC 3339, or a
    /// date alone at midnight in the user's time zone.
    pub fn timestamp(&self, v: &Value) -> Option<i64> {
        match v {
            Value::Timestamp(t) => Some(*t),
            Value::String(s) => parse_timestamp(s).or_else(|| {
                // Only a date alone is worth finding the zone for.
                (s.len() == 10)
                    .then(|| parse_timestamp_in(s, &self.time_zone()))
                    .flatten()
            }),
            _ => None,
        }
    }

    /// The user's time zone ([`ZoneRule`]); an unknown name is UTC.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        let plain = Scope {
            zone: ZoneRule::default(),
            ..*self
        };
        let name = match (self.zone.expr, self.zone.slot) {
            (Some(e), _) => plain.eval(e).unwrap_or_default(),
            (None, Some(slot)) => self.slot(slot).clone(),
            (None, None) => Value::Null,
        };
        match name {
            Value::String(name) => {
                jiff::tz::TimeZone::get(&name).unwrap_or(jiff::tz::TimeZone::UTC)
            }
            _ => jiff::tz::TimeZone::UTC,
        }
    }

    fn since(&self, v: Value, unit: f64) -> Eval {
        match self.timestamp(&v) {
            Some(t) => match self.now.checked_sub(t) {
                Some(d) => Ok(Value::Number(d as f64 / unit)),
                None => Err(Mismatch),
            },
            None => Err(Mismatch),
        }
    }

    fn apply(&self, op: BinOp, a: &Value, b: &Value) -> Eval {
        match op {
            // A comparison with a missing value is false, both ways.
            BinOp::Eq | BinOp::Ne if a.is_null() || b.is_null() => Ok(Value::Bool(false)),
            BinOp::Eq => Ok(Value::Bool(self.equal(a, b))),
            BinOp::Ne => Ok(Value::Bool(!self.equal(a, b))),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                if a.is_null() || b.is_null() {
                    return Ok(Value::Bool(false));
                }
                let ord = self.compare(a, b).ok_or(Mismatch)?;
                Ok(Value::Bool(match op {
                    BinOp::Lt => ord.is_lt(),
                    BinOp::Le => ord.is_le(),
                    BinOp::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                }))
            }
            BinOp::In | BinOp::NotIn => {
                if a.is_null() || b.is_null() {
                    return Ok(Value::Bool(false));
                }
                let Value::List(items) = b else {
                    return Err(Mismatch);
                };
                let found = items.iter().any(|item| self.equal(a, item));
                Ok(Value::Bool(found == (op == BinOp::In)))
            }
            BinOp::Contains => match (a, b) {
                (Value::Null, _) | (_, Value::Null) => Ok(Value::Bool(false)),
                (Value::List(items), _) => Ok(Value::Bool(items.iter().any(|i| self.equal(i, b)))),
                (Value::String(s), Value::String(sub)) => Ok(Value::Bool(s.contains(&**sub))),
                _ => Err(Mismatch),
            },
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => self.arithmetic(op, a, b),
            BinOp::And | BinOp::Or => Err(Mismatch),
        }
    }

    fn arithmetic(&self, op: BinOp, a: &Value, b: &Value) -> Eval {
        if a.is_null() || b.is_null() {
            return Ok(Value::Null);
        }
        match (op, a, b) {
            (_, Value::Number(x), Value::Number(y)) => {
                let n = match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    _ if *y == 0.0 => return Err(Mismatch),
                    _ => x / y,
                };
                Ok(Value::Number(n))
            }
            (BinOp::Add, Value::String(x), Value::String(y)) => Ok(Value::str(&format!("{x}{y}"))),
            // Time arithmetic never overflows: an answer with no timestamp
            // or duration to hold it is a mismatch (the value is unknown).
            (BinOp::Add | BinOp::Sub, Value::Duration(x), Value::Duration(y)) => {
                let d = if op == BinOp::Add {
                    x.checked_add(*y)
                } else {
                    x.checked_sub(*y)
                };
                d.map(Value::Duration).ok_or(Mismatch)
            }
            (BinOp::Add, Value::Duration(d), _) => self
                .timestamp(b)
                .and_then(|t| instant(t.checked_add(*d)))
                .ok_or(Mismatch),
            (BinOp::Add | BinOp::Sub, _, Value::Duration(d)) => {
                let t = self.timestamp(a).ok_or(Mismatch)?;
                instant(if op == BinOp::Add {
                    t.checked_add(*d)
                } else {
                    t.checked_sub(*d)
                })
                .ok_or(Mismatch)
            }
            (BinOp::Sub, _, _) => match (self.timestamp(a), self.timestamp(b)) {
                (Some(x), Some(y)) => x.checked_sub(y).map(Value::Duration).ok_or(Mismatch),
                _ => Err(Mismatch),
            },
            (BinOp::Mul, Value::Duration(d), Value::Number(n))
            | (BinOp::Mul, Value::Number(n), Value::Duration(d)) => {
                Ok(Value::Duration((*d as f64 * n) as i64))
            }
            (BinOp::Div, Value::Duration(d), Value::Number(n)) if *n != 0.0 => {
                Ok(Value::Duration((*d as f64 / n) as i64))
            }
            _ => Err(Mismatch),
        }
    }

    /// Equality across representations: a timestamp equals the string that
    /// reads as the same instant.
    fn equal(&self, a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Timestamp(_), Value::String(_)) | (Value::String(_), Value::Timestamp(_)) => {
                self.timestamp(a) == self.timestamp(b)
            }
            _ => a == b,
        }
    }

    fn compare(&self, a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
            (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
            (Value::Timestamp(_), _) | (_, Value::Timestamp(_)) => {
                Some(self.timestamp(a)?.cmp(&self.timestamp(b)?))
            }
            // Two dates or timestamps compare as instants (`2026-04-10` is
            // after `2026-04-09T16:00:00Z` in Tokyo); other text by letters.
            (Value::String(x), Value::String(y)) => match (self.timestamp(a), self.timestamp(b)) {
                (Some(t), Some(u)) => Some(t.cmp(&u)),
                _ => Some(x.cmp(y)),
            },
            _ => None,
        }
    }
}

/// A timestamp value for `ms`, when it is one a timestamp may hold.
fn instant(ms: Option<i64>) -> Option<Value> {
    ms.filter(|&t| representable(t)).map(Value::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(profile: &Packed) -> Scope<'_> {
        Scope {
            profile,
            event: &[],
            instance: None,
            now: 0,
            channels: &[],
            unsubscribed: None,
            zone: ZoneRule::default(),
        }
    }

    fn bin(op: BinOp, a: CExpr, b: CExpr) -> CExpr {
        CExpr::Binary(op, Box::new(a), Box::new(b))
    }

    #[test]
    fn null_comparisons_are_false_but_equality_with_null() {
        let profile = Packed::new(&[Value::Null]);
        let s = scope(&profile);
        let mut m = 0;
        let tier = CExpr::Profile(0);
        let gold = CExpr::Const(Value::str("gold"));
        assert!(!s.holds(&bin(BinOp::Eq, tier.clone(), gold.clone()), &mut m));
        assert!(!s.holds(&bin(BinOp::Ne, tier.clone(), gold.clone()), &mut m));
        assert!(!s.holds(
            &bin(BinOp::Ne, tier.clone(), CExpr::Const(Value::Null)),
            &mut m
        ));
        assert!(s.holds(
            &bin(BinOp::Eq, tier.clone(), CExpr::Const(Value::Null)),
            &mut m
        ));
        assert!(!s.holds(
            &bin(BinOp::Gt, tier, CExpr::Const(Value::Number(1.0))),
            &mut m
        ));
        assert_eq!(m, 0);
    }

    #[test]
    fn mismatch_is_false_and_counted() {
        let profile = Packed::new(&[Value::str("x")]);
        let s = scope(&profile);
        let mut m = 0;
        let e = bin(
            BinOp::Gt,
            CExpr::Profile(0),
            CExpr::Const(Value::Number(1.0)),
        );
        assert!(!s.holds(&e, &mut m));
        assert_eq!(m, 1);
    }

    #[test]
    fn timestamps_from_strings_and_durations() {
        let profile = Packed::new(&[Value::str("2026-03-02T10:00:00Z")]);
        let s = scope(&profile);
        let e = bin(
            BinOp::Sub,
            CExpr::Profile(0),
            CExpr::Const(Value::Duration(3_600_000)),
        );
        let expected = parse_timestamp("2026-03-02T09:00:00Z").map(Value::Timestamp);
        assert_eq!(s.eval(&e).ok(), expected);
    }

    #[test]
    fn a_date_alone_is_midnight_in_the_users_zone() {
        let minus_30d = bin(
            BinOp::Sub,
            CExpr::Profile(0),
            CExpr::Const(Value::Duration(30 * 86_400_000)),
        );
        let at = |profile: &[Value], zone: ZoneRule| {
            let profile = Packed::new(profile);
            let s = Scope {
                zone,
                ..scope(&profile)
            };
            s.eval(&minus_30d).ok()
        };
        let ts = |text: &str| parse_timestamp(text).map(Value::Timestamp);
        // No zone: UTC.
        let utc = [Value::str("2026-03-20"), Value::Null];
        assert_eq!(at(&utc, ZoneRule::default()), ts("2026-02-18T00:00:00Z"));
        // `profile.timezone` (slot 1), and a quiet-hours `in` expression
        // before it.
        let paris = [Value::str("2026-03-20"), Value::str("Europe/Paris")];
        let slot = ZoneRule {
            expr: None,
            slot: Some(1),
        };
        assert_eq!(at(&paris, slot), ts("2026-02-17T23:00:00Z"));
        let tokyo = CExpr::Const(Value::str("Asia/Tokyo"));
        let expr = ZoneRule {
            expr: Some(&tokyo),
            slot: Some(1),
        };
        assert_eq!(at(&paris, expr), ts("2026-02-17T15:00:00Z"));
        // An unknown zone is UTC; a text that is no date is a mismatch.
        let nowhere = [Value::str("2026-03-20"), Value::str("Mars/Olympus")];
        assert_eq!(at(&nowhere, slot), ts("2026-02-18T00:00:00Z"));
        let soon = [Value::str("soon"), Value::Null];
        assert_eq!(at(&soon, slot), None);
        // Comparisons read dates too.
        let before = bin(
            BinOp::Lt,
            CExpr::Profile(0),
            CExpr::Const(Value::Timestamp(
                parse_timestamp("2026-03-19T23:30:00Z").unwrap(),
            )),
        );
        let paris = Packed::new(&paris);
        let s = Scope {
            zone: slot,
            ..scope(&paris)
        };
        assert!(s.holds(&before, &mut 0));
    }
}
