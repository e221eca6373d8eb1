//! What one user does on one day: sessions of browsing, carts, orders and the
//! rarer events of the shared vocabulary, with their consequences (an order
//! after an abandoned cart, a review after an order, opens and clicks of the
//! messages the example journeys send), as compact records rendered later.

use super::catalog::{self, template};
use super::profile::Profile;
use super::rng::Rng;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const SALT_DAY: u64 = 0x0064_6179;
const SALT_ID: u64 = 0x6964;

/// Share of events whose `timestamp` is earlier than their place in the
/// stream (a client that was offline), and of events sent twice (a retry).
const LATE_RATE: f64 = 0.002;
const DUPLICATE_RATE: f64 = 0.005;
/// Chance, per active user and day, of an anonymous browsing session.
const ANONYMOUS_SESSION_RATE: f64 = 0.03;

/// One line to be: where it sorts, what it says, and who says it.
#[derive(Clone, Debug)]
pub(super) struct Record {
    /// Its place in the stream.
    pub sort_at: i64,
    /// Its `timestamp`: `sort_at`, or earlier for a late event.
    pub at: i64,
    pub user: u32,
    /// The day that generated it and its number within that user's day:
    /// with `user`, a unique key.
    pub day: u32,
    pub seq: u32,
    /// Bits of its `messageId` (shared by a duplicate and its original).
    pub id: u64,
    /// Sent by the app (else the web site).
    pub from_app: bool,
    /// Sent before the user logged in: `anonymousId` instead of `userId`.
    pub anonymous: bool,
    pub body: Body,
}

impl Record {
    pub(super) fn key(&self) -> (i64, u32, u32, u32) {
        (self.sort_at, self.user, self.day, self.seq)
    }
}

/// Up to three products of a cart or an order.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Items {
    products: [u16; 3],
    len: u8,
}

impl Items {
    fn one(product: u16) -> Items {
        Items {
            products: [product, 0, 0],
            len: 1,
        }
    }

    fn add(&mut self, product: u16) {
        if usize::from(self.len) < self.products.len() && !self.as_slice().contains(&product) {
            self.products[usize::from(self.len)] = product;
            self.len += 1;
        }
    }

    pub(super) fn as_slice(&self) -> &[u16] {
        &self.products[..usize::from(self.len)]
    }

    pub(super) fn total_cents(&self) -> u64 {
        self.as_slice()
            .iter()
            .map(|&p| catalog::product_price_cents(p))
            .sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Engagement {
    Opened,
    Clicked,
    Bounced,
}

/// A change of a few traits, sent as a small `identify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TraitsUpdate {
    LoyaltyTier(u8),
    Plan(u8),
    SmsOptOut,
    EmailOptOut,
    Unsubscribed,
    ClearLoyaltyTier,
}

#[derive(Clone, Debug)]
pub(super) enum Body {
    /// The full profile, on a user's first appearance.
    Identify,
    Traits(TraitsUpdate),
    SignedUp {
        source: u8,
        plan: Option<u8>,
    },
    AppOpened,
    ProductViewed {
        product: u16,
    },
    AddedToCart {
        cart: u64,
        product: u16,
    },
    CartAbandoned {
        cart: u64,
        items: Items,
    },
    OrderCompleted {
        order: u64,
        cart: Option<u64>,
        items: Items,
    },
    EbookDownloaded {
        ebook: u8,
    },
    WebinarRegistered {
        webinar: u8,
    },
    WaitlistJoined {
        product: u16,
    },
    ClassBooked {
        class: u32,
        name: u8,
        studio: u8,
        starts_at: i64,
    },
    ClassAttended {
        class: u32,
    },
    MembershipExpiring {
        plan: &'static str,
        expires_at: i64,
    },
    MembershipRenewed,
    StockAlertRequested {
        product: u16,
    },
    BackInStock {
        product: u16,
    },
    ReviewSubmitted {
        order: u64,
        rating: u8,
    },
    Engagement {
        kind: Engagement,
        template: u8,
        with_journey: bool,
    },
}

/// The fixed inputs of one day's generation.
pub(super) struct Day {
    pub seed: u64,
    pub index: u32,
    pub start_ms: i64,
    /// The range's start (signups are placed from it).
    pub range_start_ms: i64,
    /// Mean sessions of a user of average activity on one day.
    pub sessions_per_day: f64,
}

/// Appends what `user` does on `day` (and its later consequences) to `out`;
/// `identified` says whether the user's profile was sent already.
pub(super) fn user_day(
    day: &Day,
    user: u32,
    profile: &Profile,
    identified: &mut bool,
    out: &mut Vec<Record>,
) {
    let signup_day = profile.signup_day(day.range_start_ms);
    if signup_day.is_some_and(|d| d > day.index) {
        return;
    }
    let mut acts = UserDay {
        rng: Rng::derive(&[day.seed, SALT_DAY, u64::from(user), u64::from(day.index)]),
        seed: day.seed,
        user,
        day: day.index,
        seq: 0,
        from_app: false,
        anonymous: false,
        profile,
        out,
    };
    if let Some(at) = profile
        .signs_up_at
        .filter(|_| signup_day == Some(day.index))
    {
        acts.sign_up(at);
        *identified = true;
        return;
    }
    if let Some((_, plan)) = profile.membership.filter(|(d, _)| *d == day.index) {
        let at = acts.session_start(day.start_ms);
        acts.identify_once(identified, at);
        acts.membership(at, plan);
    }
    let p = (day.sessions_per_day * profile.activity / 8.0).min(1.0);
    let sessions = acts.rng.binomial(8, p);
    let mut starts: Vec<i64> = (0..sessions)
        .map(|_| acts.session_start(day.start_ms))
        .collect();
    starts.sort_unstable();
    for start in starts {
        acts.identify_once(identified, start);
        acts.session(start);
    }
    if sessions > 0 && acts.rng.chance(ANONYMOUS_SESSION_RATE) {
        let start = acts.session_start(day.start_ms);
        acts.anonymous_session(start);
    }
}

struct UserDay<'a> {
    rng: Rng,
    seed: u64,
    user: u32,
    day: u32,
    seq: u32,
    from_app: bool,
    anonymous: bool,
    profile: &'a Profile,
    out: &'a mut Vec<Record>,
}

