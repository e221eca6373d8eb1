//! Static analyses of one journey's DAG, exact over all of its paths:
//! the most sends per channel and in all, the longest an instance can stay
//! active, the unreachable nodes, and the sends that caps always block
//! (warning W0004). Each is a dynamic programme over a topological order of
//! [`Journey::graph`].
//!
//! Durations are worst cases: a `wait for` takes its whole window, `wait
//! until HH:MM` the longest gap between allowed days, a non-transactional
//! send the whole quiet-hours window when time may have passed since the
//! last send (one made at the same instant proves it is not quiet time), and
//! an `on capped wait` send the longest cap window involved plus quiet hours
//! again. `wait until <expr>` has no bound: it counts as 0 and sets
//! [`Limits::unbounded`].

use std::collections::BTreeMap;

use petgraph::algo::toposort;
use petgraph::graph::NodeIndex;

use super::program::{
    Cap, Channel, ChannelId, Edge, Journey, Limits, NodeId, NodeKind, Policy, Program, QuietHours,
    Reentry, SendNode,
};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const MINUTE_MS: i64 = 60 * 1000;

/// Most distinct cap states kept per node; beyond it the cap warning gives
/// up below that node (it never warns without proof).
const MAX_CAP_STATES: usize = 512;

/// The analyses' results for one journey.
pub(crate) struct Analysis {
    pub(crate) limits: Limits,
    /// Sends the caps always block, with the index of a blocking cap in
    /// journey caps followed by policy caps.
    pub(crate) always_capped: Vec<(NodeId, usize)>,
}

/// What the analyses need to know about a journey's sending rules.
struct Rules<'a> {
    /// Journey caps, then policy caps: all count this journey's own sends.
    caps: Vec<&'a Cap>,
    /// Length of the quiet-hours window in ms (0: none).
    quiet_ms: i64,
}

impl Rules<'_> {
    fn applies(cap: &Cap, channel: ChannelId) -> bool {
        cap.channel.is_none_or(|c| c == channel)
    }

    /// The longest window of the caps that can hold back any alternative.
    fn longest_window(&self, send: &SendNode) -> i64 {
        self.caps
            .iter()
            .filter(|cap| {
                send.alternatives
                    .iter()
                    .any(|a| Rules::applies(cap, a.channel))
            })
            .map(|cap| cap.window_ms)
            .max()
            .unwrap_or(0)
    }
}

/// A journey with what every analysis walks: successors, a topological
/// order and the nodes the entry reaches.
struct Dag<'a> {
    journey: &'a Journey,
    adjacency: &'a Adjacency,
    order: &'a [usize],
    reachable: &'a [bool],
}

pub(crate) fn analyze(journey: &Journey, channels: &[Channel], policy: &Policy) -> Analysis {
    let rules = Rules {
        caps: journey.caps.iter().chain(&policy.caps).collect(),
        quiet_ms: journey
            .quiet_hours
            .as_ref()
            .or(policy.quiet_hours.as_ref())
            .map_or(0, quiet_length_ms),
    };
    let adjacency = adjacency(journey);
    let Some(order) = topological_order(journey, &adjacency) else {
        return Analysis {
            limits: Limits::default(),
            always_capped: Vec::new(),
        };
    };
    let reachable = reachable(&adjacency);
    let dag = Dag {
        journey,
        adjacency: &adjacency,
        order: &order,
        reachable: &reachable,
    };
    let mut limits = sends(&dag, channels, false);
    let (max_active_ms, unbounded) = longest_active(&dag, &rules);
    limits.max_active_ms = max_active_ms;
    limits.unbounded = unbounded;
    limits.unreachable = (0..journey.nodes.len())
        .filter(|&n| !reachable[n])
        .map(|n| n as NodeId)
        .collect();
    let always_capped = if rules.caps.is_empty() {
        Vec::new()
    } else {
        capped_sends(&dag, &rules)
    };
    Analysis {
        limits,
        always_capped,
    }
}

/// Each node's successors in the journey, with whether the edge is a
/// `wait for` timeout; computed once for all the analyses.
type Adjacency = Vec<Vec<(bool, usize)>>;

