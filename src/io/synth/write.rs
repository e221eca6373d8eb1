//! Writes a generated record as one Segment message: the envelope, the
//! event's properties or the user's traits, and a client `context`.

use super::activity::{Body, Engagement, Items, Record, TraitsUpdate};
use super::catalog::{self, push_fmt};
use super::profile::Profile;
use super::rng::mix;
use crate::io::segment::write_timestamp_ms;

/// How a line deviates from a well-formed message (the malformed lines a
/// stream may be asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    WellFormed,
    NoTimestamp,
    BadTimestamp,
    NoEvent,
    NoUser,
}

/// Appends the line of `record` (without a newline) to `out`.
pub(super) fn line(seed: u64, record: &Record, profile: &Profile, shape: Shape, out: &mut String) {
    let kind = if matches!(record.body, Body::Identify | Body::Traits(_)) {
        "identify"
    } else {
        "track"
    };
    push_fmt(out, format_args!("{{\"type\":\"{kind}\","));
    if kind == "track" && shape != Shape::NoEvent {
        out.push_str("\"event\":");
        push_json_str(out, event_name(&record.body));
        out.push(',');
    }
    if shape != Shape::NoUser {
        if record.anonymous {
            let anonymous_id =
                mix(seed ^ mix(u64::from(record.user) << 32 | u64::from(record.day)));
            push_fmt(
                out,
                format_args!("\"anonymousId\":\"anon-{:012x}\",", anonymous_id >> 16),
            );
        } else {
            push_fmt(
                out,
                format_args!("\"userId\":\"user-{:05}\",", record.user + 1),
            );
        }
    }
    if kind == "track" {
        out.push_str("\"properties\":");
        properties(record, out);
    } else {
        out.push_str("\"traits\":");
        match record.body {
            Body::Traits(update) => traits_update(update, out),
            _ => traits(profile, out),
        }
    }
    out.push_str(",\"context\":");
    context(record, profile, out);
    match shape {
        Shape::NoTimestamp => {}
        Shape::BadTimestamp => {
            const BAD: [&str; 3] = ["03/14/2026 10:00", "2026-03-14 25:00:00", "yesterday"];
            push_fmt(
                out,
                format_args!(",\"timestamp\":\"{}\"", BAD[(record.id % 3) as usize]),
            );
        }
        _ => {
            out.push_str(",\"timestamp\":\"");
            write_timestamp_ms(record.at, out);
            out.push('"');
        }
    }
    let (a, b) = (record.id, mix(record.id));
    push_fmt(
        out,
        format_args!(
            ",\"messageId\":\"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}\"}}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        ),
    );
}

fn event_name(body: &Body) -> &'static str {
    match body {
        Body::Identify | Body::Traits(_) => "",
        Body::SignedUp { .. } => "signed_up",
        Body::AppOpened => "app_opened",
        Body::ProductViewed { .. } => "product_viewed",
        Body::AddedToCart { .. } => "added_to_cart",
        Body::CartAbandoned { .. } => "cart_abandoned",
        Body::OrderCompleted { .. } => "Order Completed",
        Body::EbookDownloaded { .. } => "ebook_downloaded",
        Body::WebinarRegistered { .. } => "webinar_registered",
        Body::WaitlistJoined { .. } => "waitlist_joined",
        Body::ClassBooked { .. } => "class_booked",
        Body::ClassAttended { .. } => "class_attended",
        Body::MembershipExpiring { .. } => "membership_expiring",
        Body::MembershipRenewed => "membership_renewed",
        Body::StockAlertRequested { .. } => "stock_alert_requested",
        Body::BackInStock { .. } => "back_in_stock",
        Body::ReviewSubmitted { .. } => "review_submitted",
        Body::Engagement {
            kind: Engagement::Opened,
            ..
        } => "message.opened",
        Body::Engagement {
            kind: Engagement::Clicked,
            ..
        } => "message.clicked",
        Body::Engagement {
            kind: Engagement::Bounced,
            ..
        } => "message.bounced",
    }
}

