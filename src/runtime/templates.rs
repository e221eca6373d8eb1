//! Renders declared templates into a send's `subject`, `body` and `html`.
//! The context holds `profile`, `trigger` and `journey` objects built from
//! the values the template reads, the `with` values as top-level variables,
//! and `message_id`. A part that fails to render (an error, fuel run out,
//! text over [`MAX_PART_BYTES`]) fails the whole message: the engine then
//! suppresses the send (reason `render_failed`) instead of sending it.
//!
//! Two paths give the same text. Most message templates are text with
//! `{{ path }}`, `{{ path | default('text') }}` and `{{ path | length }}`
//! holes: those are split into [`Piece`]s once and filled straight from the
//! values, without building a context. Anything else (tags, other filters,
//! a list or object printed whole, every `html` part, which escapes values)
//! goes through minijinja, compiled once per runtime, in the environment of
//! [`crate::dialect`] (its filters, fuel and limits).
//!
//! A `null` value is left out of the context, so it is undefined to the
//! template: it prints as nothing and `default(...)` replaces it. Undefined
//! values chain (`profile.consent.email` with no `consent` prints nothing).

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;

use minijinja::{Environment, ErrorKind};

use crate::compile::program::{FieldPath, Template};
use crate::dialect::{self, MAX_PART_BYTES, RENDER_FUEL};
use crate::value::{Value, as_whole, write_int};

pub struct Renderer {
    env: Environment<'static>,
    /// Per template id.
    parts: Vec<Parts>,
}

/// The compiled parts of one template; `None` inside when a part did not
/// compile (the checker reports it, so only a program built around the
/// checker has one).
struct Parts {
    /// Whether a part may call `date`.
    dates: bool,
    subject: Option<Option<Part>>,
    body: Option<Part>,
    html: Option<Option<Part>>,
}

/// One compiled subject, body or html part.
struct Part {
    /// The name under which minijinja holds it (`<id>.<kind>`: `.html`
    /// turns HTML escaping on).
    name: String,
    /// The pieces, when the text is simple enough to fill directly.
    pieces: Option<Vec<Piece>>,
}

/// A piece of a simple template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(Box<str>),
    /// `{{ a.b }}`, with `| default('x')` or `| length`.
    Hole {
        path: Vec<Box<str>>,
        filter: Filter,
    },
}

#[derive(Debug, PartialEq)]
enum Filter {
    None,
    Default(Box<str>),
    Length,
}

/// A rendered message.
#[derive(Debug)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
}

/// Why a message could not be rendered: the part and the error, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// `subject`, `body` or `html`.
    pub part: &'static str,
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.message)
    }
}

/// What a template is filled from.
pub struct Values<'a> {
    /// The paths the template reads (`profile.first_name`, `trigger.total`).
    pub reads: &'a [(FieldPath, Value)],
    /// The send's `with` values.
    pub with: &'a [(Arc<str>, Value)],
    pub message_id: &'a str,
    /// The customer's time zone name, for `date` (UTC without one).
    pub zone: Option<&'a str>,
}

