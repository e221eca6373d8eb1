//! Attribution (LANGUAGE.md §4.4): each conversion event's credit of 1,
//! and its value, shared among the user's sends of the window before it by
//! four models.
//!
//! A user's sends are kept as [`Touch`]es while they can still be credited
//! (in the window before the clock), so the state per user is bounded by
//! the sends one window holds. A conversion at `T` is credited to the
//! touches at `t` with `T − window < t ≤ T`, in time and then action
//! order; it is counted before the event's own effects, so the sends the
//! conversion itself causes (an order confirmation) are not its touches,
//! while the timers due at `T` have fired before it (§6.2) and theirs are.
//!
//! The credits are summed per journey, channel and template by name, so
//! that the counters survive a deploy and the counters of runtimes that
//! each held some of the customers add up to one runtime's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::store::{Touch, Touches};
use crate::compile::program::{Attribution, NodeKind, Program};
use crate::value::Value;

/// The attribution models, in the report's order.
pub const MODELS: [&str; 4] = ["first", "last", "linear", "time_decay"];

/// The attribution counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributionStats {
    /// Conversion events (matching `conversion` and its `where`).
    pub conversions: u64,
    /// Conversions with no touch.
    pub unattributed: u64,
    /// The sum of every conversion's value.
    pub value: f64,
    /// Credit per journey, channel and template, sorted by them.
    pub rows: Vec<CreditRow>,
}

/// The credit and value one journey, channel and template earned, per
/// model (in [`MODELS`] order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditRow {
    pub journey: Arc<str>,
    pub channel: Arc<str>,
    pub template: Arc<str>,
    pub credit: [f64; 4],
    pub value: [f64; 4],
}

impl AttributionStats {
    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, other: &AttributionStats) {
        self.conversions += other.conversions;
        self.unattributed += other.unattributed;
        self.value += other.value;
        for row in &other.rows {
            let mine = self.row(&row.journey, &row.channel, &row.template);
            for m in 0..MODELS.len() {
                mine.credit[m] += row.credit[m];
                mine.value[m] += row.value[m];
            }
        }
    }

    fn row(
        &mut self,
        journey: &Arc<str>,
        channel: &Arc<str>,
        template: &Arc<str>,
    ) -> &mut CreditRow {
        let key = (&**journey, &**channel, &**template);
        let i = match self
            .rows
            .binary_search_by(|r| (&*r.journey, &*r.channel, &*r.template).cmp(&key))
        {
            Ok(i) => i,
            Err(i) => {
                self.rows.insert(
                    i,
                    CreditRow {
                        journey: journey.clone(),
                        channel: channel.clone(),
                        template: template.clone(),
                        credit: [0.0; 4],
                        value: [0.0; 4],
                    },
                );
                i
            }
        };
        &mut self.rows[i]
    }

    /// Counts one conversion at `now` worth `value`, shared among
    /// `touches` (those of the window, oldest first).
    pub(crate) fn record(&mut self, program: &Program, touches: &[Touch], now: i64, value: f64) {
        self.conversions += 1;
        self.value += value;
        let Some(attribution) = &program.attribution else {
            return;
        };
        let shares = shares(attribution, touches, now);
        if shares.is_empty() {
            self.unattributed += 1;
            return;
        }
        for (touch, share) in touches.iter().zip(shares) {
            // A touch the program has no send for (a damaged state) is
            // skipped: never a panic.
            let Some((journey, channel, template)) = names(program, touch) else {
                continue;
            };
            let row = self.row(&journey, &channel, &template);
            for (m, part) in share.iter().enumerate() {
                row.credit[m] += part;
                row.value[m] += part * value;
            }
        }
    }
}

/// The journey, channel and template names of a touch.
fn names(program: &Program, touch: &Touch) -> Option<(Arc<str>, Arc<str>, Arc<str>)> {
    let journey = program.journeys.get(touch.journey as usize)?;
    let NodeKind::Send(send) = &journey.nodes.get(touch.node as usize)?.kind else {
        return None;
    };
    let alt = send.alternatives.get(usize::from(touch.alt))?;
    let channel = program.channels.get(alt.channel as usize)?;
    Some((
        journey.name.clone(),
        channel.name.clone(),
        alt.template.clone(),
    ))
}