fn properties(record: &Record, out: &mut String) {
    let user = record.user + 1;
    match &record.body {
        Body::Identify | Body::Traits(_) | Body::AppOpened => out.push_str("{}"),
        Body::SignedUp { source, plan } => {
            out.push_str("{\"source\":");
            push_json_str(out, catalog::SIGNUP_SOURCES[usize::from(*source)]);
            if let Some(plan) = plan {
                out.push_str(",\"plan\":");
                push_json_str(out, catalog::PLANS[usize::from(*plan)]);
            }
            out.push('}');
        }
        Body::ProductViewed { product } => {
            product_field(*product, out);
            out.push_str(",\"category\":");
            push_json_str(out, catalog::product_category(*product));
            out.push_str(",\"price\":");
            push_money(catalog::product_price_cents(*product), out);
            out.push('}');
        }
        Body::AddedToCart { cart, product } => {
            push_fmt(
                out,
                format_args!("{{\"cart_id\":\"c_{cart:012x}\",\"product_id\":\""),
            );
            catalog::product_id(*product, out);
            out.push_str("\",\"price\":");
            push_money(catalog::product_price_cents(*product), out);
            out.push('}');
        }
        Body::CartAbandoned { cart, items } => {
            push_fmt(out, format_args!("{{\"cart_id\":\"c_{cart:012x}\","));
            total_and_items(items, out);
        }
        Body::OrderCompleted { order, cart, items } => {
            push_fmt(out, format_args!("{{\"order_id\":\"o_{order:012x}\","));
            if let Some(cart) = cart {
                push_fmt(out, format_args!("\"cart_id\":\"c_{cart:012x}\","));
            }
            total_and_items(items, out);
        }
        Body::EbookDownloaded { ebook } => {
            let (id, title) = catalog::EBOOKS[usize::from(*ebook)];
            push_fmt(out, format_args!("{{\"ebook_id\":\"{id}\",\"title\":"));
            push_json_str(out, title);
            out.push('}');
        }
        Body::WebinarRegistered { webinar } => {
            push_fmt(
                out,
                format_args!(
                    "{{\"webinar_id\":\"{}\"}}",
                    catalog::WEBINARS[usize::from(*webinar)]
                ),
            );
        }
        Body::WaitlistJoined { product }
        | Body::StockAlertRequested { product }
        | Body::BackInStock { product } => {
            product_field(*product, out);
            out.push_str(",\"product_name\":\"");
            catalog::product_name(*product, out);
            out.push_str("\"}");
        }
        Body::ClassBooked {
            class,
            name,
            studio,
            starts_at,
        } => {
            push_fmt(
                out,
                format_args!("{{\"class_id\":\"cls-{class:05}\",\"class_name\":"),
            );
            push_json_str(out, catalog::CLASS_NAMES[usize::from(*name)]);
            out.push_str(",\"starts_at\":\"");
            write_timestamp_ms(*starts_at, out);
            out.push_str("\",\"studio\":");
            push_json_str(out, catalog::STUDIOS[usize::from(*studio)]);
            out.push('}');
        }
        Body::ClassAttended { class } => {
            push_fmt(out, format_args!("{{\"class_id\":\"cls-{class:05}\"}}"))
        }
        Body::MembershipExpiring { plan, expires_at } => {
            push_fmt(
                out,
                format_args!("{{\"membership_id\":\"mem-{user:05}\",\"plan\":"),
            );
            push_json_str(out, plan);
            out.push_str(",\"expires_at\":\"");
            write_timestamp_ms(*expires_at, out);
            out.push_str("\"}");
        }
        Body::MembershipRenewed => {
            push_fmt(out, format_args!("{{\"membership_id\":\"mem-{user:05}\"}}"))
        }
        Body::ReviewSubmitted { order, rating } => {
            push_fmt(
                out,
                format_args!("{{\"order_id\":\"o_{order:012x}\",\"rating\":{rating}}}"),
            );
        }
        Body::Engagement {
            template,
            with_journey,
            ..
        } => {
            let (name, journey) = catalog::TEMPLATES[usize::from(*template)];
            out.push_str("{\"template\":");
            push_json_str(out, name);
            if *with_journey {
                out.push_str(",\"journey\":");
                push_json_str(out, journey);
            }
            out.push('}');
        }
    }
}

/// Opens a properties object with its `product_id`.
fn product_field(product: u16, out: &mut String) {
    out.push_str("{\"product_id\":\"");
    catalog::product_id(product, out);
    out.push('"');
}

/// `"total":…,"items":[…]}`, closing the object.
fn total_and_items(items: &Items, out: &mut String) {
    out.push_str("\"total\":");
    push_money(items.total_cents(), out);
    out.push_str(",\"items\":[");
    for (i, &product) in items.as_slice().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        catalog::product_id(product, out);
        out.push('"');
    }
    out.push_str("]}");
}

fn traits(profile: &Profile, out: &mut String) {
    out.push('{');
    if profile.has_email {
        out.push_str("\"email\":\"");
        profile.email(out);
        out.push_str("\",");
    }
    if profile.has_phone {
        out.push_str("\"phone\":\"");
        profile.phone(out);
        out.push_str("\",");
    }
    if profile.has_push_token {
        out.push_str("\"push_token\":\"");
        profile.push_token(out);
        out.push_str("\",");
    }
    out.push_str("\"first_name\":");
    push_json_str(out, profile.first_name);
    if profile.timezone_trait {
        out.push_str(",\"timezone\":");
        push_json_str(out, profile.zone.name);
    }
    push_fmt(
        out,
        format_args!(
            ",\"country\":\"{}\",\"lifetime_value\":",
            profile.zone.country
        ),
    );
    push_money(profile.lifetime_value_cents, out);
    if let Some(plan) = profile.plan {
        push_fmt(out, format_args!(",\"plan\":\"{plan}\""));
    }
    if let Some(tier) = profile.loyalty_tier {
        push_fmt(out, format_args!(",\"loyalty_tier\":\"{tier}\""));
    }
    if let Some(unsubscribed) = profile.unsubscribed {
        push_fmt(out, format_args!(",\"unsubscribed\":{unsubscribed}"));
    }
    consent(&profile.consent, out);
    let dates = [
        ("last_order_at", profile.last_order_at),
        ("signed_up_at", profile.signed_up_at.or(profile.signs_up_at)),
    ];
    for (name, at) in dates {
        if let Some(at) = at {
            push_fmt(out, format_args!(",\"{name}\":\""));
            write_timestamp_ms(at, out);
            out.push('"');
        }
    }
    // Dates alone, as Segment sends them.
    if let Some((year, month, day)) = profile.birthday {
        push_fmt(
            out,
            format_args!(",\"birthday\":\"{year:04}-{month:02}-{day:02}\""),
        );
    }
    if let Some(at) = profile.renewal_at {
        let date = crate::value::format_timestamp(at);
        push_fmt(out, format_args!(",\"renewal_date\":\"{}\"", &date[..10]));
    }
    out.push('}');
}