fn adjacency(journey: &Journey) -> Adjacency {
    journey
        .nodes
        .iter()
        .map(|node| {
            node.kind
                .successors()
                .into_iter()
                .map(|(edge, s)| (edge == Edge::Timeout, s as usize))
                .filter(|&(_, s)| s < journey.nodes.len())
                .collect()
        })
        .collect()
}

/// Node ids in a topological order; `None` if the nodes form a cycle (never,
/// by construction). Ids in source pre-order already are one (every edge
/// goes to a later node), which one pass proves; petgraph's sort covers a
/// program built otherwise.
fn topological_order(journey: &Journey, adjacency: &Adjacency) -> Option<Vec<usize>> {
    let forward = adjacency
        .iter()
        .enumerate()
        .all(|(n, next)| next.iter().all(|&(_, s)| s > n));
    if forward {
        return Some((0..journey.nodes.len()).collect());
    }
    let graph = journey.graph();
    let order = toposort(&graph, None).ok()?;
    Some(order.into_iter().map(NodeIndex::index).collect())
}

fn reachable(adjacency: &Adjacency) -> Vec<bool> {
    let mut seen = vec![false; adjacency.len()];
    let mut stack = if adjacency.is_empty() {
        Vec::new()
    } else {
        vec![0usize]
    };
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        stack.extend(adjacency[n].iter().map(|&(_, s)| s).filter(|&s| !seen[s]));
    }
    seen
}

// ---------------------------------------------------------------- sends

/// Most sends per channel (a send counts for every channel of its chain,
/// since any of them may be the one used) and in all, over all paths;
/// with `counted`, only the sends caps count (not transactional ones).
fn sends(dag: &Dag, channels: &[Channel], counted: bool) -> Limits {
    let journey = dag.journey;
    // The channels this journey sends on, as dense indices.
    let mut used: Vec<ChannelId> = journey
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Send(s) => Some(s.alternatives.iter().map(|a| a.channel)),
            _ => None,
        })
        .flatten()
        .collect();
    used.sort_unstable();
    used.dedup();
    let width = used.len() + 1; // the last column counts all messages
    let mut best: Vec<Option<Vec<u32>>> = vec![None; journey.nodes.len()];
    if !journey.nodes.is_empty() {
        best[0] = Some(vec![0; width]);
    }
    let mut total = vec![0u32; width];
    for &n in dag.order {
        let Some(mut counts) = best[n].take().filter(|_| dag.reachable[n]) else {
            continue;
        };
        if let NodeKind::Send(send) = &journey.nodes[n].kind
            && !send.alternatives.is_empty()
            && !(counted && send.transactional)
        {
            for (i, channel) in used.iter().enumerate() {
                if send.alternatives.iter().any(|a| a.channel == *channel) {
                    counts[i] += 1;
                }
            }
            counts[width - 1] += 1;
        }
        for (t, c) in total.iter_mut().zip(&counts) {
            *t = (*t).max(*c);
        }
        for &(_, s) in &dag.adjacency[n] {
            let slot = best[s].get_or_insert_with(|| vec![0; width]);
            for (b, c) in slot.iter_mut().zip(&counts) {
                *b = (*b).max(*c);
            }
        }
    }
    let mut max_sends = BTreeMap::new();
    for (i, channel) in used.iter().enumerate() {
        if total[i] > 0
            && let Some(ch) = channels.get(*channel as usize)
        {
            max_sends.insert(ch.name.to_string(), total[i]);
        }
    }
    Limits {
        max_sends,
        max_messages: total[width - 1],
        ..Limits::default()
    }
}

// ---------------------------------------------------------------- all journeys

/// One policy cap against every journey together (LANGUAGE.md §4.4,
/// `journey check --summary`): the most sends the cap counts that one
/// customer could be offered within its window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapWorstCase {
    /// The cap's index in the policy.
    pub cap: usize,
    /// `None`: no bound (a journey with `reentry always` can send again as
    /// soon as its instance ends).
    pub total: Option<u64>,
    /// Each journey that can send what the cap counts, and its share;
    /// largest first (no bound first), then by name.
    pub journeys: Vec<(String, Option<u64>)>,
}