impl UserDay<'_> {
    fn push(&mut self, at: i64, body: Body) {
        self.seq += 1;
        let id = Rng::derive(&[
            self.seed,
            SALT_ID,
            u64::from(self.user),
            u64::from(self.day),
            u64::from(self.seq),
        ])
        .next_u64();
        let mut record = Record {
            sort_at: at,
            at,
            user: self.user,
            day: self.day,
            seq: self.seq,
            id,
            from_app: self.from_app,
            anonymous: self.anonymous,
            body,
        };
        if self.rng.chance(LATE_RATE) {
            record.at -= self.rng.between(MINUTE, 3 * HOUR);
        }
        if self.rng.chance(DUPLICATE_RATE) {
            let mut retry = record.clone();
            self.seq += 1;
            retry.seq = self.seq;
            retry.sort_at += self.rng.between(SECOND, 10 * MINUTE);
            self.out.push(retry);
        }
        self.out.push(record);
    }

    /// A session start on this UTC day, at a local hour people shop at.
    fn session_start(&mut self, day_start: i64) -> i64 {
        let hour = self.rng.weighted(&catalog::HOUR_WEIGHTS) as i64;
        let local_minute = hour * 60 + self.rng.between(0, 60);
        let utc_minute = (local_minute - self.profile.zone.offset_minutes).rem_euclid(24 * 60);
        day_start + utc_minute * MINUTE + self.rng.between(0, MINUTE)
    }

    fn identify_once(&mut self, identified: &mut bool, before: i64) {
        if !*identified {
            *identified = true;
            let at = before - self.rng.between(100, 3 * SECOND);
            self.push(at, Body::Identify);
        }
    }

    fn sign_up(&mut self, at: i64) {
        self.from_app = self.profile.app.is_some() && self.rng.chance(0.5);
        self.push(at, Body::Identify);
        let source = self.rng.weighted(catalog::SIGNUP_SOURCE_WEIGHTS) as u8;
        let plan = self
            .rng
            .chance(0.7)
            .then(|| self.rng.below(catalog::PLANS.len() as u64) as u8);
        let signed_up = at + self.rng.between(200, 3 * SECOND);
        self.push(signed_up, Body::SignedUp { source, plan });
        self.engage(signed_up + MINUTE, template::WELCOME, 0.55, 0.3);
        let first_session = signed_up + self.rng.between(20 * SECOND, 5 * MINUTE);
        self.session(first_session);
    }

    fn membership(&mut self, at: i64, plan: &'static str) {
        let expires_at = at + self.rng.between(14 * DAY, 30 * DAY);
        self.push(at, Body::MembershipExpiring { plan, expires_at });
        self.engage(at + MINUTE, template::RENEWAL_NOTICE, 0.5, 0.35);
        if self.rng.chance(0.45) {
            let renewed = self.rng.between(at + HOUR, expires_at + 3 * DAY);
            self.push(renewed, Body::MembershipRenewed);
        }
    }

    fn session(&mut self, start: i64) {
        self.from_app = self.profile.app.is_some() && self.rng.chance(0.65);
        let mut t = start;
        if self.rng.chance(0.015) {
            let update = self.traits_update();
            self.push(t, Body::Traits(update));
            t += self.rng.between(SECOND, 20 * SECOND);
        }
        if self.from_app {
            self.push(t, Body::AppOpened);
            t += self.rng.between(3 * SECOND, 40 * SECOND);
        }
        let mut viewed = Items::default();
        for _ in 0..=self.rng.geometric(0.66, 15) {
            let product = self.popular_product();
            self.push(t, Body::ProductViewed { product });
            viewed.add(product);
            t += self.rng.between(8 * SECOND, 150 * SECOND);
        }
        if self.rng.chance(0.1) {
            t = self.cart(t, viewed);
        } else if self.rng.chance(0.012) {
            let order = self.id48();
            self.order(
                t,
                None,
                Items::one(viewed.as_slice().first().copied().unwrap_or(1)),
                order,
            );
        }
        self.occasional(t);
    }

    fn anonymous_session(&mut self, start: i64) {
        self.anonymous = true;
        self.from_app = false;
        let mut t = start;
        for _ in 0..=self.rng.geometric(0.5, 6) {
            let product = self.popular_product();
            self.push(t, Body::ProductViewed { product });
            t += self.rng.between(5 * SECOND, 90 * SECOND);
        }
        self.anonymous = false;
    }

    /// Returns the time the session goes on from.
    fn cart(&mut self, mut t: i64, viewed: Items) -> i64 {
        let cart = self.id48();
        let count = 1 + self.rng.below(u64::from(viewed.len.max(1))) as usize;
        let mut items = Items::default();
        for &product in viewed.as_slice().iter().take(count) {
            self.push(t, Body::AddedToCart { cart, product });
            items.add(product);
            t += self.rng.between(10 * SECOND, 90 * SECOND);
        }
        match self.rng.below(100) {
            0..30 => {
                t += self.rng.between(MINUTE, 15 * MINUTE);
                let order = self.id48();
                self.order(t, Some(cart), items, order);
            }
            30..85 => {
                let abandoned = t + self.rng.between(30 * MINUTE, 2 * HOUR);
                self.push(abandoned, Body::CartAbandoned { cart, items });
                if items.total_cents() >= 2_000 {
                    self.engage(abandoned + MINUTE, template::CART_REMINDER, 0.42, 0.3);
                }
                if self.rng.chance(0.2) {
                    let order = self.id48();
                    let at = abandoned + self.rng.between(HOUR, 5 * DAY);
                    self.order(at, Some(cart), items, order);
                }
            }
            _ => {}
        }
        t
    }

    fn order(&mut self, at: i64, cart: Option<u64>, items: Items, order: u64) {
        self.push(at, Body::OrderCompleted { order, cart, items });
        self.engage(at + MINUTE, template::ORDER_THANKS, 0.6, 0.08);
        self.engage(at + 3 * DAY, template::REVIEW_REQUEST, 0.35, 0.3);
        if self.rng.chance(0.3) {
            let rating = 1 + self.rng.weighted(&[3, 4, 10, 30, 53]) as u8;
            let at = at + self.rng.between(2 * DAY, 12 * DAY);
            self.push(at, Body::ReviewSubmitted { order, rating });
        }
    }

    /// The rarer events a session may bring.
    fn occasional(&mut self, t: i64) {
        if self.rng.chance(0.01) {
            self.ebook(t);
        }
        if self.rng.chance(0.003) {
            let webinar = self.rng.below(catalog::WEBINARS.len() as u64) as u8;
            self.push(t, Body::WebinarRegistered { webinar });
        }
        if self.rng.chance(0.006) {
            self.waitlist(t);
        }
        if self.rng.chance(0.007) {
            self.stock_alert(t);
        }
        if self.rng.chance(0.01) {
            self.class_booking(t);
        }
    }

    fn ebook(&mut self, t: i64) {
        let ebook = self.rng.below(catalog::EBOOKS.len() as u64) as u8;
        self.push(t, Body::EbookDownloaded { ebook });
        self.engage(t + MINUTE, template::EBOOK_DELIVERY, 0.7, 0.25);
        if self.rng.chance(0.5) {
            self.engage(t + 2 * DAY, template::WEBINAR_INVITE, 0.35, 0.3);
        }
        if self.rng.chance(0.15) {
            let webinar = self.rng.below(catalog::WEBINARS.len() as u64) as u8;
            let at = t + self.rng.between(DAY, 10 * DAY);
            self.push(at, Body::WebinarRegistered { webinar });
        }
    }

    fn waitlist(&mut self, t: i64) {
        let product = if self.rng.chance(0.75) {
            catalog::LAUNCH_PRODUCT
        } else {
            self.popular_product()
        };
        self.push(t, Body::WaitlistJoined { product });
        self.engage(t + MINUTE, template::WAITLIST_CONFIRMATION, 0.65, 0.1);
        let launch = t + self.rng.between(3 * DAY, 10 * DAY);
        self.engage(launch, template::LAUNCH_ANNOUNCEMENT, 0.45, 0.25);
        if self.rng.chance(0.12) {
            let order = self.id48();
            let at = t + self.rng.between(3 * DAY, 12 * DAY);
            self.order(at, None, Items::one(product), order);
        }
    }

    fn stock_alert(&mut self, t: i64) {
        let product = self.popular_product();
        self.push(t, Body::StockAlertRequested { product });
        if self.rng.chance(0.6) {
            let back = t + self.rng.between(DAY, 14 * DAY);
            self.push(back, Body::BackInStock { product });
            self.engage(back + MINUTE, template::STOCK_BACK_EMAIL, 0.5, 0.3);
            if self.rng.chance(0.25) {
                let order = self.id48();
                let at = back + self.rng.between(10 * MINUTE, 3 * DAY);
                self.order(at, None, Items::one(product), order);
            }
        }
    }

    fn class_booking(&mut self, t: i64) {
        let class = self.rng.below(100_000) as u32;
        let name = self.rng.below(catalog::CLASS_NAMES.len() as u64) as u8;
        let studio = self.rng.below(catalog::STUDIOS.len() as u64) as u8;
        let local_hour = *self.rng.pick(catalog::CLASS_HOURS);
        let day_start = t - t.rem_euclid(DAY);
        let starts_at = day_start
            + self.rng.between(1, 8) * DAY
            + (local_hour * 60 - self.profile.zone.offset_minutes) * MINUTE;
        self.push(
            t,
            Body::ClassBooked {
                class,
                name,
                studio,
                starts_at,
            },
        );
        self.engage(t + MINUTE, template::CLASS_CONFIRMATION, 0.7, 0.05);
        if self.rng.chance(0.78) {
            let at = starts_at + self.rng.between(-10 * MINUTE, 10 * MINUTE);
            self.push(at, Body::ClassAttended { class });
        }
    }

    /// Opens, clicks and bounces of a message sent at `sent_at`.
    fn engage(&mut self, sent_at: i64, template: u8, open_rate: f64, click_rate: f64) {
        let with_journey = self.rng.chance(0.7);
        let engagement = |kind| Body::Engagement {
            kind,
            template,
            with_journey,
        };
        if self.rng.chance(0.01) {
            let at = sent_at + self.rng.between(5 * SECOND, MINUTE);
            self.push(at, engagement(Engagement::Bounced));
            return;
        }
        if !self.rng.chance(open_rate) {
            return;
        }
        // Most opens come soon after the send, a long tail later.
        let delay = self
            .rng
            .between(0, 20 * HOUR)
            .min(self.rng.between(0, 20 * HOUR));
        let opened = sent_at + 2 * MINUTE + delay;
        self.push(opened, engagement(Engagement::Opened));
        if self.rng.chance(click_rate) {
            let clicked = opened + self.rng.between(5 * SECOND, 15 * MINUTE);
            self.push(clicked, engagement(Engagement::Clicked));
        }
    }

    fn traits_update(&mut self) -> TraitsUpdate {
        match self.rng.below(6) {
            0 => {
                TraitsUpdate::LoyaltyTier(self.rng.below(catalog::LOYALTY_TIERS.len() as u64) as u8)
            }
            1 => TraitsUpdate::Plan(self.rng.below(catalog::PLANS.len() as u64) as u8),
            2 => TraitsUpdate::SmsOptOut,
            3 => TraitsUpdate::EmailOptOut,
            4 => TraitsUpdate::Unsubscribed,
            _ => TraitsUpdate::ClearLoyaltyTier,
        }
    }

    /// A product, the popular ones (low numbers, the launch product first)
    /// much more often than the tail.
    fn popular_product(&mut self) -> u16 {
        let rank = self.rng.below(u64::from(catalog::PRODUCT_COUNT));
        self.rng.below(rank + 1) as u16
    }

    /// A 48-bit id (carts, orders).
    fn id48(&mut self) -> u64 {
        self.rng.next_u64() >> 16
    }
}
