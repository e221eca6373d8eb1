//! The parser never panics: not on arbitrary strings, nor on random
//! byte-level mutations (delete, insert, replace) of a valid source.

use journey::syntax::parse;
use journey::{FileId, SourceFile};
use proptest::prelude::*;

#[path = "support/mutate.rs"]
mod mutate;

const SAMPLE: &str = r#"profile { email: string?, consent: { email: bool? }, tags: list<string> }
event "Order Completed" { order_id: string, total: number }
channel whatsapp { address profile.phone consent profile.consent.whatsapp }
template cart_reminder { channel email subject "Hi \u{1F600}" body "Body\n" }
segment vip = profile.lifetime_value >= 500 and profile.country in ["FR", "DE"]
policy { cap messages 3 per 7d  quiet hours 21:00 to 08:00 }

/// Win back a customer.
journey abandoned_cart {
  name "Abandoned cart recovery"
  trigger cart_abandoned where event.total >= 20
  trigger no any for 30d
  audience not (profile.country == "US")
  reentry after 7d
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  goal "Order Completed" within 7d
  holdout 5%
  cap email 2 per 1d
  quiet hours 21:00 to 08:00 in profile.timezone
  wait 1h30m
  send email cart_reminder as reminder
  wait for reminder.opened within 1d else {
    send push cart_push or sms cart_sms with { code: "X" } transactional on capped wait
  }
  if trigger.total > 100 { send email d with { n: -3 * 2 } } else if vip { exit } else { wait until 09:00 on monday }
  split ab { 50% a { wait 1m } 50% b { } }
  repeat 3 times { emit nudge }
  set profile.a.b = now() - 1d
  wait until 2026-12-24T09:00:00Z
  add to audience retarget until exit
  remove from audience retarget
  wait for "Order Completed" within 2d { exit }
}
"#;

/// Pieces that make mutations hit interesting paths.
const TOKENS: &[&str] = &[
    "{", "}", "\"", "\\", "//", "///", "\n", " ", "=", "==", "%", ":", ".", ",", "(", ")", "[",
    "]", "-", "journey", "wait", "else", "1 day", "0s", "24:00", "\\u{", "é", "😀", "\u{0}",
];

fn parse_text(text: &str) {
    let file = SourceFile::new(FileId(0), "fuzz.journey", text);
    let (_ast, diags) = parse(&file);
    for d in &diags {
        assert!(
            d.span.end as usize <= text.len(),
            "span past the end: {d:?}"
        );
        assert!(d.span.start <= d.span.end);
        assert!(text.is_char_boundary(d.span.start as usize));
        assert!(text.is_char_boundary(d.span.end as usize));
        let _ = file.line_col(d.span.start);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        parse_text(&text);
    }

    #[test]
    fn token_soup(parts in proptest::collection::vec(0usize..TOKENS.len(), 0..40)) {
        let text: String = parts.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
        parse_text(&text);
    }

    #[test]
    fn mutations_of_a_valid_source(edits in proptest::collection::vec(mutate::edit(), 1..6)) {
        let mut text = SAMPLE.to_owned();
        for e in &edits {
            mutate::apply(&mut text, e, TOKENS);
        }
        parse_text(&text);
    }
}

#[test]
fn the_sample_is_valid() {
    let file = SourceFile::new(FileId(0), "sample.journey", SAMPLE);
    let (ast, diags) = parse(&file);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(ast.items.len(), 7);
}