impl Renderer {
    pub fn new(templates: &[Template]) -> Renderer {
        let mut env = dialect::environment();
        // Messages go to customers: a missing value prints as nothing and a
        // boolean as `true`/`false`, never Python's `None`/`True`.
        env.set_formatter(|out, state, value| {
            if value.is_none() || value.is_undefined() {
                Ok(())
            } else if value.kind() == minijinja::value::ValueKind::Bool {
                let text = if value.is_true() { "true" } else { "false" };
                out.write_str(text).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let mut parts = Vec::with_capacity(templates.len());
        for (id, t) in templates.iter().enumerate() {
            let mut part = |kind: &str, source: &str| {
                let name = format!("{id}.{kind}");
                env.add_template_owned(name.clone(), source.to_owned())
                    .ok()
                    .map(|()| Part {
                        name,
                        // An html part escapes its values: minijinja only.
                        pieces: if kind == "html" { None } else { pieces(source) },
                    })
            };
            let dates = [t.subject.as_deref(), Some(&*t.body), t.html.as_deref()]
                .into_iter()
                .flatten()
                .any(|source| source.contains("date"));
            parts.push(Parts {
                dates,
                subject: t.subject.as_ref().map(|s| part("subject", s)),
                body: part("body", &t.body),
                html: t.html.as_ref().map(|h| part("html", h)),
            });
        }
        Renderer { env, parts }
    }

    /// Whether template `id` writes dates (`date`), which are in the
    /// customer's time zone: [`Values::zone`] is then worth finding.
    pub fn needs_zone(&self, id: u32) -> bool {
        self.parts.get(id as usize).is_some_and(|p| p.dates)
    }

    /// Renders template `id`: every part, or the first part that failed.
    pub fn render(&self, id: u32, values: &Values<'_>) -> Result<Rendered, RenderError> {
        let Some(parts) = self.parts.get(id as usize) else {
            return Err(RenderError {
                part: "body",
                message: "the template is not in the program".into(),
            });
        };
        // Built once, and only if a part needs minijinja.
        let mut context: Option<minijinja::Value> = None;
        let mut render = |kind: &'static str, part: Option<&Part>| {
            self.render_part(part, values, &mut context)
                .map_err(|message| RenderError {
                    part: kind,
                    message,
                })
        };
        let subject = match &parts.subject {
            Some(part) => Some(render("subject", part.as_ref())?),
            None => None,
        };
        let body = render("body", parts.body.as_ref())?;
        let html = match &parts.html {
            Some(part) => Some(render("html", part.as_ref())?),
            None => None,
        };
        Ok(Rendered {
            subject,
            body,
            html,
        })
    }

    fn render_part(
        &self,
        part: Option<&Part>,
        values: &Values<'_>,
        context: &mut Option<minijinja::Value>,
    ) -> Result<String, String> {
        let Some(part) = part else {
            return Err("the template does not compile".into());
        };
        if let Some(text) = part.pieces.as_deref().and_then(|p| fill(p, values)) {
            return if text.len() > MAX_PART_BYTES {
                Err(too_long())
            } else {
                Ok(text)
            };
        }
        let ctx = context.get_or_insert_with(|| {
            let mut context = self::context(values.reads, values.with, values.message_id);
            if let (Some(zone), serde_json::Value::Object(root)) = (values.zone, &mut context) {
                root.insert(dialect::ZONE_KEY.into(), zone.into());
            }
            minijinja::Value::from_serialize(context)
        });
        let template = self
            .env
            .get_template(&part.name)
            .map_err(|e| describe(&e))?;
        let mut out = Bounded::default();
        match template.render_captured_to(&*ctx, &mut out) {
            Ok(_) => String::from_utf8(out.text).map_err(|_| "the text is not UTF-8".into()),
            Err(_) if out.over => Err(too_long()),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn too_long() -> String {
    format!("the text is longer than {} KiB", MAX_PART_BYTES / 1024)
}

/// A render error in words, without minijinja's template names (`0.body`).
fn describe(e: &minijinja::Error) -> String {
    if e.kind() == ErrorKind::OutOfFuel {
        return format!("the template runs more than {RENDER_FUEL} steps");
    }
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Where minijinja writes a part: refuses the write that would pass
/// [`MAX_PART_BYTES`], which ends the render.
#[derive(Default)]
struct Bounded {
    text: Vec<u8>,
    over: bool,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.text.len() + buf.len() > MAX_PART_BYTES {
            self.over = true;
            return Err(io::Error::other("over the size limit"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Splits a template into pieces when it is only text and simple holes;
/// `None` sends it to minijinja.
fn pieces(source: &str) -> Option<Vec<Piece>> {
    // Tags, comments, and the trailing newline minijinja drops.
    if source.contains("{%") || source.contains("{#") || source.ends_with('\n') {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].into()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        out.push(hole(&after[..close])?);
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.into()));
    }
    Some(out)
}

/// `a.b`, `a.b | default('x')` or `a.b | length`, with any spaces.
fn hole(expr: &str) -> Option<Piece> {
    let (path, filter) = match expr.split_once('|') {
        Some((path, filter)) => (path, Some(filter.trim())),
        None => (expr, None),
    };
    let path = path.trim();
    // Whitespace control (`{{- x -}}`) and anything not a plain path.
    let path: Vec<Box<str>> = path.split('.').map(Box::from).collect::<Vec<_>>();
    let plain = |key: &str| {
        let mut chars = key.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let literal = |key: &str| {
        matches!(
            key,
            "true" | "false" | "none" | "True" | "False" | "None" | "loop" | "self"
        )
    };
    if !path.iter().all(|k| plain(k)) || literal(&path[0]) {
        return None;
    }
    let filter = match filter {
        None => Filter::None,
        Some("length") => Filter::Length,
        Some(f) => {
            let arg = f.strip_prefix("default")?.trim_start();
            let arg = arg.strip_prefix('(')?.strip_suffix(')')?.trim();
            let text = arg
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
                .or_else(|| arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')))?;
            if text.contains(['\'', '"', '\\', '{', '}']) {
                return None;
            }
            Filter::Default(text.into())
        }
    };
    Some(Piece::Hole { path, filter })
}

/// What a hole's path names: `Some(None)` when it is undefined, `None` when
/// only minijinja can tell (a path into a list, object or `with` value).
fn lookup<'v>(path: &[Box<str>], values: &Values<'v>) -> Option<Option<&'v Value>> {
    let first = &*path[0];
    if first == "message_id" {
        // Only reached for longer paths: the caller prints the id itself.
        return None;
    }
    if let Some((_, v)) = values.with.iter().find(|(k, _)| &**k == first) {
        return (path.len() == 1).then_some(Some(v));
    }
    for (read, value) in values.reads {
        let common = read
            .iter()
            .zip(path)
            .take_while(|(a, b)| ***a == ***b)
            .count();
        if common == read.len() && common == path.len() {
            return Some(Some(value));
        }
        if common == read.len() || common == path.len() {
            // One path goes inside the other's value.
            return None;
        }
    }
    Some(None)
}

/// Fills the pieces; `None` when a value needs minijinja.
fn fill(pieces: &[Piece], values: &Values<'_>) -> Option<String> {
    let mut out = String::with_capacity(128);
    for piece in pieces {
        let (path, filter) = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Hole { path, filter } => (path, filter),
        };
        if path.len() == 1 && &*path[0] == "message_id" {
            match filter {
                Filter::None | Filter::Default(_) => out.push_str(values.message_id),
                Filter::Length => write_int(&mut out, values.message_id.chars().count() as i64),
            }
            continue;
        }
        let value = lookup(path, values)?.filter(|v| !v.is_null());
        match (filter, value) {
            (Filter::Length, Some(Value::String(s))) => {
                write_int(&mut out, s.chars().count() as i64)
            }
            (Filter::Length, Some(Value::List(items))) => write_int(&mut out, items.len() as i64),
            (Filter::Length, _) => return None,
            (Filter::Default(text), None) => out.push_str(text),
            (_, None) => {}
            (_, Some(value)) => print(&mut out, value)?,
        }
    }
    Some(out)
}

/// A value as minijinja prints it (with this module's formatter).
fn print(out: &mut String, value: &Value) -> Option<()> {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => print_number(out, *n)?,
        Value::Duration(ms) => print_number(out, *ms as f64 / 1000.0)?,
        Value::Timestamp(ms) => crate::value::write_timestamp(*ms, out),
        Value::List(_) | Value::Object(_) => return None,
    }
    Some(())
}

/// Whole numbers (as JSON gives them to minijinja) print as integers, other
/// numbers as Rust prints an `f64`, with `.0` added when it has no point.
fn print_number(out: &mut String, n: f64) -> Option<()> {
    if !n.is_finite() {
        return None;
    }
    if let Some(i) = as_whole(n) {
        write_int(out, i);
    } else {
        let start = out.len();
        let _ = write!(out, "{n}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    }
    Some(())
}

/// The render context: each (path, value) placed at its path from the
/// root, then the `with` values and `message_id` at the top. A `null`
/// leaf is left out, so the template sees it as undefined.
pub fn context(
    reads: &[(FieldPath, Value)],
    with: &[(Arc<str>, Value)],
    message_id: &str,
) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    for (path, value) in reads {
        insert(&mut root, path, value);
    }
    for (key, value) in with {
        if value.is_null() {
            root.remove(&**key);
        } else {
            root.insert(key.to_string(), value.to_json());
        }
    }
    root.insert("message_id".into(), message_id.into());
    serde_json::Value::Object(root)
}

fn insert(map: &mut serde_json::Map<String, serde_json::Value>, path: &[Arc<str>], value: &Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if !value.is_null() {
            map.insert(first.to_string(), value.to_json());
        }
        return;
    }
    let entry = map
        .entry(first.to_string())
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !entry.is_object() {
        *entry = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(inner) = entry {
        insert(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(subject: Option<&str>, body: &str) -> Template {
        Template {
            name: "t".into(),
            channel: 0,
            subject: subject.map(Arc::from),
            body: body.into(),
            html: None,
        }
    }

    fn path(p: &str) -> FieldPath {
        p.split('.').map(Arc::from).collect()
    }

    /// Renders through minijinja only, the reference for the direct path.
    fn slow(r: &Renderer, values: &Values<'_>) -> String {
        let ctx =
            minijinja::Value::from_serialize(context(values.reads, values.with, values.message_id));
        let name = &r.parts[0].body.as_ref().unwrap().name;
        r.env
            .get_template(name)
            .and_then(|t| t.render(&ctx))
            .unwrap_or_else(|e| format!("<error {e}>"))
    }

    #[test]
    fn renders_nested_context_and_fails_an_unknown_template() {
        let templates = vec![template(
            Some("Hi {{ profile.first_name }}"),
            "Code {{ code }} for {{ trigger.total }} ({{ message_id }})",
        )];
        let r = Renderer::new(&templates);
        let reads = vec![
            (path("profile.first_name"), Value::str("Ana")),
            (path("trigger.total"), Value::Number(80.0)),
        ];
        let with = vec![(Arc::from("code"), Value::str("SAVE10"))];
        let values = Values {
            reads: &reads,
            with: &with,
            message_id: "m1",
            zone: None,
        };
        let out = r.render(0, &values).unwrap();
        assert_eq!(out.subject.as_deref(), Some("Hi Ana"));
        assert_eq!(out.body, "Code SAVE10 for 80 (m1)");
        assert_eq!(out.html, None);
        assert!(r.render(7, &values).is_err());
    }

    #[test]
    fn simple_templates_are_split_and_the_rest_goes_to_minijinja() {
        let simple = [
            "plain text",
            "{{ a }}",
            "Hi {{profile.first_name|default('there')}}, {{ trigger.items | length }}!",
            "{{ x | default(\"y\") }} and {{ message_id }}",
        ];
        for source in simple {
            assert!(pieces(source).is_some(), "{source}");
        }
        let complex = [
            "{% if a %}x{% endif %}",
            "{# note #}",
            "{{ a | upper }}",
            "{{- a }}",
            "{{ a -}}",
            "{{ a ~ b }}",
            "{{ a[0] }}",
            "{{ none }}",
            "{{ a | default('}') }}",
            "{{ a | default(b) }}",
            "{{ a | default('x', true) }}",
            "ends with a newline\n",
            "{{ unclosed",
        ];
        for source in complex {
            assert!(pieces(source).is_none(), "{source}");
        }
    }

    #[test]
    fn the_direct_path_prints_what_minijinja_prints() {
        let sources = [
            "Hi {{ profile.first_name }}, {{ profile.first_name | default('there') }}.",
            "{{ trigger.total }} {{ trigger.ratio }} {{ trigger.big }} {{ trigger.neg }}",
            "{{ trigger.items | length }} {{ trigger.name | length }} {{ trigger.items }}",
            "{{ profile.vip }} {{ profile.since }} {{ trigger.wait }} {{ profile.missing }}",
            "{{ code }}/{{ code | default('none') }}/{{ empty | default('d') }}/{{ message_id }}",
            "{{ profile.consent.email }} {{ profile.consent }} {{ trigger.total.x }}",
            "{{ profile }} {{ journey.name | default('j') }}",
        ];
        let reads = vec![
            (path("profile.first_name"), Value::Null),
            (path("profile.vip"), Value::Bool(true)),
            (path("profile.since"), Value::Timestamp(1_772_445_600_250)),
            (path("profile.consent"), Value::Null),
            (path("trigger.total"), Value::Number(80.0)),
            (path("trigger.ratio"), Value::Number(0.25)),
            (path("trigger.big"), Value::Number(1e20)),
            (path("trigger.neg"), Value::Number(-3.5)),
            (path("trigger.name"), Value::str("été")),
            (
                path("trigger.items"),
                Value::List(Arc::from(vec![Value::str("a"), Value::str("b")])),
            ),
            (path("trigger.wait"), Value::Duration(90_000)),
        ];
        let with = vec![
            (Arc::from("code"), Value::str("SAVE10")),
            (Arc::from("empty"), Value::Null),
        ];
        let values = Values {
            reads: &reads,
            with: &with,
            message_id: "j:u:1:4",
            zone: None,
        };
        for source in sources {
            let r = Renderer::new(&[template(None, source)]);
            let out = r.render(0, &values).unwrap();
            assert_eq!(out.body, slow(&r, &values), "{source}");
        }
    }

    #[test]
    fn a_missing_value_takes_the_default() {
        let r = Renderer::new(&[template(
            Some("{{ profile.first_name | default('Hi') }}, your cart"),
            "Hi {{ profile.first_name }}!",
        )]);
        let reads = vec![(path("profile.first_name"), Value::Null)];
        let values = Values {
            reads: &reads,
            with: &[],
            message_id: "m",
            zone: None,
        };
        let out = r.render(0, &values).unwrap();
        assert_eq!(out.subject.as_deref(), Some("Hi, your cart"));
        assert_eq!(out.body, "Hi !");
        assert_eq!(slow(&r, &values), "Hi !");
    }

    type Reads = Vec<(FieldPath, Value)>;
    type With = Vec<(Arc<str>, Value)>;

    fn name_values(name: &str) -> (Reads, With) {
        (
            vec![(path("profile.first_name"), Value::str(name))],
            Vec::new(),
        )
    }

    #[test]
    fn the_html_part_escapes_values_and_keeps_its_markup() {
        let mut t = template(
            Some("Hi {{ profile.first_name }}"),
            "Hi {{ profile.first_name }}",
        );
        t.html = Some("<p>Hi <b>{{ profile.first_name }}</b></p>".into());
        let r = Renderer::new(&[t]);
        let (reads, with) = name_values("<script>alert(1)</script>");
        let values = Values {
            reads: &reads,
            with: &with,
            message_id: "m",
            zone: None,
        };
        let out = r.render(0, &values).unwrap();
        assert_eq!(
            out.html.as_deref(),
            Some("<p>Hi <b>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</b></p>")
        );
        // The plain-text parts are not HTML: they keep the text as is.
        assert_eq!(out.body, "Hi <script>alert(1)</script>");
        assert_eq!(out.subject.as_deref(), Some("Hi <script>alert(1)</script>"));
    }

    #[test]
    fn a_joined_list_in_html_is_escaped_too() {
        let mut t = template(None, "x");
        t.html = Some("<p>{{ trigger.items | join('<br>') }}</p>".into());
        let r = Renderer::new(&[t]);
        let reads = vec![(
            path("trigger.items"),
            Value::List(Arc::from(vec![Value::str("<i>a</i>"), Value::str("b")])),
        )];
        let values = Values {
            reads: &reads,
            with: &[],
            message_id: "m",
            zone: None,
        };
        let html = r.render(0, &values).unwrap().html.unwrap();
        assert_eq!(html, "<p>&lt;i&gt;a&lt;&#x2f;i&gt;&lt;br&gt;b</p>");
    }

    fn render_body(body: &str) -> Result<Rendered, RenderError> {
        let r = Renderer::new(&[template(None, body)]);
        let (reads, with) = name_values("Ana");
        let values = Values {
            reads: &reads,
            with: &with,
            message_id: "m",
            zone: None,
        };
        r.render(0, &values)
    }

    #[test]
    fn nested_range_loops_run_out_of_fuel_instead_of_hanging() {
        // 10^10 iterations without fuel.
        let err = render_body(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert_eq!(err.part, "body");
        assert_eq!(err.message, "the template runs more than 100000 steps");
    }

    #[test]
    fn output_past_the_limit_fails_before_it_grows() {
        // 100,000 × 1 MB without the limit: the join stops at 64 KiB.
        let err = render_body("{{ range(100000) | join('x' * 1000000) }}").unwrap_err();
        assert!(err.message.contains("64 KiB"), "{err}");
        // Many small writes: the writer stops at 64 KiB.
        let err = render_body("{% for i in range(20000) %}0123456789{% endfor %}").unwrap_err();
        assert_eq!(err.message, "the text is longer than 64 KiB");
        // Just under the limit renders.
        let ok = render_body("{% for i in range(6000) %}0123456789{% endfor %}").unwrap();
        assert_eq!(ok.body.len(), 60_000);
    }

    #[test]
    fn a_runtime_error_fails_the_render() {
        let err = render_body("{{ profile.first_name + 1 }}").unwrap_err();
        assert_eq!(err.part, "body");
        assert!(err.message.starts_with("invalid operation"), "{err}");
        assert!(!err.message.contains("0.body"), "{err}");
        let err = render_body("{{ debug() }}").unwrap_err();
        assert!(err.message.contains("unknown function"), "{err}");
    }
}
