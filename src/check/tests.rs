//! Unit tests of the trickier checks, on real source text: handle binding
//! across branches, type inference, scoping of `event.`/`trigger.`.

use crate::source::SourceMap;

/// The codes found in one file, in source order.
fn codes(text: &str) -> Vec<&'static str> {
    let mut sources = SourceMap::new();
    sources.add("test.journey", text);
    let (_, diags) = crate::pipeline::check_sources(sources);
    diags.items.iter().map(|d| d.code.id).collect()
}

fn journey(steps: &str) -> String {
    format!("journey j {{\n  trigger signed_up\n{steps}\n}}\n")
}

#[test]
fn handle_bound_by_every_branch_of_an_if_else() {
    let text = journey(
        "if profile.plan == \"pro\" { send email a as m } else { send sms b as n }
         if true { }",
    );
    assert!(!codes(&text).contains(&"E0211"));
    let text = journey(
        "if profile.plan == \"pro\" { send email t } else if profile.x { send sms t } else { send push t }
         wait for t.opened within 1d",
    );
    assert_eq!(codes(&text), Vec::<&str>::new());
}

#[test]
fn an_if_without_else_does_not_bind() {
    let text = journey("if profile.vip == true { send email t }\nwait for t.opened within 1d");
    assert_eq!(codes(&text), vec!["E0211"]);
}

#[test]
fn a_branch_that_exits_does_not_reach_the_join() {
    let text = journey(
        "if profile.vip == true { send email t } else { exit }\nif t.clicked { send sms u }",
    );
    assert_eq!(codes(&text), Vec::<&str>::new());
}

#[test]
fn wait_for_blocks_bind_only_on_their_path() {
    let both = journey(
        "send email a\nwait for a.opened within 1d { send sms t } else { send push t }\nif t.sent { send email c }",
    );
    assert_eq!(codes(&both), Vec::<&str>::new());
    let one = journey(
        "send email a\nwait for a.opened within 1d { send sms t }\nif t.sent { send email c }",
    );
    assert_eq!(codes(&one), vec!["E0211"]);
    let inside = journey(
        "send email a\nwait for a.opened within 1d { send sms t\nif t.sent { send email c } }",
    );
    assert_eq!(codes(&inside), Vec::<&str>::new());
}

#[test]
fn split_arms_must_all_bind_and_repeat_binds() {
    let split = journey(
        "split { 50% a { send email t } 50% b { send sms t } }\nif t.opened { send push p }",
    );
    assert_eq!(codes(&split), Vec::<&str>::new());
    let repeat = journey("repeat 3 times { send email t }\nif t.opened { send push p }");
    assert_eq!(codes(&repeat), Vec::<&str>::new());
    let use_before = journey("repeat 3 times { wait for t.opened within 1d\nsend email t }");
    assert_eq!(codes(&use_before), vec!["E0211"]);
}

#[test]
fn a_handle_wins_over_a_segment_of_the_same_name() {
    let text = format!(
        "segment t = profile.x == 1\n{}",
        journey("send email t\nif t.opened { send sms u }")
    );
    assert_eq!(codes(&text), Vec::<&str>::new());
}

#[test]
fn external_templates_give_a_handle_only_when_identifiers() {
    let ok = journey("send email \"tmpl_1\"\nif tmpl_1.opened { send sms u }");
    assert_eq!(codes(&ok), Vec::<&str>::new());
    let none = journey("send email \"tmpl-1\"\nif tmpl.opened { send sms u }");
    assert_eq!(codes(&none), vec!["E0203"]);
}

#[test]
fn types_follow_time_arithmetic() {
    let ok = journey(
        "wait until now() + 1d\nif now() - journey.entered_at > 2h and 1d + 1h < 2d { send email x }",
    );
    assert_eq!(codes(&ok), Vec::<&str>::new());
    assert_eq!(
        codes(&journey("wait until 1d + 1d\nsend email x")),
        vec!["E0301"]
    );
    assert_eq!(
        codes(&journey("if 1d * 2 > profile.d { send email x }")),
        vec!["E0301"]
    );
    assert_eq!(
        codes(&journey(
            "wait until journey.entered_at - now()\nsend email x"
        )),
        vec!["E0301"]
    );
}

