//! What the parser promises a user, on every `.journey` file of the
//! repository, on snippets at the edges of the grammar, and on random
//! mutations:
//!
//! - an error in one item never changes how the next item parses: the
//!   items and diagnostics after a broken item are those of the next item
//!   parsed alone;
//! - comments never change the meaning of a file without syntax errors, and
//!   every one is reachable from the syntax tree with its span;
//! - items and diagnostics lie inside the file, items in order.

use journey::syntax::ast::{File, Item};
use journey::syntax::parse;
use journey::{Diagnostic, FileId, SourceFile};
use proptest::prelude::*;

#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[path = "support/mutate.rs"]
mod mutate;

#[path = "support/journey_files.rs"]
mod journey_files;
use journey_files::{journey_files, read, root};

fn parse_text(text: &str) -> (File, Vec<Diagnostic>) {
    parse(&SourceFile::new(FileId(3), "test.journey", text))
}

/// Spans inside the text, items in order and apart, comments as written.
fn spans_hold(name: &str, text: &str, file: &File, diags: &[Diagnostic]) {
    let len = text.len() as u32;
    for d in diags {
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "{name}: {d:?}"
        );
    }
    let mut end = 0;
    for item in &file.items {
        let span = item.span();
        assert!(
            end <= span.start && span.start < span.end && span.end <= len,
            "{name}: {span:?}"
        );
        end = span.end;
    }
    let mut end = 0;
    for comment in &file.comments {
        let (start, stop) = (comment.span.start as usize, comment.span.end as usize);
        assert!(end <= start, "{name}: comments out of order");
        assert_eq!(&text[start..stop], comment.text, "{name}");
        assert!(
            comment.text.starts_with("//") && !comment.text.contains('\n'),
            "{name}"
        );
        end = stop;
    }
}

/// The file with every comment blanked out (its newlines kept).
fn without_comments(text: &str, file: &File) -> String {
    let mut out = text.to_owned();
    for comment in &file.comments {
        let range = comment.span.start as usize..comment.span.end as usize;
        out.replace_range(range.clone(), &" ".repeat(range.len()));
    }
    out
}

/// The items with their doc comments (which come from comments) dropped.
fn undocumented(mut file: File) -> Vec<Item> {
    for item in &mut file.items {
        if let Item::Journey(journey) = item {
            journey.doc = None;
        }
    }
    file.items
}

/// Every promise above that one text can show.
fn promises_hold(name: &str, text: &str) -> (File, Vec<Diagnostic>) {
    let (file, diags) = parse_text(text);
    spans_hold(name, text, &file, &diags);
    let blank = without_comments(text, &file);
    let (bare, bare_diags) = parse_text(&blank);
    assert!(bare.comments.is_empty(), "{name}: a comment left behind");
    // Where an item has a syntax error, how far recovery gets depends on
    // the lines, comments included; elsewhere comments change nothing.
    let syntax = |d: &Diagnostic| d.code.id == "E0101";
    if !diags.iter().any(syntax) && !bare_diags.iter().any(syntax) {
        assert_eq!(
            bare_diags, diags,
            "{name}: comments changed the diagnostics"
        );
        assert_eq!(
            undocumented(bare),
            undocumented(file.clone()),
            "{name}: comments changed the items"
        );
    }
    (file, diags)
}

#[test]
fn every_repository_file_keeps_the_promises() {
    let mut files = 0;
    for dir in ["journeys", "tests/fixtures"] {
        for path in journey_files(&root().join(dir)) {
            promises_hold(&path.display().to_string(), &read(&path));
            files += 1;
        }
    }
    assert!(files > 100, "only {files} files found");
}

#[test]
fn the_example_journeys_and_the_benchmark_corpus_are_clean() {
    let examples = journey_files(&root().join("journeys"));
    assert!(examples.len() >= 10);
    let (corpus, _) = corpus::corpus();
    let texts = examples
        .iter()
        .map(|p| (p.display().to_string(), read(p)))
        .chain(
            corpus
                .files()
                .iter()
                .map(|f| (f.name.to_string(), f.text.to_string())),
        );
    for (name, text) in texts {
        let (file, diags) = parse_text(&text);
        assert_eq!(diags, Vec::new(), "{name}");
        assert!(!file.items.is_empty(), "{name}");
    }
}

