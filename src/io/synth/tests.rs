//! The generator's contract: determinism, parseable lines, and proportions.

use std::collections::BTreeMap;

use super::*;
use crate::io::segment::{MessageKind, parse_line};

fn lines(options: SynthOptions) -> Vec<String> {
    generate(options).collect()
}

fn small(seed: u64) -> SynthOptions {
    SynthOptions {
        users: 400,
        events: 6_000,
        days: 21,
        seed,
        malformed_rate: 0.01,
        ..SynthOptions::default()
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = lines(small(7));
    assert_eq!(a, lines(small(7)));
    assert_ne!(a, lines(small(8)));
    let mut written = Vec::new();
    let count = write_stream(small(7), &mut written).unwrap();
    assert_eq!(count as usize, a.len());
    assert_eq!(String::from_utf8(written).unwrap(), a.join("\n") + "\n");
}

/// Counts over a stream of well-formed lines (the malformed ones counted apart).
#[derive(Default)]
struct Census {
    events: BTreeMap<String, u64>,
    identifies: u64,
    malformed: u64,
    total: u64,
    message_ids: BTreeMap<String, u64>,
    out_of_order: u64,
    users: std::collections::BTreeSet<String>,
    bytes: u64,
}

fn census(options: SynthOptions) -> Census {
    let mut census = Census::default();
    let mut last = i64::MIN;
    for (i, line) in generate(options).enumerate() {
        census.bytes += line.len() as u64 + 1;
        match parse_line(&line, i + 1) {
            Err(_) => census.malformed += 1,
            Ok(event) => {
                census.total += 1;
                if event.timestamp_ms < last {
                    census.out_of_order += 1;
                }
                last = last.max(event.timestamp_ms);
                // Every line says its time zone; only an identify's is read.
                assert!(
                    event.context_timezone.is_some() || event.kind != MessageKind::Identify,
                    "{line}"
                );
                assert!(line.contains(r#""timezone":""#), "{line}");
                let id = event.message_id.as_deref().unwrap_or_default().to_owned();
                *census.message_ids.entry(id).or_default() += 1;
                match event.kind {
                    MessageKind::Identify => census.identifies += 1,
                    _ => {
                        *census
                            .events
                            .entry(event.event_name().to_owned())
                            .or_default() += 1
                    }
                }
                census.users.insert(event.user_key.into_owned());
            }
        }
    }
    census
}

#[test]
fn every_line_parses_but_the_malformed_ones() {
    let options = SynthOptions {
        users: 2_000,
        events: 20_000,
        ..small(3)
    };
    let census = census(options.clone());
    let total = census.total + census.malformed;
    let rate = census.malformed as f64 / total as f64;
    assert!((0.005..0.015).contains(&rate), "malformed rate {rate}");
    // Events aimed at, within tolerance.
    let ratio = census.total as f64 / options.events as f64;
    eprintln!("ratio {ratio}");
    assert!(
        (0.9..1.1).contains(&ratio),
        "{} events for {}",
        census.total,
        options.events
    );
}

#[test]
fn proportions_are_realistic() {
    let census = census(SynthOptions {
        users: 2_000,
        events: 30_000,
        seed: 11,
        ..SynthOptions::default()
    });
    let share = |names: &[&str]| {
        names
            .iter()
            .map(|n| census.events.get(*n).copied().unwrap_or(0))
            .sum::<u64>() as f64
            / census.total as f64
    };
    eprintln!(
        "{:?} total {} identifies {} users {} bytes/line {}",
        census.events,
        census.total,
        census.identifies,
        census.users.len(),
        census.bytes / census.total
    );
    let uninteresting = share(&["product_viewed", "app_opened", "added_to_cart"]);
    assert!(
        (0.80..0.90).contains(&uninteresting),
        "no-journey share {uninteresting}"
    );
    let abandoned = share(&["cart_abandoned"]);
    assert!(
        (0.01..0.04).contains(&abandoned),
        "cart_abandoned {abandoned}"
    );
    let orders = share(&["Order Completed"]);
    assert!((0.005..0.03).contains(&orders), "orders {orders}");
    let opened = share(&["message.opened"]);
    let clicked = share(&["message.clicked"]);
    assert!(
        opened > 2.0 * clicked && clicked > 0.0,
        "opened {opened} clicked {clicked}"
    );
    for name in [
        "signed_up",
        "ebook_downloaded",
        "webinar_registered",
        "waitlist_joined",
        "class_booked",
        "class_attended",
        "membership_expiring",
        "membership_renewed",
        "stock_alert_requested",
        "back_in_stock",
        "review_submitted",
        "message.bounced",
    ] {
        assert!(
            census.events.get(name).copied().unwrap_or(0) > 0,
            "no {name}"
        );
    }
    // Most active users are identified once, before their events.
    assert!(census.identifies as f64 > 0.5 * census.users.len() as f64);
    // About 0.5% duplicates, a few late events, mostly sorted.
    let duplicates: u64 = census.message_ids.values().map(|n| n - 1).sum();
    let duplicate_rate = duplicates as f64 / census.total as f64;
    assert!(
        (0.003..0.008).contains(&duplicate_rate),
        "duplicates {duplicate_rate}"
    );
    let late = census.out_of_order as f64 / census.total as f64;
    assert!(late > 0.0 && late < 0.02, "out of order {late}");
    let average = census.bytes as f64 / census.total as f64;
    assert!(
        (250.0..550.0).contains(&average),
        "average line {average} bytes"
    );
}

#[test]
fn no_malformed_lines_unless_asked() {
    let census = census(SynthOptions {
        seed: 5,
        ..SynthOptions::default()
    });
    assert_eq!(census.malformed, 0);
}

#[test]
fn empty_options_give_an_empty_stream() {
    assert_eq!(
        generate(SynthOptions {
            users: 0,
            ..SynthOptions::default()
        })
        .count(),
        0
    );
    assert_eq!(
        generate(SynthOptions {
            days: 0,
            ..SynthOptions::default()
        })
        .count(),
        0
    );
    // Without sessions, only sign-ups remain (and their consequences).
    let census = census(SynthOptions {
        events: 0,
        ..SynthOptions::default()
    });
    let count = |name: &str| census.events.get(name).copied().unwrap_or(0);
    assert!(count("signed_up") > 0);
    assert!(count("product_viewed") < 10 * count("signed_up"));
}