#[test]
fn unknown_and_null_are_compatible_without_schema() {
    let ok = journey(
        "if profile.x == \"a\" and profile.x == 3 and profile.y == null and trigger.z in [1, 2] { send email x }",
    );
    assert_eq!(codes(&ok), Vec::<&str>::new());
}

#[test]
fn literals_make_types_certain_without_schema() {
    assert_eq!(
        codes(&journey("if 3 == \"3\" { send email x }")),
        vec!["E0301", "W0003"]
    );
    assert_eq!(
        codes(&journey("if \"x\" in \"xyz\" { send email x }")),
        vec!["W0003", "E0301"]
    );
}

#[test]
fn strict_profile_allows_builtin_channel_fields() {
    let text = format!(
        "profile {{ email: string? }}\nsegment s = profile.unsubscribed != true and profile.consent.sms != false and profile.timezone != \"UTC\"\n{}",
        journey("send email x")
    );
    assert_eq!(codes(&text), Vec::<&str>::new());
    let bad = format!(
        "profile {{ email: string? }}\nsegment s = profile.consent.fax == true\n{}",
        journey("send email x")
    );
    assert_eq!(codes(&bad), vec!["E0207"]);
}

#[test]
fn engagement_events_are_known_in_strict_mode() {
    let text = "event signed_up { source: string }
journey j {
  trigger signed_up
  exit on \"message.clicked\" where event.template == \"x\"
  send email x
}
";
    assert_eq!(codes(text), Vec::<&str>::new());
}

#[test]
fn trigger_fields_must_exist_on_every_trigger_event() {
    let text = "event a { id: string, total: number }
event b { id: string }
journey j {
  trigger a
  trigger b
  send email x with { id: trigger.id, total: trigger.total }
}
";
    assert_eq!(codes(text), vec!["E0207"]);
}

#[test]
fn names_are_global_across_files() {
    let mut sources = SourceMap::new();
    sources.add(
        "a.journey",
        "segment vip = profile.ltv > 5\ntemplate t { channel email body \"x\" }",
    );
    sources.add(
        "b.journey",
        "journey j { trigger e\n audience vip\n send sms t }",
    );
    sources.add("c.journey", "segment vip = true");
    let (_, diags) = crate::pipeline::check_sources(sources);
    let codes: Vec<_> = diags.items.iter().map(|d| d.code.id).collect();
    assert_eq!(codes, vec!["E0408", "E0201"]);
}

#[test]
fn nothing_panics_on_odd_input() {
    for text in [
        "journey j { }",
        "journey j { trigger e\n split { } }",
        "template t { channel nope body \"{{\" }",
        "template t { channel email body \"\\u{1F600}{% if %}\" }",
        "segment a = b\nsegment b = a",
    ] {
        let _ = codes(text);
    }
}