/// Each touch's share of one conversion at `now` per model (in [`MODELS`]
/// order); `touches` are the window's, oldest first. Empty without touches.
pub fn shares(attribution: &Attribution, touches: &[Touch], now: i64) -> Vec<[f64; 4]> {
    let n = touches.len();
    if n == 0 {
        return Vec::new();
    }
    let half_life = attribution.half_life_ms.max(1) as f64;
    let weights: Vec<f64> = touches
        .iter()
        .map(|t| (-((now - t.at).max(0) as f64) / half_life).exp2())
        .collect();
    let total: f64 = weights.iter().sum();
    touches
        .iter()
        .enumerate()
        .map(|(i, _)| {
            [
                if i == 0 { 1.0 } else { 0.0 },
                if i == n - 1 { 1.0 } else { 0.0 },
                1.0 / n as f64,
                if total > 0.0 {
                    weights[i] / total
                } else {
                    1.0 / n as f64
                },
            ]
        })
        .collect()
}

/// A conversion's value: a number, else 0.
pub(crate) fn value_of(value: &Value) -> f64 {
    match value {
        Value::Number(n) if n.is_finite() => *n,
        _ => 0.0,
    }
}

/// The touches of a conversion at `now`: the user's, once those the window
/// has left behind are dropped.
pub(crate) fn window<'t>(
    attribution: &Attribution,
    touches: &'t mut Touches,
    now: i64,
) -> &'t [Touch] {
    touches.prune(now.saturating_sub(attribution.window_ms));
    let all = touches.as_slice();
    // Touches are added at the clock, which never goes back: all are at or
    // before `now`.
    let end = all.partition_point(|t| t.at <= now);
    &all[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribution(half_life_ms: i64) -> Attribution {
        Attribution {
            event: 0,
            condition: None,
            value: None,
            window_ms: 7 * 86_400_000,
            half_life_ms,
        }
    }

    fn touch(at: i64) -> Touch {
        Touch {
            at,
            journey: 0,
            node: 0,
            alt: 0,
        }
    }

    #[test]
    fn the_four_models_share_one_credit() {
        const H: i64 = 3_600_000;
        // Touches 2h, 1h and 0h before the conversion, half life 1h:
        // weights 1/4, 1/2, 1 → shares 1/7, 2/7, 4/7.
        let now = 10 * H;
        let shares = shares(
            &attribution(H),
            &[touch(8 * H), touch(9 * H), touch(now)],
            now,
        );
        let expected = [
            [1.0, 0.0, 1.0 / 3.0, 1.0 / 7.0],
            [0.0, 0.0, 1.0 / 3.0, 2.0 / 7.0],
            [0.0, 1.0, 1.0 / 3.0, 4.0 / 7.0],
        ];
        for (got, want) in shares.iter().zip(expected) {
            for m in 0..4 {
                assert!((got[m] - want[m]).abs() < 1e-12, "{shares:?}");
            }
        }
        for m in 0..4 {
            let sum: f64 = shares.iter().map(|s| s[m]).sum();
            assert!((sum - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn no_touch_no_share() {
        assert!(shares(&attribution(1), &[], 5).is_empty());
    }

    #[test]
    fn merged_rows_stay_sorted_and_add_up() {
        let row = |j: &str, c: f64| CreditRow {
            journey: Arc::from(j),
            channel: Arc::from("email"),
            template: Arc::from("t"),
            credit: [c; 4],
            value: [2.0 * c; 4],
        };
        let mut a = AttributionStats {
            conversions: 2,
            unattributed: 1,
            value: 10.0,
            rows: vec![row("b", 1.0)],
        };
        let b = AttributionStats {
            conversions: 3,
            unattributed: 0,
            value: 5.0,
            rows: vec![row("a", 0.5), row("b", 0.25)],
        };
        a.merge(&b);
        assert_eq!((a.conversions, a.unattributed, a.value), (5, 1, 15.0));
        assert_eq!(a.rows, vec![row("a", 0.5), row("b", 1.25)]);
    }
}