#[test]
fn doc_comments_reach_the_journey() {
    let text = "// a comment\n/// Wins customers back.\n/// Twice.\njourney j { exit } // after\n";
    let (file, diags) = promises_hold("doc", text);
    assert!(diags.is_empty(), "{diags:?}");
    let Some(Item::Journey(journey)) = file.items.first() else {
        panic!("no journey: {file:?}");
    };
    assert_eq!(journey.doc.as_deref(), Some("Wins customers back.\nTwice."));
    let comments: Vec<&str> = file.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        comments,
        [
            "// a comment",
            "/// Wins customers back.",
            "/// Twice.",
            "// after"
        ]
    );
}

/// Snippets on the edges of the grammar: the `valid` ones parse with no
/// diagnostic, and every one keeps the promises.
#[test]
fn tricky_snippets() {
    let valid = [
        "segment s = -3 * - -4 + -(5) - not x",
        "segment s = not a == b and c or d in [1, 2,] and e not in\n [] contains f",
        "segment s = a == not b == c + 1 * 2 / 3 - 4",
        "segment s = f(a, b,) + g() + h (1) + profile.a.b.c + event.x",
        "segment s = x // trailing\n// another comment\n\n",
        "segment s = \"a // b\" // c\n",
        "segment s = now() - 1h30m + 0s > 2026-12-24T09:00:00Z",
        "segment s = 1.5 + 10 - 2026 - true - null - false",
        "segment s = \"esc \\\" \\\\ \\n \\t \\u{1F600}\"",
        "segment s = [\"multi\nline\", x] and y\n\n// c \"q\n",
        "template t { body \"a\nb\" // x \"y\n channel email } // z\n",
        "template t { channel email subject \"s\" body \"b\" }",
        "template t { html \"<p>{{ x }}</p>\" channel email body \"b\" }",
        "event \"Order Completed\" { a: string, b: list<list<number>>? c: { d: bool } }",
        "event e{}",
        "profile { x : timestamp ? , y: duration }",
        "channel c { consent profile.x address profile.y }",
        "policy { cap messages 3 per 7d quiet hours 21:00 to 08:00 in \"UTC\" cap sms 1 per 1d }",
        "journey j {\n  wait 1h\n  name \"late header\"\n  trigger e where event.x == 1\n  exit\n}",
        "journey j { trigger no any for 30d trigger no \"x\" for 1d exit on x exit if y }",
        "journey j { goal x where a within 7d goal y within 1d goal z holdout 12.5% reentry never }",
        "journey j { reentry always reentry after 1w audience a cap email 2 per 1d }",
        "journey j { send email t with { a: 1, b: x or y } or sms \"ext\" as h transactional on capped skip }",
        "journey j { send email t on capped wait wait for h.opened within 1d { exit } else { exit } }",
        "journey j { wait for \"E x\" where event.a within 2d else { } wait for e within 1d {} }",
        "journey j { wait until 09:00 on monday, sunday wait until 23:59 wait until trigger.at - 2h }",
        "journey j { if a { } else if b { exit } else if c { } else { wait 1s } }",
        "journey j { split s { 50% a { } 50%b{} } split { 100% only { exit } } }",
        "journey j { repeat 3 times { emit e with { x: 1 } } set profile.a.b = 1 emit \"E\" }",
        "journey j { add to audience a until exit add to audience b remove from audience a }",
        "journey j {\n  // comment\n  exit // after\n}\n\n/// doc of the next\n",
    ];
    for (n, src) in valid.iter().enumerate() {
        let (file, diags) = promises_hold(&format!("valid_{n}"), src);
        assert_eq!(diags, Vec::new(), "valid_{n}: {src:?}");
        assert!(!file.items.is_empty(), "valid_{n}: {src:?}");
    }
    let edges = [
        // pest's span ends after the comment here: its comment search
        // starts the last line outside the string.
        "segment s = x == \"multi\nline\" // c\n",
        "segment s = a = b",
        "segment and = x",
        "segment s = x or",
        "segment s = 5 min",
        "segment s = 1e5",
        "segment s = 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
        "segment s = 2026-13-45T99:00:00Z",
        "segment s = \"bad \\q escape\"",
        "segment s = exit",
        "segment s = not // c\n in x",
        "segment s = a not // c\n in x",
        "journey j { send email t with { a: x or: 1 } }",
        "journey j { exit\n if x { } }",
        "journey j { trigger no where x }",
        "journey j { trigger no for 1d }",
        "journey j { wait 0s wait 1 day wait 1h30 }",
        "journey j { quiet hours 24:00 to 9:5 }",
        "journey j { holdout 0% holdout 101% }",
        "journey j { repeat 1.5 times { } cap email 99999999999999999999 per 1d }",
        "journey j { send email t as a as b }",
        "journey j { wait for event.opened within 1d }",
        "journey j { wait until 09:00 on mondayx }",
        "template t { body \"x\" }",
        "template t { channel email channel sms }",
        "template t { channel email body \"b\" html \"h\" html \"i\" }",
        "template t { channel email html 1 }",
        "journey wait { }",
        "journey j { split exit { } }",
        "journey j { set profile.x == 1 }",
        "journey j { if x { } else }",
        "event exit { }",
        "segment s = x\n  +",
    ];
    for (n, src) in edges.iter().enumerate() {
        promises_hold(&format!("edge_{n}"), src);
    }
}