fn consent(consent: &[Option<bool>; 4], out: &mut String) {
    const CHANNELS: [&str; 4] = ["email", "sms", "push", "whatsapp"];
    let mut first = true;
    for (channel, value) in CHANNELS.iter().zip(consent) {
        if let Some(value) = value {
            out.push_str(if first { ",\"consent\":{" } else { "," });
            push_fmt(out, format_args!("\"{channel}\":{value}"));
            first = false;
        }
    }
    if !first {
        out.push('}');
    }
}

fn traits_update(update: TraitsUpdate, out: &mut String) {
    match update {
        TraitsUpdate::LoyaltyTier(tier) => {
            push_fmt(
                out,
                format_args!(
                    "{{\"loyalty_tier\":\"{}\"}}",
                    catalog::LOYALTY_TIERS[usize::from(tier)]
                ),
            );
        }
        TraitsUpdate::Plan(plan) => push_fmt(
            out,
            format_args!("{{\"plan\":\"{}\"}}", catalog::PLANS[usize::from(plan)]),
        ),
        TraitsUpdate::SmsOptOut => out.push_str("{\"consent\":{\"sms\":false}}"),
        TraitsUpdate::EmailOptOut => out.push_str("{\"consent\":{\"email\":false}}"),
        TraitsUpdate::Unsubscribed => out.push_str("{\"unsubscribed\":true}"),
        TraitsUpdate::ClearLoyaltyTier => out.push_str("{\"loyalty_tier\":null}"),
    }
}

/// The client's `context`: the app's or the web site's, or the server that
/// relays email engagements.
fn context(record: &Record, profile: &Profile, out: &mut String) {
    if matches!(record.body, Body::Engagement { .. }) {
        out.push_str(
            "{\"library\":{\"name\":\"analytics-node\",\"version\":\"2.1.2\"},\"locale\":",
        );
        push_json_str(out, profile.zone.locale);
        out.push_str(",\"timezone\":");
        push_json_str(out, profile.zone.name);
        out.push('}');
        return;
    }
    let app = profile.app.filter(|_| record.from_app);
    let client = app.unwrap_or(&catalog::WEB);
    let user_agent = if app.is_some() {
        client.user_agents[0]
    } else {
        profile.web_agent
    };
    push_fmt(
        out,
        format_args!(
            "{{\"library\":{{\"name\":\"{}\",\"version\":\"{}\"}},\"ip\":\"",
            client.library, client.version
        ),
    );
    profile.ip(out);
    out.push_str("\",\"userAgent\":");
    push_json_str(out, user_agent);
    out.push_str(",\"locale\":");
    push_json_str(out, profile.zone.locale);
    out.push_str(",\"timezone\":");
    push_json_str(out, profile.zone.name);
    if client.mobile {
        out.push_str(",\"app\":{\"name\":\"Shop\",\"version\":\"4.12.0\"}}");
        return;
    }
    out.push_str(",\"page\":{\"path\":\"");
    match &record.body {
        Body::ProductViewed { product } | Body::AddedToCart { product, .. } => {
            out.push_str("/products/");
            catalog::product_id(*product, out);
        }
        Body::CartAbandoned { .. } => out.push_str("/cart"),
        Body::OrderCompleted { .. } => out.push_str("/checkout/complete"),
        _ => out.push_str(catalog::PAGES[(record.id % catalog::PAGES.len() as u64) as usize]),
    }
    out.push_str("\"}}");
}

/// An amount in cents as a JSON number, without trailing zeros (`89.5`, `12`).
fn push_money(cents: u64, out: &mut String) {
    let (units, rest) = (cents / 100, cents % 100);
    if rest == 0 {
        push_fmt(out, format_args!("{units}"));
    } else if rest % 10 == 0 {
        push_fmt(out, format_args!("{units}.{}", rest / 10));
    } else {
        push_fmt(out, format_args!("{units}.{rest:02}"));
    }
}

/// A JSON string literal.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => push_fmt(out, format_args!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}