/// For each policy cap, in the policy's order, the worst case over all
/// journeys at once: per journey, the most counted sends of one instance
/// on the cap's channel (of any channel for `cap messages`), times the
/// entries its re-entry rule allows within the cap's window, at most what
/// its own caps allow there. An upper bound: an instance's sends may be
/// spread over more than the window.
pub fn cross_journey(program: &Program) -> Vec<CapWorstCase> {
    let live: Vec<(&Journey, Limits)> = program
        .journeys
        .iter()
        .filter(|j| j.retired.is_none())
        .map(|j| (j, counted_sends(j, &program.channels)))
        .collect();
    program
        .policy
        .caps
        .iter()
        .enumerate()
        .map(|(index, cap)| {
            let channel = cap
                .channel
                .and_then(|c| program.channels.get(c as usize))
                .map(|c| c.name.to_string());
            let mut journeys: Vec<(String, Option<u64>)> = live
                .iter()
                .filter_map(|(journey, limits)| {
                    let per_instance = match &channel {
                        Some(name) => limits.max_sends.get(name).copied().unwrap_or(0),
                        None => limits.max_messages,
                    };
                    if per_instance == 0 {
                        return None;
                    }
                    let share = worst_share(journey, cap, u64::from(per_instance));
                    Some((journey.name.to_string(), share))
                })
                .collect();
            journeys.sort_by(|a, b| match (a.1, b.1) {
                (None, None) => a.0.cmp(&b.0),
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.0.cmp(&b.0)),
            });
            let total = journeys
                .iter()
                .try_fold(0u64, |sum, (_, n)| n.map(|n| sum.saturating_add(n)));
            CapWorstCase {
                cap: index,
                total,
                journeys,
            }
        })
        .collect()
}

/// One journey's most sends that `cap` counts within its window: `None`
/// when re-entry puts no bound on it.
fn worst_share(journey: &Journey, cap: &Cap, per_instance: u64) -> Option<u64> {
    let window = cap.window_ms.max(1);
    let windows_of = |ms: i64| (window + ms.max(1) - 1) / ms.max(1);
    let entries = match journey.reentry {
        Reentry::Never => Some(1),
        Reentry::After { ms } => Some(windows_of(ms).max(1) as u64),
        Reentry::Always => None,
    };
    // The journey's own caps that count the same sends bound it.
    let own = journey
        .caps
        .iter()
        .filter(|c| c.channel.is_none() || c.channel == cap.channel)
        .map(|c| u64::from(c.limit).saturating_mul(windows_of(c.window_ms) as u64))
        .min();
    let share = entries.map(|e| e.saturating_mul(per_instance));
    match (share, own) {
        (Some(s), Some(o)) => Some(s.min(o)),
        (None, Some(o)) => Some(o),
        (s, None) => s,
    }
}

/// [`Limits`] of the sends caps count (transactional ones left out).
fn counted_sends(journey: &Journey, channels: &[Channel]) -> Limits {
    let adjacency = adjacency(journey);
    let Some(order) = topological_order(journey, &adjacency) else {
        return Limits::default();
    };
    let reachable = reachable(&adjacency);
    let dag = Dag {
        journey,
        adjacency: &adjacency,
        order: &order,
        reachable: &reachable,
    };
    sends(&dag, channels, true)
}

// ---------------------------------------------------------------- time

