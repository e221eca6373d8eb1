//! The constant tables the synthetic stream draws from: time zones and their
//! countries, names, products, classes, e-books, message templates, clients.

/// A home region: its IANA zone, country, locale, phone prefix and standard
/// UTC offset in minutes (daylight saving is ignored when placing sessions).
pub(super) struct Zone {
    pub name: &'static str,
    pub country: &'static str,
    pub locale: &'static str,
    pub phone_prefix: &'static str,
    pub offset_minutes: i64,
    pub weight: u32,
}

pub(super) const ZONES: &[Zone] = &[
    zone("America/New_York", "US", "en-US", "+1", -300, 22),
    zone("America/Chicago", "US", "en-US", "+1", -360, 9),
    zone("America/Los_Angeles", "US", "en-US", "+1", -480, 11),
    zone("America/Toronto", "CA", "en-CA", "+1", -300, 5),
    zone("America/Sao_Paulo", "BR", "pt-BR", "+55", -180, 5),
    zone("Europe/London", "GB", "en-GB", "+44", 0, 10),
    zone("Europe/Paris", "FR", "fr-FR", "+33", 60, 12),
    zone("Europe/Berlin", "DE", "de-DE", "+49", 60, 9),
    zone("Europe/Madrid", "ES", "es-ES", "+34", 60, 4),
    zone("Asia/Kolkata", "IN", "en-IN", "+91", 330, 4),
    zone("Asia/Tokyo", "JP", "ja-JP", "+81", 540, 5),
    zone("Australia/Sydney", "AU", "en-AU", "+61", 600, 4),
];

const fn zone(
    name: &'static str,
    country: &'static str,
    locale: &'static str,
    phone_prefix: &'static str,
    offset_minutes: i64,
    weight: u32,
) -> Zone {
    Zone {
        name,
        country,
        locale,
        phone_prefix,
        offset_minutes,
        weight,
    }
}

/// How likely a session starts in each local hour (0..24).
pub(super) const HOUR_WEIGHTS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 7, 9, 9, 8, 8, 10, 10, 8, 8, 9, 10, 12, 14, 15, 13, 9, 5,
];

pub(super) const FIRST_NAMES: &[&str] = &[
    "Ana", "Liam", "Chloé", "Noah", "Emma", "Lucas", "Mia", "Hugo", "Sofia", "Leo", "Yuki",
    "Haruto", "Olivia", "Mateo", "Amelia", "Jack", "Léa", "Finn", "Isla", "Arjun", "Priya",
    "Kenji", "Zoë", "Oscar", "Lena", "Jonas", "Camila", "Gabriel", "Aiko", "Ethan", "Maya", "Ravi",
    "Clara", "Tom", "Inès", "Sam", "Nora", "Felix", "Lucía", "Ben",
];

pub(super) const EMAIL_DOMAINS: &[&str] =
    &["example.com", "example.net", "example.org", "mail.example"];

pub(super) const PLANS: &[&str] = &["free", "pro", "team"];
pub(super) const LOYALTY_TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];
pub(super) const MEMBERSHIP_PLANS: &[&str] = &["monthly", "annual", "premium"];

/// `signed_up.source` and how often each occurs.
pub(super) const SIGNUP_SOURCES: &[&str] = &[
    "web",
    "ios",
    "android",
    "referral",
    "facebook_ads",
    "import",
];
pub(super) const SIGNUP_SOURCE_WEIGHTS: &[u32] = &[40, 18, 14, 10, 12, 6];

pub(super) const CATEGORIES: &[&str] = &[
    "shoes",
    "outerwear",
    "audio",
    "home",
    "fitness",
    "beauty",
    "books",
    "kitchen",
];
const ADJECTIVES: &[&str] = &[
    "Nova", "Terra", "Drift", "Pulse", "Alto", "Ember", "Cirrus", "Juniper", "Onyx", "Sierra",
];
const NOUNS: &[&str] = &[
    "runner", "parka", "speaker", "lamp", "mat", "serum", "novel", "kettle",
];

/// The launch product every `waitlist_joined` of the example journeys wants.
pub(super) const LAUNCH_PRODUCT: u16 = 0;
pub(super) const PRODUCT_COUNT: u16 = 240;

/// A product's `product_id`.
pub(super) fn product_id(product: u16, out: &mut String) {
    if product == LAUNCH_PRODUCT {
        out.push_str("aurora-x1");
    } else {
        push_fmt(
            out,
            format_args!("sku-{:04}", 1000 + u32::from(product) * 7),
        );
    }
}

