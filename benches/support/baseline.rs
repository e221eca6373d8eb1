//! The abandoned-cart journey written by hand, as a team without the
//! language would: `serde_json` into borrowed typed structs (`context` and
//! unused fields skipped), a hash map of per-user state, a binary heap of
//! timers with lazy deletion. It follows the runtime's semantics for that
//! one journey (with `policy.journey`'s caps and quiet hours): the same
//! stream gives the same sends.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;

use journey::io::segment::{parse_timestamp_ms, write_timestamp_ms};
use journey::runtime::clock::{ZoneId, Zones, in_window, next_local_time};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::hash::Hasher;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const DEDUP_WINDOW: i64 = 7 * DAY;
const QUIET_FROM: u16 = 21 * 60;
const QUIET_TO: u16 = 8 * 60;
const SMS_MARKETS: [&str; 5] = ["US", "CA", "GB", "IE", "AU"];

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "userId", default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(rename = "anonymousId", default, borrow)]
    anonymous_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    properties: Option<&'a RawValue>,
    #[serde(default, borrow)]
    traits: Option<&'a RawValue>,
    #[serde(default, borrow)]
    context: Option<Context<'a>>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Context<'a> {
    #[serde(default, borrow)]
    timezone: Option<Cow<'a, str>>,
}

/// `Some(None)`: present and `null` (clears); `None`: absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Traits<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    email: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    phone: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    push_token: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    first_name: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    timezone: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    country: Option<Option<Cow<'a, str>>>,
    #[serde(default, deserialize_with = "present")]
    unsubscribed: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    consent: Option<Option<Consent>>,
}

#[derive(Deserialize)]
struct Consent {
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    sms: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    push: Option<Option<bool>>,
}

#[derive(Deserialize)]
struct CartAbandoned<'a> {
    #[serde(default, borrow)]
    cart_id: Option<Cow<'a, str>>,
    #[serde(default)]
    total: Option<f64>,
    #[serde(default)]
    items: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct OrderCompleted<'a> {
    #[serde(default, borrow)]
    cart_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Engagement<'a> {
    #[serde(default, borrow)]
    template: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    journey: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }
}

#[derive(Default)]
struct Profile {
    email: Option<Box<str>>,
    phone: Option<Box<str>>,
    push_token: Option<Box<str>>,
    first_name: Option<Box<str>>,
    /// Index into the interned zones; `None`: UTC.
    zone: Option<u16>,
    has_zone: bool,
    sms_market: bool,
    unsubscribed: Option<bool>,
    consent: [Option<bool>; 3],
}

impl Profile {
    fn reachable(&self, channel: Channel) -> bool {
        let address = match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.phone,
            Channel::Push => &self.push_token,
        };
        address.as_deref().is_some_and(|a| !a.is_empty())
            && self.consent[channel as usize] != Some(false)
            && self.unsubscribed != Some(true)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Wait1h,
    Reminder,
    WaitClick,
    Push,
    Wait1d,
    Discount,
    Wait3d,
}

struct Instance {
    step: Step,
    entry: u32,
    entered_at: i64,
    cart_id: Option<Box<str>>,
    total: f64,
    items: u32,
    reminder_sent: bool,
    clicked: bool,
    sends: Vec<u8>,
}

#[derive(Default)]
struct User {
    key: Box<str>,
    profile: Profile,
    entries: u32,
    last_entry_at: i64,
    generation: u32,
    instance: Option<Box<Instance>>,
    /// A completed instance whose goal is still watched.
    watch: Option<Box<Instance>>,
    /// Counted sends of the last 7 days: (at, channel).
    sent: Vec<(i64, Channel)>,
}

/// Counters the benchmark compares with the runtime's actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub enters: u64,
    pub sends: u64,
    pub suppressed: u64,
    pub conversions: u64,
    pub bytes: u64,
}

pub struct Baseline {
    ids: FxHashMap<Box<str>, u32>,
    users: Vec<User>,
    timers: BinaryHeap<Reverse<(i64, u32, u32)>>,
    clock: i64,
    zone_names: FxHashMap<Box<str>, u16>,
    zones: Vec<ZoneId>,
    zone_cache: Zones,
    dedup_order: VecDeque<(i64, u64)>,
    dedup: FxHashSet<u64>,
    out: String,
    pub counts: Counts,
}

enum Decision {
    Sent,
    Suppressed,
    Defer(i64),
}