/// The longest an instance can stay active, and whether a `wait until
/// <expr>` makes it unbounded. The state per node is the longest time to
/// reach it, split by whether time may have passed since the last send
/// (`idle`, index 1) or not (index 0).
fn longest_active(dag: &Dag, rules: &Rules) -> (i64, bool) {
    let journey = dag.journey;
    let mut best: Vec<[Option<i64>; 2]> = vec![[None, None]; journey.nodes.len()];
    if let Some(entry) = best.first_mut() {
        entry[1] = Some(0);
    }
    let mut longest = 0i64;
    let mut unbounded = false;
    for &n in dag.order {
        if !dag.reachable[n] {
            continue;
        }
        let kind = &journey.nodes[n].kind;
        unbounded |= matches!(kind, NodeKind::WaitUntil { .. });
        let mut out: [Option<i64>; 2] = [None, None];
        for (idle, at) in best[n].iter().enumerate() {
            let Some(at) = at else { continue };
            let (spent, idle_after) = step_time(kind, rules, idle == 1);
            let after = at.saturating_add(spent);
            let slot = &mut out[usize::from(idle_after)];
            *slot = Some(slot.map_or(after, |s| s.max(after)));
            longest = longest.max(after);
        }
        for &(_, s) in &dag.adjacency[n] {
            for (i, value) in out.iter().enumerate() {
                if let Some(v) = value {
                    let slot = &mut best[s][i];
                    *slot = Some(slot.map_or(*v, |s| s.max(*v)));
                }
            }
        }
    }
    (longest, unbounded)
}

/// The longest time a node can take, and whether time may have passed
/// since the last send once it is done.
fn step_time(kind: &NodeKind, rules: &Rules, idle: bool) -> (i64, bool) {
    let waited = |ms: i64| (ms, idle || ms > 0);
    match kind {
        NodeKind::Wait { ms, .. } => waited(*ms),
        NodeKind::WaitUntilTime { weekdays, .. } => waited(longest_gap_ms(*weekdays)),
        NodeKind::WaitForEvent { within_ms, .. }
        | NodeKind::WaitForEngagement { within_ms, .. } => waited(*within_ms),
        NodeKind::WaitUntil { .. } => (0, true),
        NodeKind::Send(send) if !send.transactional && !send.alternatives.is_empty() => {
            // `at best hour within W`: up to W before the send is decided,
            // which then meets quiet hours as any send after a wait.
            let best = send.best_hour_ms.unwrap_or(0);
            let idle = idle || best > 0;
            let quiet = if idle { rules.quiet_ms } else { 0 };
            let capped = if send.wait_when_capped {
                let window = rules.longest_window(send);
                if window > 0 {
                    window.saturating_add(rules.quiet_ms)
                } else {
                    0
                }
            } else {
                0
            };
            (best.saturating_add(quiet).saturating_add(capped), false)
        }
        NodeKind::Send(send) => match send.best_hour_ms {
            Some(best) => waited(best),
            None => (0, idle),
        },
        _ => (0, idle),
    }
}

/// The longest wait of `wait until HH:MM [on days]`: the largest gap between
/// two allowed weekdays (a day with no list).
fn longest_gap_ms(weekdays: u8) -> i64 {
    let days: Vec<i64> = (0..7).filter(|d| weekdays & (1 << d) != 0).collect();
    if days.is_empty() {
        return DAY_MS;
    }
    let gap = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let next = days.get(i + 1).copied().unwrap_or(days[0] + 7);
            next - d
        })
        .max()
        .unwrap_or(7);
    gap * DAY_MS
}

fn quiet_length_ms(q: &QuietHours) -> i64 {
    let minutes = (i64::from(q.to) - i64::from(q.from)).rem_euclid(24 * 60);
    minutes * MINUTE_MS
}

// ---------------------------------------------------------------- caps

/// A send counted by a cap on some path: the time since it went out, as an
/// interval (shortest, longest), and whether it certainly counts (a chain
/// whose channels are not all under the cap may have gone out on another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Counted {
    /// The cap (journey caps, then policy caps) that counts it.
    cap: usize,
    lo: i64,
    hi: i64,
    certain: bool,
}

/// A path's cap situation: per cap (journey caps, then policy caps), its
/// counted sends that may still be inside its window, most recent first;
/// and whether time may have passed since the last non-transactional send.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CapState {
    /// Grouped by cap, most recent first within a cap: one allocation per
    /// state keeps the many state copies cheap.
    recent: Vec<Counted>,
    idle: bool,
}