// ------------------------------------------------------------ mutations

/// A valid prefix to break (no string escapes, so that a mutation that
/// unbalances quotes can be told apart and skipped).
const PREFIX: &str = r#"profile { email: string?, tags: list<string> }
event "Order Completed" { order_id: string, total: number }
template cart_reminder { channel email subject "Hi" body "Body" }
segment vip = profile.lifetime_value >= 500 and profile.country in ["FR", "DE"]
policy { cap messages 3 per 7d  quiet hours 21:00 to 08:00 }
journey abandoned_cart {
  trigger cart_abandoned where event.total >= 20
  exit on "Order Completed" where event.cart_id == trigger.cart_id
  wait 1h30m
  send email cart_reminder as reminder
  wait for reminder.opened within 1d else {
    send push cart_push or sms cart_sms with { code: "X" } transactional
  }
  if trigger.total > 100 { exit } else { wait until 09:00 on monday }
  split ab { 50% a { wait 1m } 50% b { } }
}
"#;

/// The item after the broken ones, with a doc comment and an error of its own.
const NEXT: &str = "\n\n/// The next item.\njourney next {\n  trigger signed_up // why\n  wait 0s\n  send email welcome\n}\n";

/// Pieces that make mutations hit interesting paths; no `"` or `\\`.
const TOKENS: &[&str] = &[
    "{", "}", "//", "///", "\n", " ", "=", "==", "%", ":", ".", ",", "(", ")", "[", "]", "-",
    "journey", "segment", "template", "event", "wait", "else", "if", "exit", "within", "1 day",
    "0s", "24:00", "x", "1", "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn an_error_never_changes_the_next_item(
        edits in proptest::collection::vec(mutate::edit(), 1..6),
    ) {
        let mut prefix = PREFIX.to_owned();
        for e in &edits {
            mutate::apply(&mut prefix, e, TOKENS);
        }
        // An unclosed string runs to the end of the file, by design.
        prop_assume!(prefix.matches('"').count().is_multiple_of(2));
        let text = format!("{prefix}{NEXT}");
        let (file, diags) = promises_hold("mutated", &text);
        // The next item alone, at the same offsets.
        let alone = format!("{}{NEXT}", " ".repeat(prefix.len()));
        let (expected, expected_diags) = parse_text(&alone);
        let from = prefix.len() as u32;
        let after: Vec<&Item> = file.items.iter().filter(|i| i.span().start >= from).collect();
        prop_assert_eq!(after, expected.items.iter().collect::<Vec<_>>());
        // A broken item may be reported where the next one begins (`found
        // \`journey\``); the next item's own diagnostics lie past its keyword.
        let keyword = from + NEXT.find("journey").unwrap_or(0) as u32;
        let own = |d: &&Diagnostic| d.span.start > keyword;
        let after_diags: Vec<&Diagnostic> = diags.iter().filter(own).collect();
        let expected_diags: Vec<&Diagnostic> = expected_diags.iter().filter(own).collect();
        prop_assert_eq!(expected_diags.len(), 1);
        prop_assert_eq!(after_diags, expected_diags);
    }
}