impl Default for Baseline {
    fn default() -> Baseline {
        Baseline {
            ids: FxHashMap::default(),
            users: Vec::new(),
            timers: BinaryHeap::new(),
            clock: i64::MIN,
            zone_names: FxHashMap::default(),
            zones: Vec::new(),
            zone_cache: Zones::default(),
            dedup_order: VecDeque::new(),
            dedup: FxHashSet::default(),
            out: String::with_capacity(512),
            counts: Counts::default(),
        }
    }
}

impl Baseline {
    /// One NDJSON line; malformed lines are skipped.
    pub fn line(&mut self, text: &str) {
        let Ok(line) = serde_json::from_str::<Line<'_>>(text) else {
            return;
        };
        let Some(key) = line.user_id.as_deref().or(line.anonymous_id.as_deref()) else {
            return;
        };
        let Some(ts) = parse_timestamp_ms(&line.timestamp) else {
            return;
        };
        let now = ts.max(self.clock);
        self.advance(now);
        match &*line.kind {
            "identify" => {
                if !self.fresh(line.message_id.as_deref(), now) {
                    return;
                }
                let u = self.intern(key);
                let tz = line.context.as_ref().and_then(|c| c.timezone.as_deref());
                self.identify(u, line.traits, tz);
            }
            "track" => match line.event.as_deref() {
                Some("cart_abandoned") => {
                    let u = self.intern(key);
                    if !self.fresh(line.message_id.as_deref(), now) {
                        return;
                    }
                    let props = line.properties.map(|p| serde_json::from_str(p.get()));
                    let Some(Ok(cart)) = props else {
                        return;
                    };
                    self.cart_abandoned(u, cart, now);
                }
                Some("Order Completed") => {
                    let Some(u) = self.known(key) else { return };
                    if !self.fresh(line.message_id.as_deref(), now) {
                        return;
                    }
                    let order = line
                        .properties
                        .and_then(|p| serde_json::from_str::<OrderCompleted<'_>>(p.get()).ok());
                    let cart = order.and_then(|o| o.cart_id);
                    self.order(u, cart.as_deref(), now);
                }
                Some("message.clicked") => {
                    let Some(u) = self.known(key) else { return };
                    if !self.fresh(line.message_id.as_deref(), now) {
                        return;
                    }
                    let e = line
                        .properties
                        .and_then(|p| serde_json::from_str::<Engagement<'_>>(p.get()).ok());
                    let ours = e.as_ref().is_some_and(|e| {
                        e.template.as_deref() == Some("cart_reminder")
                            && e.journey.as_deref().is_none_or(|j| j == "abandoned_cart")
                    });
                    if ours {
                        self.clicked(u, now);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Fires every remaining timer.
    pub fn finish(&mut self) {
        while let Some(&Reverse((due, _, _))) = self.timers.peek() {
            self.advance(due);
        }
    }

    fn advance(&mut self, t: i64) {
        while let Some(&Reverse((due, u, generation))) = self.timers.peek() {
            if due > t {
                break;
            }
            self.timers.pop();
            self.clock = self.clock.max(due);
            let user = &mut self.users[u as usize];
            if user.generation != generation {
                continue;
            }
            let Some(mut inst) = user.instance.take() else {
                continue;
            };
            inst.step = match inst.step {
                Step::Wait1h => Step::Reminder,
                Step::WaitClick => Step::Push,
                Step::Wait1d => Step::Discount,
                Step::Wait3d => {
                    self.end(u, inst, "completed", due);
                    continue;
                }
                retry => retry,
            };
            self.run(u, inst, due);
        }
        self.clock = self.clock.max(t);
    }

    fn fresh(&mut self, id: Option<&str>, now: i64) -> bool {
        let Some(id) = id else { return true };
        while let Some(&(at, h)) = self.dedup_order.front() {
            if at > now - DEDUP_WINDOW {
                break;
            }
            self.dedup_order.pop_front();
            self.dedup.remove(&h);
        }
        let mut hasher = FxHasher::default();
        hasher.write(id.as_bytes());
        let h = hasher.finish();
        if self.dedup.insert(h) {
            self.dedup_order.push_back((now, h));
            true
        } else {
            false
        }
    }

    fn known(&self, key: &str) -> Option<u32> {
        self.ids
            .get(key)
            .copied()
            .filter(|&u| self.users[u as usize].entries > 0)
    }

    fn intern(&mut self, key: &str) -> u32 {
        if let Some(&u) = self.ids.get(key) {
            return u;
        }
        let u = self.users.len() as u32;
        self.ids.insert(key.into(), u);
        self.users.push(User {
            key: key.into(),
            last_entry_at: i64::MIN,
            ..User::default()
        });
        u
    }

    fn zone_index(&mut self, name: &str) -> Option<u16> {
        if let Some(&i) = self.zone_names.get(name) {
            return Some(i);
        }
        let zone = self.zone_cache.get(name)?;
        let i = self.zones.len() as u16;
        self.zones.push(zone);
        self.zone_names.insert(name.into(), i);
        Some(i)
    }

    fn identify(&mut self, u: u32, traits: Option<&RawValue>, context_tz: Option<&str>) {
        let traits = traits.and_then(|t| serde_json::from_str::<Traits<'_>>(t.get()).ok());
        let mut zone_update = None;
        if let Some(t) = &traits
            && let Some(zone) = &t.timezone
        {
            zone_update = Some(zone.as_deref().map(|name| (self.zone_index(name), true)));
        }
        let context_zone = context_tz.map(|name| self.zone_index(name));
        let p = &mut self.users[u as usize].profile;
        if let Some(t) = traits {
            let boxed = |v: Option<Cow<'_, str>>| v.map(|s| Box::from(&*s));
            if let Some(v) = t.email {
                p.email = boxed(v);
            }
            if let Some(v) = t.phone {
                p.phone = boxed(v);
            }
            if let Some(v) = t.push_token {
                p.push_token = boxed(v);
            }
            if let Some(v) = t.first_name {
                p.first_name = boxed(v);
            }
            if let Some(v) = t.country {
                p.sms_market = v.is_some_and(|c| SMS_MARKETS.contains(&&*c.to_uppercase()));
            }
            if let Some(v) = t.unsubscribed {
                p.unsubscribed = v;
            }
            match t.consent {
                Some(Some(c)) => {
                    for (slot, v) in [c.email, c.sms, c.push].into_iter().enumerate() {
                        if let Some(v) = v {
                            p.consent[slot] = v;
                        }
                    }
                }
                Some(None) => p.consent = [None; 3],
                None => {}
            }
            if let Some(z) = zone_update {
                (p.zone, p.has_zone) = z.unwrap_or((None, false));
            }
        }
        if !p.has_zone
            && let Some(z) = context_zone
        {
            (p.zone, p.has_zone) = (z, true);
        }
    }

    fn cart_abandoned(&mut self, u: u32, cart: CartAbandoned<'_>, now: i64) {
        let items = cart.items.as_ref().map_or(0, Vec::len);
        if !cart.total.is_some_and(|t| t >= 20.0) || items == 0 {
            return;
        }
        let user = &mut self.users[u as usize];
        if user.instance.is_some()
            || (user.entries > 0 && now - user.last_entry_at < 7 * DAY)
            || !(user.profile.reachable(Channel::Email) || user.profile.reachable(Channel::Sms))
        {
            return;
        }
        user.entries += 1;
        user.last_entry_at = now;
        user.watch = None;
        let inst = Box::new(Instance {
            step: Step::Wait1h,
            entry: user.entries,
            entered_at: now,
            cart_id: cart.cart_id.map(|c| Box::from(&*c)),
            total: cart.total.unwrap_or(0.0),
            items: items as u32,
            reminder_sent: false,
            clicked: false,
            sends: Vec::new(),
        });
        self.counts.enters += 1;
        self.header(u, now, "enter");
        self.out.push_str(",\"holdout\":false}");
        self.flush();
        self.run(u, inst, now);
    }

    fn order(&mut self, u: u32, cart: Option<&str>, now: i64) {
        let user = &mut self.users[u as usize];
        let goal = |inst: &Instance| {
            now <= inst.entered_at + 7 * DAY && cart.is_some() && inst.cart_id.as_deref() == cart
        };
        if let Some(inst) = user.instance.take() {
            let reason = if goal(&inst) {
                self.convert(u, &inst, now);
                "goal"
            } else {
                "exit_event"
            };
            self.end(u, inst, reason, now);
        } else if let Some(watch) = user.watch.take() {
            if now > watch.entered_at + 7 * DAY {
                return;
            }
            if goal(&watch) {
                self.convert(u, &watch, now);
            } else {
                self.users[u as usize].watch = Some(watch);
            }
        }
    }

    fn clicked(&mut self, u: u32, now: i64) {
        let user = &mut self.users[u as usize];
        let Some(inst) = user.instance.as_mut().filter(|i| i.reminder_sent) else {
            return;
        };
        inst.clicked = true;
        if inst.step == Step::WaitClick
            && let Some(mut inst) = user.instance.take()
        {
            inst.step = Step::Wait1d;
            self.run(u, inst, now);
        }
    }

    fn run(&mut self, u: u32, mut inst: Box<Instance>, now: i64) {
        loop {
            let due = match inst.step {
                Step::Wait1h => now + HOUR,
                Step::Reminder => match self.send(u, &mut inst, &[Channel::Email], now) {
                    Decision::Defer(due) => due,
                    decision => {
                        inst.reminder_sent = matches!(decision, Decision::Sent);
                        self.header(u, now, "audience");
                        self.out
                            .push_str(",\"op\":\"add\",\"audience\":\"cart_retargeting\"}");
                        self.flush();
                        inst.step = Step::WaitClick;
                        continue;
                    }
                },
                Step::WaitClick if inst.clicked => {
                    inst.step = Step::Wait1d;
                    continue;
                }
                Step::WaitClick => now + DAY,
                Step::Push => match self.send(u, &mut inst, &[Channel::Push], now) {
                    Decision::Defer(due) => due,
                    _ => {
                        inst.step = Step::Wait1d;
                        continue;
                    }
                },
                Step::Wait1d => now + DAY,
                Step::Discount => {
                    let chain: &[Channel] = if self.users[u as usize].profile.sms_market {
                        &[Channel::Sms, Channel::Email]
                    } else {
                        &[Channel::Email]
                    };
                    match self.send(u, &mut inst, chain, now) {
                        Decision::Defer(due) => due,
                        _ => {
                            inst.step = Step::Wait3d;
                            continue;
                        }
                    }
                }
                Step::Wait3d => now + 3 * DAY,
            };
            let user = &mut self.users[u as usize];
            user.generation = user.generation.wrapping_add(1);
            self.timers.push(Reverse((due, u, user.generation)));
            user.instance = Some(inst);
            return;
        }
    }

    fn capped(sent: &[(i64, Channel)], channel: Channel, now: i64) -> bool {
        let count = |window: i64, only: Option<Channel>| {
            sent.iter()
                .filter(|(at, c)| *at > now - window && only.is_none_or(|o| o == *c))
                .count()
        };
        count(7 * DAY, None) >= 3
            || (channel == Channel::Sms && (count(7 * DAY, Some(Channel::Sms)) >= 1))
            || (channel == Channel::Sms && (count(DAY, Some(Channel::Sms)) >= 1))
    }

    fn send(&mut self, u: u32, inst: &mut Instance, chain: &[Channel], now: i64) -> Decision {
        let user = &self.users[u as usize];
        let mut any_reachable = false;
        let chosen = chain.iter().copied().find(|&c| {
            if !user.profile.reachable(c) {
                return false;
            }
            any_reachable = true;
            !Baseline::capped(&user.sent, c, now)
        });
        let template = |c: Channel| match (inst.step, c) {
            (Step::Reminder, _) => "cart_reminder",
            (Step::Push, _) => "cart_push",
            (_, Channel::Sms) => "cart_discount_sms",
            _ => "cart_discount_email",
        };
        let Some(channel) = chosen else {
            self.counts.suppressed += 1;
            let reason = if any_reachable {
                "capped"
            } else {
                "unreachable"
            };
            self.header(u, now, "suppress");
            let _ = write!(
                self.out,
                ",\"channel\":\"{}\",\"template\":\"{}\",\"reason\":\"{reason}\"}}",
                chain[0].name(),
                template(chain[0])
            );
            self.flush();
            return Decision::Suppressed;
        };
        // The runtime's zone cache: the same local-time cost on both sides.
        let zone = user.profile.zone.map(|z| self.zones[z as usize]);
        if in_window(
            self.zone_cache.local_minute(zone, now),
            QUIET_FROM,
            QUIET_TO,
        ) {
            let tz = self.zone_cache.tz(zone);
            // The bench's times are all in range: a window always ends.
            return next_local_time(now, tz, QUIET_TO, 0)
                .map_or(Decision::Suppressed, Decision::Defer);
        }
        let node = inst.step as u8;
        inst.sends.push(node);
        let user = &mut self.users[u as usize];
        user.sent.retain(|(at, _)| *at > now - 7 * DAY);
        user.sent.push((now, channel));
        self.counts.sends += 1;
        let user = &self.users[u as usize];
        let p = &user.profile;
        let to = match channel {
            Channel::Email => &p.email,
            Channel::Sms => &p.phone,
            Channel::Push => &p.push_token,
        };
        let mut out = std::mem::take(&mut self.out);
        self.header_into(&mut out, u, now, "send");
        let _ = write!(
            out,
            ",\"channel\":\"{}\",\"template\":\"{}\",\"message_id\":\"abandoned_cart:{}:{}:{node}\",\"to\":{}",
            channel.name(),
            template(channel),
            user.key,
            inst.entry,
            serde_json::Value::from(to.as_deref().unwrap_or(""))
        );
        let name = p.first_name.as_deref();
        match (inst.step, channel) {
            (Step::Reminder, _) => {
                let _ = write!(
                    out,
                    ",\"vars\":{{}},\"subject\":{},\"body\":\"You left {} item(s) worth ${} in your cart. They are saved for you: pick up where you left off.\"",
                    serde_json::Value::from(format!("{}, your cart is waiting", name.unwrap_or("Hi"))),
                    inst.items,
                    inst.total
                );
            }
            (Step::Push, _) => out.push_str(
                ",\"vars\":{},\"body\":\"Still thinking it over? Your cart is saved.\"",
            ),
            (_, Channel::Sms) => out.push_str(
                ",\"vars\":{\"code\":\"CART10\"},\"body\":\"Your cart is still waiting. Use CART10 for 10% off today. Reply STOP to opt out.\"",
            ),
            _ => {
                let body = format!(
                    "Hi {},\n\nComplete your order with the code CART10 and save 10% on your ${} cart.",
                    name.unwrap_or("there"),
                    inst.total
                );
                let _ = write!(
                    out,
                    ",\"vars\":{{\"code\":\"CART10\"}},\"subject\":\"10% off the cart you left behind\",\"body\":{}",
                    serde_json::Value::from(body)
                );
            }
        }
        out.push('}');
        self.out = out;
        self.flush();
        Decision::Sent
    }

    fn convert(&mut self, u: u32, inst: &Instance, now: i64) {
        self.counts.conversions += 1;
        let mut out = std::mem::take(&mut self.out);
        self.header_into(&mut out, u, now, "convert");
        out.push_str(",\"goal\":\"Order Completed\",\"holdout\":false,\"message_ids\":[");
        for (i, node) in inst.sends.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let key = &self.users[u as usize].key;
            let _ = write!(out, "\"abandoned_cart:{key}:{}:{node}\"", inst.entry);
        }
        out.push_str("]}");
        self.out = out;
        self.flush();
    }

    fn end(&mut self, u: u32, inst: Box<Instance>, reason: &str, now: i64) {
        self.header(u, now, "exit");
        let _ = write!(self.out, ",\"reason\":\"{reason}\"}}");
        self.flush();
        if !matches!(inst.step, Step::Wait1h | Step::Reminder) {
            self.header(u, now, "audience");
            self.out
                .push_str(",\"op\":\"remove\",\"audience\":\"cart_retargeting\"}");
            self.flush();
        }
        let user = &mut self.users[u as usize];
        user.generation = user.generation.wrapping_add(1);
        user.watch = (reason == "completed").then_some(inst);
    }

    fn header(&mut self, u: u32, now: i64, kind: &str) {
        let mut out = std::mem::take(&mut self.out);
        self.header_into(&mut out, u, now, kind);
        self.out = out;
    }

    fn header_into(&self, out: &mut String, u: u32, now: i64, kind: &str) {
        out.clear();
        out.push_str("{\"at\":\"");
        write_timestamp_ms(now, out);
        let _ = write!(
            out,
            "\",\"kind\":\"{kind}\",\"journey\":\"abandoned_cart\",\"user_id\":\"{}\"",
            self.users[u as usize].key
        );
    }

    /// Hands the line to the sink, which discards it.
    fn flush(&mut self) {
        self.counts.bytes += std::hint::black_box(self.out.len()) as u64 + 1;
        self.out.clear();
    }
}
