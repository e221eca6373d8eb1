//! The generated corpus shared by `benches/check_compile.rs` and
//! `examples/parse_corpus.rs` (the profiling driver): 2,000 varied, valid
//! journeys (~50,000 lines) with a schema, templates, segments and a policy.

use std::fmt::Write as _;

use journey::SourceMap;

pub const JOURNEYS: usize = 2_000;
/// Journeys per file, as a team would split them.
const PER_FILE: usize = 20;

const SCHEMA: &str = r#"
profile {
  email: string?
  phone: string?
  push_token: string?
  first_name: string?
  timezone: string?
  country: string?
  lifetime_value: number?
  plan: string?
  loyalty_tier: string?
  unsubscribed: bool?
  consent: { email: bool?, sms: bool?, push: bool?, whatsapp: bool? }
  last_order_at: timestamp?
  signed_up_at: timestamp?
}

event signed_up { source: string, plan: string? }
event product_viewed { product_id: string, category: string, price: number }
event added_to_cart { cart_id: string, product_id: string, price: number }
event cart_abandoned { cart_id: string, total: number, items: list<string> }
event "Order Completed" { order_id: string, cart_id: string?, total: number, items: list<string> }
event ebook_downloaded { ebook_id: string, title: string }
event webinar_registered { webinar_id: string }
event app_opened { }
event class_booked { class_id: string, class_name: string, starts_at: timestamp, studio: string }
event class_attended { class_id: string }
event membership_expiring { membership_id: string, plan: string, expires_at: timestamp }
event membership_renewed { membership_id: string }
event cart_journey_done { cart: string, total: number }
event class_checked_in { class: string }

template reminder_email {
  channel email
  subject "{{ profile.first_name }}, you left something behind"
  body "Your cart of {{ trigger.total }} is waiting."
}
template reminder_sms { channel sms  body "Cart waiting: {{ trigger.total }}" }
template reminder_push { channel push  body "Come back!" }
template welcome_email {
  channel email
  subject "Welcome {{ profile.first_name }}"
  body "Thanks for joining from {{ trigger.source }}."
}
template class_sms { channel sms  body "{{ trigger.class_name }} starts soon" }
template renew_email { channel email  subject "Renew" body "Your {{ trigger.plan }} plan expires" }

segment big_spender = profile.lifetime_value >= 500
segment vip = big_spender and profile.country in ["FR", "DE", "ES"]
segment reachable_anywhere = reachable(email) or reachable(sms)

policy {
  cap messages 5 per 7d
  cap sms 2 per 1d
  quiet hours 21:00 to 08:00
}
"#;

fn cart_journey(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
/// Abandoned cart, variant {i}.
journey cart_{i} {{
  name "Cart recovery {i}"
  trigger cart_abandoned where event.total >= {min}
  audience profile.country != "US" and not (profile.plan == "internal")
  reentry after 7d
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  goal "Order Completed" within 7d
  holdout 5%
  cap email 2 per 1d
  quiet hours 21:00 to 08:00 in profile.timezone

  wait {wait}h
  send email reminder_email as reminder
  wait for reminder.opened within 1d {{
    wait 2h
  }} else {{
    send push reminder_push or sms reminder_sms
  }}
  wait 2d
  if trigger.total > 100 and reminder.clicked {{
    send email reminder_email with {{ code: "SAVE10" }}
  }} else if vip {{
    send email reminder_email with {{ code: "VIP" }}
  }} else {{
    set profile.loyalty_tier = "cart"
  }}
  split cart_test_{i} {{
    50% control {{
      wait 1d
    }}
    50% treatment {{
      wait until 09:00 on monday, friday
      send sms reminder_sms on capped wait
    }}
  }}
  emit cart_journey_done with {{ cart: trigger.cart_id, total: trigger.total * 2 }}
}}
"#,
        min = 10 + i % 50,
        wait = 1 + i % 5,
    );
}

fn welcome_journey(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
/// Onboarding, variant {i}.
journey welcome_{i} {{
  name "Welcome {i}"
  trigger signed_up where event.source == "web" or event.source == "app"
  exit if profile.unsubscribed == true
  goal "Order Completed" within 30d

  send email welcome_email as welcome
  wait 1d
  repeat {times} times {{
    wait for app_opened within 2d {{
      add to audience engaged_{i} until exit
    }} else {{
      send push "nudge_{i}"
    }}
  }}
  if profile.lifetime_value > 100 {{
    send email "upsell_{i}" with {{ tier: profile.loyalty_tier }}
  }}
  wait for welcome.clicked within 3d else {{
    send sms "welcome_sms_{i}"
  }}
  split {{
    30% a {{ send email "tips_a" }}
    70% b {{ wait 12h }}
  }}
  remove from audience prospects
  set profile.plan = coalesce(trigger.plan, "free")
}}
"#,
        times = 2 + i % 3,
    );
}

fn class_journey(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
/// Class reminder, variant {i}.
journey class_{i} {{
  trigger class_booked where event.studio == "studio_{studio}"
  reentry always
  exit on class_attended where event.class_id == trigger.class_id

  wait until trigger.starts_at - 2h
  send sms class_sms transactional
  wait for class_attended within 1d {{
    emit class_checked_in with {{ class: trigger.class_id }}
  }} else {{
    send email "missed_class_{i}" with {{ name: trigger.class_name }}
    if days_since(trigger.starts_at) < 2 {{
      send push "rebook_{i}"
    }}
  }}
  wait until 10:00
  send email "class_feedback_{i}"
}}
"#,
        studio = i % 7,
    );
}

fn membership_journey(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
/// Renewal, variant {i}.
journey renewal_{i} {{
  trigger membership_expiring where event.plan != "trial"
  exit on membership_renewed where event.membership_id == trigger.membership_id
  cap messages 3 per 7d

  send email renew_email
  wait 3d
  if reachable(sms) and profile.consent.sms != false {{
    send sms "renew_sms_{i}"
  }} else {{
    send push "renew_push_{i}"
  }}
  wait until trigger.expires_at - 1d
  send email renew_email with {{ last: true }}
  wait 2d
  exit
}}
"#
    );
}

fn win_back_journey(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
/// Win back, variant {i}.
journey win_back_{i} {{
  trigger no "Order Completed" for {days}d
  audience reachable_anywhere
  reentry after 60d
  goal "Order Completed" within 14d

  send email "we_miss_you_{i}"
  wait for "Order Completed" within 7d else {{
    send email "last_chance_{i}" with {{ discount: {discount} }}
    wait 2d
    send sms "last_sms_{i}"
  }}
}}
"#,
        days = 30 + i % 60,
        discount = 5 + i % 20,
    );
}

/// The corpus as files of [`PER_FILE`] journeys, the first with the schema.
pub fn corpus() -> (SourceMap, usize) {
    let mut sources = SourceMap::new();
    let mut lines = 0;
    let mut text = String::from(SCHEMA);
    for i in 0..JOURNEYS {
        match i % 5 {
            0 => cart_journey(&mut text, i),
            1 => welcome_journey(&mut text, i),
            2 => class_journey(&mut text, i),
            3 => membership_journey(&mut text, i),
            _ => win_back_journey(&mut text, i),
        }
        if (i + 1) % PER_FILE == 0 || i + 1 == JOURNEYS {
            lines += text.lines().count();
            let name = format!("journeys/generated_{:03}.journey", i / PER_FILE);
            sources.add(name, std::mem::take(&mut text));
        }
    }
    (sources, lines)
}