/// How a send fares against the caps in one state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Blocked, by this cap (journey caps, then policy caps).
    Blocked(usize),
    Free,
    /// Blocked or not, depending on when the earlier sends went out.
    Either,
}

impl CapState {
    /// Time passes: between `lo` and `hi` ms.
    fn advance(&mut self, rules: &Rules, lo: i64, hi: i64) {
        if hi <= 0 {
            return;
        }
        for c in self.recent.iter_mut() {
            c.lo = c.lo.saturating_add(lo);
            c.hi = c.hi.saturating_add(hi);
        }
        self.recent.retain(|c| c.lo < rules.caps[c.cap].window_ms);
        self.idle = true;
    }

    /// Sends certainly inside cap `i`'s window, and sends possibly inside it.
    fn load(&self, rules: &Rules, i: usize) -> (usize, usize) {
        let window = rules.caps[i].window_ms;
        let mut certain = 0;
        let mut possible = 0;
        for c in self.recent.iter().filter(|c| c.cap == i) {
            possible += 1;
            certain += usize::from(c.certain && c.hi < window);
        }
        (certain, possible)
    }

    fn verdict(&self, rules: &Rules, send: &SendNode) -> Verdict {
        let mut blocking = None;
        let mut all_blocked = true;
        let mut any_free = false;
        for alt in &send.alternatives {
            let mut blocked_by = None;
            let mut may_block = false;
            for (i, cap) in rules.caps.iter().enumerate() {
                if !Rules::applies(cap, alt.channel) {
                    continue;
                }
                let (certain, possible) = self.load(rules, i);
                let limit = cap.limit as usize;
                if certain >= limit {
                    blocked_by.get_or_insert(i);
                }
                may_block |= possible >= limit;
            }
            match blocked_by {
                Some(i) => {
                    blocking.get_or_insert(i);
                }
                None => all_blocked = false,
            }
            any_free |= !may_block;
        }
        match blocking {
            Some(i) if all_blocked => Verdict::Blocked(i),
            _ if any_free => Verdict::Free,
            _ => Verdict::Either,
        }
    }

    /// Counts a send that went out now: certainly for the caps every
    /// alternative falls under, possibly for those only some do.
    fn record(&mut self, rules: &Rules, send: &SendNode) {
        for (i, cap) in rules.caps.iter().enumerate() {
            let applies = send
                .alternatives
                .iter()
                .filter(|a| Rules::applies(cap, a.channel))
                .count();
            if applies > 0 {
                let at = self.recent.iter().position(|c| c.cap >= i);
                let counted = Counted {
                    cap: i,
                    lo: 0,
                    hi: 0,
                    certain: applies == send.alternatives.len(),
                };
                self.recent.insert(at.unwrap_or(self.recent.len()), counted);
            }
        }
        self.idle = false;
    }
}

/// The cap states reaching a node: `None` when there are too many to follow.
type States = Option<Vec<CapState>>;

/// Sends that every path reaches with the caps already used up. Times
/// between sends are intervals (a `wait for` may end at once or at its
/// window), a send whose fate is uncertain splits the state in two, and a
/// send is reported only when every state blocks it for certain — a warning
/// is a proof. It assumes the user is reachable: earlier sends on the same
/// channel went out (a user unreachable on it gets none of them anyway).
fn capped_sends(dag: &Dag, rules: &Rules) -> Vec<(NodeId, usize)> {
    let journey = dag.journey;
    let mut states: Vec<States> = vec![Some(Vec::new()); journey.nodes.len()];
    if let Some(Some(entry)) = states.first_mut() {
        entry.push(CapState {
            recent: Vec::new(),
            idle: true,
        });
    }
    let mut capped = Vec::new();
    for &n in dag.order {
        if !dag.reachable[n] {
            continue;
        }
        let kind = &journey.nodes[n].kind;
        let mut outgoing = states[n].take().map(|mut list| {
            list.sort();
            list.dedup();
            let (out, blocked) = cap_step(kind, rules, list);
            if let Some(cap) = blocked {
                capped.push((n as NodeId, cap));
            }
            out
        });
        let next = &dag.adjacency[n];
        for (i, &(timeout, s)) in next.iter().enumerate() {
            // The last edge takes the states; the others copy them.
            let out = if i + 1 == next.len() {
                outgoing.take()
            } else {
                outgoing.clone()
            };
            let Some(mut out) = out else {
                states[s] = None;
                continue;
            };
            if let Some(within) = wait_window(kind) {
                // The event may come at once; the timeout takes the whole window.
                let lo = if timeout { within } else { 0 };
                out.iter_mut().for_each(|st| st.advance(rules, lo, within));
            }
            merge(&mut states[s], out);
        }
    }
    capped.sort_unstable();
    capped
}

