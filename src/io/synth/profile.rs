//! One synthetic customer: who they are (traits), where (zone, client) and
//! how active, derived from the seed and the user's number alone so that any
//! day of the stream can be generated without the others.

use super::catalog::{self, Client, Zone};
use super::rng::Rng;

const DAY_MS: i64 = 86_400_000;
const SALT_PROFILE: u64 = 0x7072_6f66;

/// How active users are, relative to the mean: most rarely, a few a lot.
const ACTIVITY_TIERS: &[(f64, u32)] = &[(0.25, 35), (0.75, 30), (1.5, 20), (2.5, 10), (4.0, 5)];
/// The mean of [`ACTIVITY_TIERS`], by its weights.
pub(super) const ACTIVITY_MEAN: f64 = 1.0375;
/// The share of users who sign up inside the generated range.
pub(super) const NEW_USER_SHARE: f64 = 0.25;

pub(super) struct Profile {
    pub zone: &'static Zone,
    pub first_name: &'static str,
    /// Random bits behind the email, phone, push token and IP address.
    pub tag: u64,
    pub has_email: bool,
    pub has_phone: bool,
    pub has_push_token: bool,
    /// Whether `identify` carries `timezone` (else only `context.timezone` does).
    pub timezone_trait: bool,
    pub lifetime_value_cents: u64,
    pub plan: Option<&'static str>,
    pub loyalty_tier: Option<&'static str>,
    pub unsubscribed: Option<bool>,
    /// `consent.email`, `.sms`, `.push`, `.whatsapp`.
    pub consent: [Option<bool>; 4],
    pub activity: f64,
    /// The app this user also uses, if any; every user uses the web site.
    pub app: Option<&'static Client>,
    pub web_agent: &'static str,
    /// When a new user signs up, inside the range.
    pub signs_up_at: Option<i64>,
    /// `signed_up_at` of an existing user, before the range.
    pub signed_up_at: Option<i64>,
    pub last_order_at: Option<i64>,
    /// The day (from the start) a membership comes up for renewal, and its plan.
    pub membership: Option<(u32, &'static str)>,
    /// `birthday` (a date alone: year, month, day), for about two in five.
    pub birthday: Option<(i16, i8, i8)>,
    /// `renewal_date` of a plan (written as a date alone), within 45 days
    /// of the start.
    pub renewal_at: Option<i64>,
}

impl Profile {
    pub(super) fn derive(seed: u64, user: u32, start_ms: i64, days: u32) -> Profile {
        let mut rng = Rng::derive(&[seed, SALT_PROFILE, u64::from(user)]);
        let zone = rng.pick_weighted(catalog::ZONES, |z| z.weight);
        let first_name = *rng.pick(catalog::FIRST_NAMES);
        let tag = rng.next_u64();
        let app = rng.chance(0.45).then(|| {
            if rng.chance(0.5) {
                &catalog::IOS
            } else {
                &catalog::ANDROID
            }
        });
        let web_agent = *rng.pick(catalog::WEB.user_agents);
        let range_ms = i64::from(days) * DAY_MS;
        let is_new = rng.chance(NEW_USER_SHARE);
        let signs_up_at = is_new.then(|| start_ms + rng.between(0, (range_ms - 3_600_000).max(1)));
        let signed_up_at =
            (!is_new && rng.chance(0.7)).then(|| start_ms - rng.between(DAY_MS, 1_100 * DAY_MS));
        let lifetime_value_cents = if is_new || rng.chance(0.35) {
            0
        } else if rng.chance(0.15) {
            20_000 + rng.below(200_000)
        } else {
            1_500 + rng.below(20_000)
        };
        let last_order_at =
            (lifetime_value_cents > 0).then(|| start_ms - rng.between(DAY_MS, 400 * DAY_MS));
        let consent_yes = [0.93, 0.8, 0.88, 0.7];
        let consent = consent_yes.map(|yes| (!rng.chance(0.35)).then(|| rng.chance(yes)));
        let unsubscribed = match rng.below(100) {
            0..3 => Some(true),
            3..15 => Some(false),
            _ => None,
        };
        // Read from the tag's bits, not drawn: the rest of the stream stays
        // what it was before these traits existed.
        let birthday = ((tag >> 33) % 10 < 4).then(|| {
            let day_of_year = ((tag >> 48) % 365) as i64;
            let date = jiff::civil::date(2001, 1, 1)
                .checked_add(jiff::Span::new().days(day_of_year))
                .unwrap_or(jiff::civil::date(2001, 1, 1));
            (1965 + ((tag >> 40) % 40) as i16, date.month(), date.day())
        });
        let mut profile = Profile {
            zone,
            first_name,
            tag,
            has_email: rng.chance(0.92),
            has_phone: rng.chance(0.55),
            has_push_token: app.is_some() && rng.chance(0.85),
            timezone_trait: rng.chance(0.75),
            lifetime_value_cents,
            plan: rng.chance(0.6).then(|| *rng.pick(catalog::PLANS)),
            loyalty_tier: rng.chance(0.35).then(|| *rng.pick(catalog::LOYALTY_TIERS)),
            unsubscribed,
            consent,
            activity: rng.pick_weighted(ACTIVITY_TIERS, |t| t.1).0,
            app,
            web_agent,
            signs_up_at,
            signed_up_at,
            last_order_at,
            membership: (!is_new && rng.chance(0.07)).then(|| {
                (
                    rng.below(u64::from(days)) as u32,
                    *rng.pick(catalog::MEMBERSHIP_PLANS),
                )
            }),
            birthday,
            renewal_at: None,
        };
        profile.renewal_at = profile
            .plan
            .map(|_| start_ms + ((tag >> 36) % 45) as i64 * DAY_MS);
        profile
    }

