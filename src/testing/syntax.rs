//! `*.journey-test` text → [`Test`]s. pest stays in here.

use pest::Parser;
use pest::iterators::Pair;

use super::{Expect, ExpectKind, Input, InputKind, Named, Obj, Test, Time, Val};
use crate::diagnostic::Diagnostic;
use crate::diagnostic::codes;
use crate::runtime::ExitReason;
use crate::source::{SourceFile, Span};
use crate::syntax::{parse_duration, unescape};
use crate::value;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/journey_test.pest"]
struct TestParser;

/// The tests of one file, and its syntax diagnostics (none parsed when the
/// file has a syntax error).
pub fn parse(file: &SourceFile) -> (Vec<Test>, Vec<Diagnostic>) {
    let mut p = Visit {
        file,
        diags: Vec::new(),
    };
    let tests = match TestParser::parse(Rule::file, &file.text) {
        Ok(mut pairs) => {
            let root = pairs.next().expect("a file");
            root.into_inner()
                .filter(|t| t.as_rule() == Rule::test)
                .map(|t| p.test(t))
                .collect()
        }
        Err(e) => {
            p.diags.push(syntax_error(file, &e));
            Vec::new()
        }
    };
    (tests, p.diags)
}

fn syntax_error(file: &SourceFile, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let rest = &file.text[pos..];
    let len = rest
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(rest.len(), |(i, _)| i)
        .max(rest.chars().next().map_or(0, char::len_utf8));
    let found = if rest.is_empty() {
        "the end of the file".to_owned()
    } else {
        format!("`{}`", &rest[..len])
    };
    let expected: Vec<String> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<String> = positives.iter().filter_map(|r| describe(*r)).collect();
            words.sort();
            words.dedup();
            words
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", or_list(&expected))
    };
    Diagnostic::new(codes::SYNTAX, file.span(pos, pos + len), message)
        .with_help("docs/testing.md shows every statement of a journey test")
}

fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn describe(rule: Rule) -> Option<String> {
    Some(
        match rule {
            Rule::test => "`test \"...\" { ... }`",
            Rule::string => "a string",
            Rule::number => "a number",
            Rule::timestamp => "a timestamp",
            Rule::relative => "a time such as `+1h`",
            Rule::time => "a time (`+1h` or a timestamp)",
            Rule::user => "a customer",
            Rule::name => "a name",
            Rule::ident => "a name",
            Rule::start => "`start`",
            Rule::until => "`until`",
            Rule::given_profile => "`profile`",
            Rule::at_event => "`at`",
            Rule::expect => "`expect`",
            Rule::expect_send => "`send`",
            Rule::expect_no_send => "`no send`",
            Rule::exits => "`exits`",
            Rule::converts => "`converts`",
            Rule::enters => "`enters`",
            Rule::from_journey => "`from`",
            Rule::at_time => "`at`",
            Rule::subject => "`subject`",
            Rule::after => "`after`",
            Rule::because => "`because`",
            Rule::object => "`{`",
            Rule::pair => "a `key: value` pair",
            Rule::list => "a list",
            Rule::track => "an event",
            Rule::profile_update => "`profile`",
            Rule::EOI => "the end of the file",
            Rule::kw_true | Rule::kw_false | Rule::kw_null => "a value",
            _ => return None,
        }
        .to_owned(),
    )
}

struct Visit<'a> {
    file: &'a SourceFile,
    diags: Vec<Diagnostic>,
}