fn wait_window(kind: &NodeKind) -> Option<i64> {
    match kind {
        NodeKind::WaitForEvent { within_ms, .. }
        | NodeKind::WaitForEngagement { within_ms, .. } => Some(*within_ms),
        _ => None,
    }
}

fn merge(into: &mut States, from: Vec<CapState>) {
    if let Some(list) = into.as_mut() {
        list.extend(from);
        if list.len() > MAX_CAP_STATES {
            list.sort();
            list.dedup();
            if list.len() > MAX_CAP_STATES {
                *into = None;
            }
        }
    }
}

/// The states after a node (before its edges), and the blocking cap when
/// the node is a send every state blocks.
fn cap_step(
    kind: &NodeKind,
    rules: &Rules,
    mut states: Vec<CapState>,
) -> (Vec<CapState>, Option<usize>) {
    let (lo, hi) = match kind {
        NodeKind::Wait { ms, .. } => (*ms, *ms),
        NodeKind::WaitUntilTime { weekdays, .. } => (0, longest_gap_ms(*weekdays)),
        NodeKind::WaitUntil { .. } => (0, i64::MAX),
        NodeKind::Send(send) if !send.transactional && !send.alternatives.is_empty() => {
            return cap_send(send, rules, states);
        }
        NodeKind::Send(send) => (0, send.best_hour_ms.unwrap_or(0)),
        _ => (0, 0),
    };
    states.iter_mut().for_each(|s| s.advance(rules, lo, hi));
    (states, None)
}

fn cap_send(
    send: &SendNode,
    rules: &Rules,
    states: Vec<CapState>,
) -> (Vec<CapState>, Option<usize>) {
    let mut out = Vec::with_capacity(states.len());
    let mut blocking: Option<usize> = None;
    let mut all_blocked = !states.is_empty();
    let capped_wait = rules.longest_window(send).saturating_add(rules.quiet_ms);
    for mut state in states {
        if let Some(best) = send.best_hour_ms {
            // It may go at once, or wait up to the window for the hour.
            state.advance(rules, 0, best);
        }
        if state.idle {
            // Quiet hours may defer it, unless a send just went out.
            state.advance(rules, 0, rules.quiet_ms);
        }
        let verdict = state.verdict(rules, send);
        if let Verdict::Blocked(cap) = verdict {
            blocking.get_or_insert(cap);
        } else {
            all_blocked = false;
        }
        match verdict {
            Verdict::Free => state.record(rules, send),
            _ if send.wait_when_capped => {
                state.advance(rules, 0, capped_wait);
                state.record(rules, send);
            }
            Verdict::Blocked(_) => {}
            Verdict::Either => {
                out.push(state.clone());
                state.record(rules, send);
            }
        }
        out.push(state);
    }
    let always = blocking.filter(|_| all_blocked && !send.wait_when_capped);
    (out, always)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_gaps() {
        assert_eq!(longest_gap_ms(0), DAY_MS);
        assert_eq!(longest_gap_ms(1), 7 * DAY_MS);
        // monday and thursday: thursday → monday is 4 days
        assert_eq!(longest_gap_ms(0b0000_1001), 4 * DAY_MS);
        assert_eq!(longest_gap_ms(0x7f), DAY_MS);
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = QuietHours {
            from: 21 * 60,
            to: 8 * 60,
            zone: None,
        };
        assert_eq!(quiet_length_ms(&q), 11 * 60 * MINUTE_MS);
    }
}