    /// The day (from the start) this user signs up, for new users.
    pub(super) fn signup_day(&self, start_ms: i64) -> Option<u32> {
        self.signs_up_at
            .map(|at| u32::try_from((at - start_ms) / DAY_MS).unwrap_or(u32::MAX))
    }

    /// An IPv4 address from the documentation ranges.
    pub(super) fn ip(&self, out: &mut String) {
        const PREFIXES: [&str; 3] = ["203.0.113", "198.51.100", "192.0.2"];
        out.push_str(PREFIXES[(self.tag % 3) as usize]);
        catalog::push_fmt(out, format_args!(".{}", (self.tag >> 8) % 254 + 1));
    }

    pub(super) fn email(&self, out: &mut String) {
        for c in self.first_name.chars() {
            out.extend(ascii_fold(c).to_lowercase());
        }
        let domain = catalog::EMAIL_DOMAINS
            [((self.tag >> 16) % catalog::EMAIL_DOMAINS.len() as u64) as usize];
        catalog::push_fmt(
            out,
            format_args!(".{}@{domain}", (self.tag >> 24) % 100_000),
        );
    }

    pub(super) fn phone(&self, out: &mut String) {
        out.push_str(self.zone.phone_prefix);
        // 555-01xx style fictional numbers for North America, a mobile range elsewhere.
        if self.zone.phone_prefix == "+1" {
            catalog::push_fmt(
                out,
                format_args!(
                    "{}5550{:03}",
                    200 + (self.tag >> 32) % 700,
                    (self.tag >> 8) % 200 + 100
                ),
            );
        } else {
            catalog::push_fmt(out, format_args!("7{:08}", (self.tag >> 20) % 100_000_000));
        }
    }

    pub(super) fn push_token(&self, out: &mut String) {
        let second = super::rng::mix(self.tag);
        catalog::push_fmt(out, format_args!("{:016x}{:016x}", self.tag, second));
    }
}

/// The ASCII letter an accented first-name letter is written with in an email.
fn ascii_fold(c: char) -> char {
    match c {
        'é' | 'è' | 'ë' => 'e',
        'ï' | 'í' => 'i',
        'ö' | 'ó' => 'o',
        'ú' | 'ü' => 'u',
        'á' | 'à' => 'a',
        other => other,
    }
}