/// The model hands compile each reference resolved, by the span of its
/// name, with the program's ids: built-in channels first, declared ones by
/// name; templates by name.
#[test]
fn the_model_resolves_channels_templates_and_segments_by_span() {
    let text = "channel zz {\n  address profile.zz_id\n}\n\
channel aa {\n  address profile.aa_id\n}\n\
template t_b {\n  channel zz\n  body \"b\"\n}\n\
template t_a {\n  channel aa\n  body \"a\"\n}\n\
segment vip = profile.vip == true\n\
segment big = vip and profile.spent > 10\n\
journey j {\n  trigger signed_up\n  if big and reachable(aa) {\n    send zz t_b\n  }\n  send aa t_a\n}\n";
    let mut sources = SourceMap::new();
    sources.add("test.journey", text);
    let (project, syntax) = crate::project::Project::parse(sources);
    assert!(syntax.is_empty());
    let (model, diags) = super::check(&project);
    let errors: Vec<&String> = diags
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Error)
        .map(|d| &d.message)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let builtins = crate::channels::names().count();
    let scope = &model.scope;
    assert_eq!(scope.channels.get("aa").map(|c| c.id), Some(builtins));
    assert_eq!(scope.channels.get("zz").map(|c| c.id), Some(builtins + 1));
    let ids: Vec<&str> = scope.channels_by_id().iter().map(|(n, _)| *n).collect();
    assert_eq!(ids[builtins..], ["aa", "zz"]);
    let templates: Vec<&str> = scope
        .templates_by_id
        .iter()
        .map(|t| t.name.name.as_str())
        .collect();
    assert_eq!(templates, ["t_a", "t_b"]);

    // Each name, by the span of its `n`th occurrence in the text.
    let at = |name: &str, n: usize| -> crate::source::Span {
        let start = text
            .match_indices(name)
            .map(|(i, _)| i)
            .filter(|&i| {
                let before = text[..i].chars().next_back();
                let after = text[i + name.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
            .nth(n)
            .unwrap_or_else(|| panic!("`{name}` #{n} not in the text"));
        crate::source::Span::new(crate::source::FileId(0), start, start + name.len())
    };
    let refs = &model.refs;
    // `channel zz` in t_b, `reachable(aa)`, `send zz`, `send aa`.
    assert_eq!(refs.channels.get(&at("zz", 1)), Some(&(builtins + 1)));
    assert_eq!(refs.channels.get(&at("aa", 2)), Some(&builtins));
    assert_eq!(refs.channels.get(&at("zz", 2)), Some(&(builtins + 1)));
    assert_eq!(refs.channels.get(&at("aa", 3)), Some(&builtins));
    assert_eq!(refs.templates.get(&at("t_b", 1)), Some(&1));
    assert_eq!(refs.templates.get(&at("t_a", 1)), Some(&0));
    let vip = scope.segments.index("vip");
    let big = scope.segments.index("big");
    assert_eq!(refs.segments.get(&at("vip", 1)).copied(), vip);
    assert_eq!(refs.segments.get(&at("big", 1)).copied(), big);
    assert_eq!(refs.segments.len(), 2);
}

/// Handles, what is read of them, the sends that bind one at run time and
/// the functions called, each by the span of its name.
#[test]
fn the_model_resolves_handles_and_functions_by_span() {
    let text = "journey j {\n  trigger signed_up\n  send email welcome as hello\n  send email tips\n  send email promo\n  wait for hello.clicked within 1d\n  if promo.opened and not hello.sent and len(lower(\"A\")) > 0 {\n    send sms nudge\n  }\n}\n";
    let mut sources = SourceMap::new();
    sources.add("test.journey", text);
    let (project, syntax) = crate::project::Project::parse(sources);
    assert!(syntax.is_empty());
    let (model, diags) = super::check(&project);
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "{:?}",
        diags.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
    let span = |needle: &str, n: usize| {
        let start = text
            .match_indices(needle)
            .nth(n)
            .unwrap_or_else(|| panic!("`{needle}` #{n}"))
            .0;
        crate::source::Span::new(crate::source::FileId(0), start, start + needle.len())
    };
    let step = |needle: &str| {
        let start = text.find(needle).expect("in the text");
        crate::source::Span::new(crate::source::FileId(0), start, start + needle.len())
    };
    use crate::builtins::{Engagement, Function, HandleField};
    let refs = &model.refs;
    // Handles numbered in the order of the sends that bind them.
    assert_eq!(refs.handles.get(&span("hello", 1)), Some(&0));
    assert_eq!(refs.handles.get(&span("promo", 1)), Some(&2));
    assert_eq!(refs.handles.get(&span("hello", 2)), Some(&0));
    let clicked = HandleField::Engaged(Engagement::Clicked);
    assert_eq!(refs.handle_fields.get(&span("clicked", 0)), Some(&clicked));
    let opened = HandleField::Engaged(Engagement::Opened);
    assert_eq!(refs.handle_fields.get(&span("opened", 0)), Some(&opened));
    assert_eq!(
        refs.handle_fields.get(&span("sent", 0)),
        Some(&HandleField::Sent)
    );
    // `as hello` and the read `promo` bind; `tips` and `nudge` are never read.
    assert_eq!(
        refs.binds.get(&step("send email welcome as hello")),
        Some(&0)
    );
    assert_eq!(refs.binds.get(&step("send email promo")), Some(&2));
    assert_eq!(refs.binds.len(), 2);
    assert_eq!(refs.functions.get(&span("len", 0)), Some(&Function::Len));
    assert_eq!(
        refs.functions.get(&span("lower", 0)),
        Some(&Function::Lower)
    );
}