/// A product's display name.
pub(super) fn product_name(product: u16, out: &mut String) {
    if product == LAUNCH_PRODUCT {
        out.push_str("Aurora X1 headphones");
        return;
    }
    let p = usize::from(product);
    out.push_str(ADJECTIVES[p / CATEGORIES.len() % ADJECTIVES.len()]);
    out.push(' ');
    out.push_str(NOUNS[p % NOUNS.len()]);
    push_fmt(
        out,
        format_args!(" {}", p / (CATEGORIES.len() * ADJECTIVES.len()) + 1),
    );
}

pub(super) fn product_category(product: u16) -> &'static str {
    if product == LAUNCH_PRODUCT {
        return "audio";
    }
    CATEGORIES[usize::from(product) % CATEGORIES.len()]
}

/// A product's price in cents: stable per product, by category.
pub(super) fn product_price_cents(product: u16) -> u64 {
    if product == LAUNCH_PRODUCT {
        return 24_900;
    }
    let base: [u64; 8] = [8_900, 14_900, 5_900, 3_900, 2_900, 2_400, 1_500, 4_500];
    let category = usize::from(product) % CATEGORIES.len();
    let spread = super::rng::mix(u64::from(product)) % 100;
    base[category] / 2 + base[category] * spread / 100 - 1
}

pub(super) const EBOOKS: &[(&str, &str)] = &[
    ("eb-101", "The Abandoned Cart Playbook"),
    ("eb-102", "Email Deliverability in 2026"),
    ("eb-103", "Designing Win-Back Journeys"),
    ("eb-104", "SMS Consent, Explained"),
];

pub(super) const WEBINARS: &[&str] = &[
    "wb-2026-03-q1-review",
    "wb-2026-03-lifecycle-101",
    "wb-2026-04-journeys-live",
];

pub(super) const CLASS_NAMES: &[&str] = &[
    "Morning Yoga",
    "HIIT 45",
    "Spin Express",
    "Pilates Core",
    "Boxing Basics",
    "Mobility Flow",
];
pub(super) const STUDIOS: &[&str] = &["Downtown", "Riverside", "Uptown", "Harbour"];
/// Local start hours of classes.
pub(super) const CLASS_HOURS: &[i64] = &[7, 9, 12, 18, 19];

/// The templates engagements refer to, with the journey that sends each.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    ("cart_reminder", "abandoned_cart"),
    ("welcome", "onboarding"),
    ("order_thanks", "post_purchase"),
    ("review_request", "post_purchase"),
    ("ebook_delivery", "lead_nurture"),
    ("webinar_invite", "lead_nurture"),
    ("waitlist_confirmation", "product_launch"),
    ("launch_announcement", "product_launch"),
    ("stock_back_email", "back_in_stock"),
    ("renewal_notice", "membership_renewal"),
    ("class_confirmation", "class_reminders"),
];

/// Index in [`TEMPLATES`].
pub(super) mod template {
    pub const CART_REMINDER: u8 = 0;
    pub const WELCOME: u8 = 1;
    pub const ORDER_THANKS: u8 = 2;
    pub const REVIEW_REQUEST: u8 = 3;
    pub const EBOOK_DELIVERY: u8 = 4;
    pub const WEBINAR_INVITE: u8 = 5;
    pub const WAITLIST_CONFIRMATION: u8 = 6;
    pub const LAUNCH_ANNOUNCEMENT: u8 = 7;
    pub const STOCK_BACK_EMAIL: u8 = 8;
    pub const RENEWAL_NOTICE: u8 = 9;
    pub const CLASS_CONFIRMATION: u8 = 10;
}

/// A Segment client library: `context.library`, and the user agents it sends.
pub(super) struct Client {
    pub library: &'static str,
    pub version: &'static str,
    pub user_agents: &'static [&'static str],
    pub mobile: bool,
}

pub(super) const WEB: Client = Client {
    library: "analytics.js",
    version: "5.2.1",
    user_agents: &[
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    ],
    mobile: false,
};

pub(super) const IOS: Client = Client {
    library: "analytics-swift",
    version: "1.5.11",
    user_agents: &["Shop/4.12.0 (iPhone15,2; iOS 17.4.1) CFNetwork/1494.0.7"],
    mobile: true,
};

pub(super) const ANDROID: Client = Client {
    library: "analytics-kotlin",
    version: "1.15.0",
    user_agents: &["Shop/4.12.0 (Linux; Android 14; Pixel 8) okhttp/4.12.0"],
    mobile: true,
};

/// Paths of the web pages a session lands on, besides product pages.
pub(super) const PAGES: &[&str] = &[
    "/",
    "/sale",
    "/new",
    "/account",
    "/cart",
    "/classes",
    "/blog/spring-lookbook",
];

pub(super) fn push_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
}