impl Visit<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        self.file.span(s.start(), s.end())
    }

    fn string(&mut self, pair: &Pair<Rule>) -> String {
        let raw = pair.as_str();
        let start = pair.as_span().start() + 1;
        let inner = &raw[1..raw.len() - 1];
        let file = self.file;
        let mut bad = Vec::new();
        let out = unescape(inner, |at, len, found| {
            let span = file.span(start + at, start + at + len);
            bad.push(
                Diagnostic::new(
                    codes::INVALID_ESCAPE,
                    span,
                    format!("invalid escape `{found}`"),
                )
                .with_help("the escapes are \\\", \\\\, \\n, \\t and \\u{...}"),
            );
        });
        self.diags.extend(bad);
        out
    }

    fn named(&mut self, pair: Pair<Rule>) -> Named {
        let span = self.span(&pair);
        let inner = pair.into_inner().next().expect("a name or a string");
        let quoted = inner.as_rule() == Rule::string;
        let name = if quoted {
            self.string(&inner)
        } else {
            inner.as_str().to_owned()
        };
        Named { name, quoted, span }
    }

    fn time(&mut self, pair: Pair<Rule>) -> Time {
        let inner = pair.into_inner().next().expect("a time");
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::relative => {
                let text = &inner.as_str()[1..];
                match parse_duration(text) {
                    Ok(secs) => Time::Relative { secs, span },
                    Err(_) => {
                        self.diags.push(
                            Diagnostic::new(
                                codes::INVALID_DURATION,
                                span,
                                format!("invalid duration `{text}`"),
                            )
                            .with_help(
                                "write a time after the start such as `+1h`, `+2d` or `+1h30m`",
                            ),
                        );
                        Time::Relative { secs: 0, span }
                    }
                }
            }
            _ => Time::Absolute {
                ms: self.timestamp(&inner),
                span,
            },
        }
    }

    fn timestamp(&mut self, pair: &Pair<Rule>) -> i64 {
        match value::parse_timestamp(pair.as_str()) {
            Some(ms) => ms,
            None => {
                self.diags.push(
                    Diagnostic::new(
                        codes::INVALID_TIMESTAMP,
                        self.span(pair),
                        format!("invalid timestamp `{}`", pair.as_str()),
                    )
                    .with_help("write an RFC 3339 time such as `2026-03-02T10:00:00Z`"),
                );
                0
            }
        }
    }

    fn test(&mut self, pair: Pair<Rule>) -> Test {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let name_pair = it.next().expect("a test name");
        let name = self.string(&name_pair);
        let mut test = Test {
            name,
            name_span: self.span(&name_pair),
            span,
            start: None,
            until: None,
            inputs: Vec::new(),
            expects: Vec::new(),
        };
        for statement in it {
            let span = self.span(&statement);
            match statement.as_rule() {
                Rule::start => {
                    let ts = statement.into_inner().next().expect("a timestamp");
                    let ms = self.timestamp(&ts);
                    test.start = Some((ms, self.span(&ts)));
                }
                Rule::until => {
                    let time = statement.into_inner().next().expect("a time");
                    test.until = Some(self.time(time));
                }
                Rule::given_profile => {
                    let mut it = statement.into_inner();
                    let user = self.named(it.next().expect("a user"));
                    let object = self.object(it.next().expect("an object"));
                    let at = Time::Relative {
                        secs: 0,
                        span: user.span,
                    };
                    test.inputs.push(Input {
                        at,
                        user,
                        kind: InputKind::Profile(object),
                        span,
                    });
                }
                Rule::at_event => {
                    let mut it = statement.into_inner();
                    let at = self.time(it.next().expect("a time"));
                    let user = self.named(it.next().expect("a user"));
                    let what = it.next().expect("what happens");
                    let kind = match what.as_rule() {
                        Rule::profile_update => {
                            let object = what.into_inner().next().expect("an object");
                            InputKind::Profile(self.object(object))
                        }
                        _ => {
                            let mut it = what.into_inner();
                            let event = self.named(it.next().expect("an event"));
                            let properties = it.next().map(|o| self.object(o));
                            InputKind::Track { event, properties }
                        }
                    };
                    test.inputs.push(Input {
                        at,
                        user,
                        kind,
                        span,
                    });
                }
                Rule::expect => {
                    let inner = statement.into_inner().next().expect("an expectation");
                    let kind = self.expectation(inner);
                    test.expects.push(Expect { kind, span });
                }
                _ => {}
            }
        }
        test
    }

    fn expectation(&mut self, pair: Pair<Rule>) -> ExpectKind {
        match pair.as_rule() {
            Rule::expect_send => {
                let mut it = pair.into_inner();
                let channel = self.named(it.next().expect("a channel"));
                let template = self.named(it.next().expect("a template"));
                let user = self.named(it.next().expect("a user"));
                let (mut journey, mut at, mut subject) = (None, None, None);
                for part in it {
                    match part.as_rule() {
                        Rule::from_journey => {
                            journey = Some(self.named(part.into_inner().next().expect("a name")))
                        }
                        Rule::at_time => {
                            at = Some(self.time(part.into_inner().next().expect("a time")))
                        }
                        _ => {
                            let s = part.into_inner().next().expect("a string");
                            subject = Some(self.string(&s));
                        }
                    }
                }
                ExpectKind::Send {
                    channel,
                    template,
                    user,
                    journey,
                    at,
                    subject,
                }
            }
            Rule::expect_no_send => {
                let mut channel = None;
                let mut template = None;
                let mut user = None;
                let mut after = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::name if channel.is_none() => channel = Some(self.named(part)),
                        Rule::name => template = Some(self.named(part)),
                        Rule::user => user = Some(self.named(part)),
                        _ => after = Some(self.time(part.into_inner().next().expect("a time"))),
                    }
                }
                ExpectKind::NoSend {
                    channel,
                    template,
                    user: user.expect("a user"),
                    after,
                }
            }
            _ => {
                let mut it = pair.into_inner();
                let user = self.named(it.next().expect("a user"));
                let what = it.next().expect("exits, converts or enters");
                let rule = what.as_rule();
                let (mut journey, mut at, mut reason) = (None, None, None);
                for part in what.into_inner() {
                    match part.as_rule() {
                        Rule::name => journey = Some(self.named(part)),
                        Rule::at_time => {
                            at = Some(self.time(part.into_inner().next().expect("a time")))
                        }
                        _ => {
                            let word = part.into_inner().next().expect("a reason");
                            reason = Some(self.reason(&word));
                        }
                    }
                }
                match rule {
                    Rule::exits => ExpectKind::Exit {
                        user,
                        journey,
                        at,
                        reason: reason.flatten(),
                    },
                    Rule::converts => ExpectKind::Convert { user, journey, at },
                    _ => ExpectKind::Enter {
                        user,
                        journey: journey.expect("enters names a journey"),
                        at,
                    },
                }
            }
        }
    }

    fn reason(&mut self, word: &Pair<Rule>) -> Option<ExitReason> {
        let found = ExitReason::ALL
            .into_iter()
            .find(|r| r.name() == word.as_str());
        if found.is_none() {
            let names: Vec<String> = ExitReason::ALL
                .iter()
                .map(|r| format!("`{}`", r.name()))
                .collect();
            self.diags.push(
                Diagnostic::new(
                    codes::SYNTAX,
                    self.span(word),
                    format!(
                        "expected a reason an instance ends, found `{}`",
                        word.as_str()
                    ),
                )
                .with_help(format!("the reasons are {}", or_list(&names))),
            );
        }
        found
    }

    fn object(&mut self, pair: Pair<Rule>) -> Obj {
        let span = self.span(&pair);
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            let mut it = p.into_inner();
            let key = it.next().expect("a key");
            let key = Named {
                quoted: key.as_rule() == Rule::string,
                name: if key.as_rule() == Rule::string {
                    self.string(&key)
                } else {
                    key.as_str().to_owned()
                },
                span: self.span(&key),
            };
            let value = self.value(it.next().expect("a value"));
            entries.push((key, value));
        }
        Obj { entries, span }
    }

    fn value(&mut self, pair: Pair<Rule>) -> Val {
        match pair.as_rule() {
            Rule::string => Val::Str(self.string(&pair)),
            Rule::timestamp => {
                self.timestamp(&pair);
                Val::Str(pair.as_str().to_owned())
            }
            Rule::number => match pair.as_str().parse::<f64>() {
                Ok(n) if n.is_finite() => Val::Num(n),
                _ => {
                    self.diags.push(Diagnostic::new(
                        codes::INVALID_NUMBER,
                        self.span(&pair),
                        format!("invalid number `{}`", pair.as_str()),
                    ));
                    Val::Null
                }
            },
            Rule::kw_true => Val::Bool(true),
            Rule::kw_false => Val::Bool(false),
            Rule::kw_null => Val::Null,
            Rule::list => Val::List(pair.into_inner().map(|p| self.value(p)).collect()),
            _ => Val::Obj(self.object(pair)),
        }
    }
}
