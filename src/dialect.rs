//! The template dialect: which Jinja filters, tests and functions a
//! template may use, and the limits of one render. The checker reports any
//! other name (src/check/templates.rs); the runtime renders with
//! [`environment`] (src/runtime/templates.rs). Both read this one list.
//!
//! The set is minijinja's builtins minus every one whose cost is not
//! bounded by its input: `indent(width)`, `batch(n)`, `slice(n)`, `format`
//! and `list`/`sort`/`sum` over a lazily repeated sequence (`[1] * 10**18`)
//! allocate or loop without limit in one instruction, where fuel cannot stop
//! them. `join` and `replace` are kept with a size check. `debug`, `pprint`,
//! `safe` and `namespace` are left out too: the first two print the
//! context, `safe` would let a value into an `html` part unescaped.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

/// Instructions one template part may run (minijinja's fuel). A message
/// that loops over a hundred cart items uses a few thousand; nested loops
/// over `range(100000)` stop here instead of running for minutes. Change
/// it here; it is part of the language (docs/runtime.md, "Limits").
pub const RENDER_FUEL: u64 = 100_000;

/// Bytes one rendered part (`subject`, `body` or `html`) may hold: 64 KiB.
/// An email's HTML is clipped by Gmail past 102 KB and an SMS stops at 1,600
/// characters, so no real message is near it, and a runaway loop stops at a
/// size that costs nothing to hold. Change it here (docs/runtime.md).
pub const MAX_PART_BYTES: usize = 64 * 1024;

/// Nesting of `loop(...)` calls in a recursive `for` (minijinja's default
/// is 500; a message needs a handful).
const RECURSION_LIMIT: usize = 32;

/// The `N` of `range(N)` past which minijinja fails at run time; a literal
/// above it is a compile-time error.
pub const MAX_RANGE: u64 = 100_000;

/// A filter or function of the template language: its name, how many
/// arguments it takes, how it is written and what it does. docs/guide.md
/// (§6, "Filters and functions") lists the same rows; a test below keeps
/// the two in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callable {
    pub name: &'static str,
    /// Fewest and most arguments in parentheses (a filter's value, left of
    /// the `|`, is not counted).
    pub args: (u8, u8),
    /// How it is written, e.g. `default(x)`.
    pub usage: &'static str,
    /// What it does, in a marketer's words.
    pub doc: &'static str,
}

const fn callable(
    name: &'static str,
    args: (u8, u8),
    usage: &'static str,
    doc: &'static str,
) -> Callable {
    Callable {
        name,
        args,
        usage,
        doc,
    }
}

/// Filters a template may use (`{{ x | name }}`), in the order the guide
/// lists them.
pub const FILTERS: &[Callable] = &[
    callable(
        "default",
        (0, 2),
        "default(x)",
        "`x` when the value is missing (`d` is short for it)",
    ),
    callable("d", (0, 2), "d(x)", "the same as `default(x)`"),
    callable("upper", (0, 0), "upper", "in capitals"),
    callable("lower", (0, 0), "lower", "in small letters"),
    callable("title", (0, 0), "title", "Each Word Capitalised"),
    callable(
        "capitalize",
        (0, 0),
        "capitalize",
        "First letter capital, the rest small",
    ),
    callable(
        "trim",
        (0, 1),
        "trim",
        "without spaces at the start and end",
    ),
    callable(
        "length",
        (0, 0),
        "length",
        "how many items in a list, or letters in a text (`count` is the same)",
    ),
    callable("count", (0, 0), "count", "the same as `length`"),
    callable(
        "round",
        (0, 1),
        "round(n)",
        "the number rounded to `n` decimals (none without `n`)",
    ),
    callable(
        "number",
        (0, 1),
        "number(n)",
        "the number with thousands separated and `n` decimals: `1,234.50` (none without `n`)",
    ),
    callable(
        "currency",
        (1, 1),
        "currency(\"EUR\")",
        "an amount in that currency (ISO 4217 code): `€1,234.50`, `$80.00`, `¥1,200`",
    ),
    callable(
        "date",
        (0, 1),
        "date(\"%d %B %Y\")",
        "a date and time in the customer's time zone, written as the pattern says (default `%Y-%m-%d`)",
    ),
    callable("abs", (0, 0), "abs", "the number without its sign"),
    callable("int", (0, 0), "int", "the value as a whole number"),
    callable("float", (0, 0), "float", "the value as a number"),
    callable("string", (0, 0), "string", "the value as text"),
    callable("first", (0, 0), "first", "the first item of a list"),
    callable(
        "join",
        (0, 1),
        "join(\", \")",
        "the items of a list, with the text between them",
    ),
    callable(
        "replace",
        (2, 2),
        "replace(\"a\", \"b\")",
        "the text with every `a` replaced by `b`",
    ),
    callable(
        "escape",
        (0, 0),
        "escape",
        "HTML-escaped (`e` is short for it; the `html` part does it for you)",
    ),
    callable("e", (0, 0), "e", "the same as `escape`"),
];

/// Names other template languages use for a filter or function of this
/// one, for the checker's "did you mean".
pub const ALIASES: &[(&str, &str)] = &[
    ("dateformat", "date"),
    ("datetimeformat", "date"),
    ("date_format", "date"),
    ("format_date", "date"),
    ("strftime", "date"),
    ("money", "currency"),
    ("format_currency", "currency"),
    ("format_number", "number"),
    ("numberformat", "number"),
    ("len", "length"),
    ("size", "length"),
    ("uppercase", "upper"),
    ("lowercase", "lower"),
    ("upcase", "upper"),
    ("downcase", "lower"),
];

/// The filter of that name.
pub fn filter(name: &str) -> Option<&'static Callable> {
    FILTERS.iter().find(|f| f.name == name)
}

/// The function of that name.
pub fn function(name: &str) -> Option<&'static Callable> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Tests a template may use (`{% if x is defined %}`).
pub const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "float",
    "ge",
    "gt",
    "integer",
    "le",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sequence",
    "startingwith",
    "string",
    "true",
    "undefined",
];

/// Functions a template may call (`{{ name(...) }}`).
pub const FUNCTIONS: &[Callable] = &[callable(
    "range",
    (1, 3),
    "range(n)",
    "the numbers 0 to n - 1, for a `{% for %}` loop (at most 100,000)",
)];

/// Statements a template may not use: there is no other template to
/// include, extend or import from, and a macro can recurse.
pub const FORBIDDEN_STATEMENTS: &[&str] = &[
    "include", "extends", "import", "from", "block", "macro", "call",
];

/// The environment every template renders in: the dialect's names, fuel,
/// and HTML escaping for parts named `*.html`.
pub fn environment() -> Environment<'static> {
    use minijinja::{filters as f, tests as t};
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("abs", f::abs);
    env.add_filter("capitalize", f::capitalize);
    env.add_filter("count", f::length);
    env.add_filter("d", f::default);
    env.add_filter("default", f::default);
    env.add_filter("e", f::escape);
    env.add_filter("escape", f::escape);
    env.add_filter("first", f::first);
    env.add_filter("float", f::float);
    env.add_filter("int", f::int);
    env.add_filter("join", join);
    env.add_filter("length", f::length);
    env.add_filter("lower", f::lower);
    env.add_filter("replace", replace);
    env.add_filter("round", round);
    env.add_filter("string", f::string);
    env.add_filter("title", f::title);
    env.add_filter("trim", f::trim);
    env.add_filter("upper", f::upper);
    env.add_filter("number", number);
    env.add_filter("currency", currency);
    env.add_filter("date", date);
    env.add_test("boolean", t::is_boolean);
    env.add_test("defined", t::is_defined);
    env.add_test("divisibleby", t::is_divisibleby);
    env.add_test("endingwith", t::is_endingwith);
    env.add_test("eq", t::is_eq);
    env.add_test("even", t::is_even);
    env.add_test("false", t::is_false);
    env.add_test("float", t::is_float);
    env.add_test("ge", t::is_ge);
    env.add_test("gt", t::is_gt);
    env.add_test("integer", t::is_integer);
    env.add_test("le", t::is_le);
    env.add_test("lt", t::is_lt);
    env.add_test("mapping", t::is_mapping);
    env.add_test("ne", t::is_ne);
    env.add_test("none", t::is_none);
    env.add_test("number", t::is_number);
    env.add_test("odd", t::is_odd);
    env.add_test("sequence", t::is_sequence);
    env.add_test("startingwith", t::is_startingwith);
    env.add_test("string", t::is_string);
    env.add_test("true", t::is_true);
    env.add_test("undefined", t::is_undefined);
    env.add_function("range", minijinja::functions::range);
    env
}

/// The context key that holds the customer's time zone name for `date`
/// (the renderer sets it; a template cannot write this name).
pub const ZONE_KEY: &str = "$zone";

/// The most decimals `number(n)` writes.
pub const MAX_DECIMALS: u8 = 6;

/// Currencies written with their symbol (ISO 4217 code, symbol, decimals):
/// `currency("EUR")` writes `€1,234.50`. Any other three-letter code is
/// written after the amount with two decimals (`1,234.50 SEK`).
pub const CURRENCIES: &[(&str, &str, u8)] = &[
    ("AUD", "A$", 2),
    ("BRL", "R$", 2),
    ("CAD", "CA$", 2),
    ("CHF", "CHF ", 2),
    ("CNY", "CN¥", 2),
    ("EUR", "€", 2),
    ("GBP", "£", 2),
    ("INR", "₹", 2),
    ("JPY", "¥", 0),
    ("KRW", "₩", 0),
    ("MXN", "MX$", 2),
    ("USD", "$", 2),
];

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A missing value stays missing, so `| default(...)` after it still works.
fn missing(value: &Value) -> bool {
    value.is_undefined() || value.is_none()
}

fn as_number(filter: &str, value: &Value) -> Result<f64, Error> {
    if value.kind() == minijinja::value::ValueKind::Number {
        f64::try_from(value.clone()).map_err(|e| invalid(format!("`{filter}`: {e}")))
    } else {
        Err(invalid(format!(
            "`{filter}` needs a number, not {} `{value}`",
            a_kind(value)
        )))
    }
}

fn a_kind(value: &Value) -> String {
    let kind = value.kind().to_string();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

/// `1234.5` with `decimals` → `1,234.50`: thousands separated by `,`, the
/// decimals after a `.`, rounded to the nearest.
pub fn format_number(n: f64, decimals: u8) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    let text = format!("{:.*}", usize::from(decimals), n.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if n < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// `{{ total | round(1) }}`: minijinja's, but a missing value stays
/// missing (as for `number`), rather than failing the render.
fn round(value: &Value, precision: Option<i32>) -> Result<Value, Error> {
    if missing(value) {
        return Ok(Value::UNDEFINED);
    }
    minijinja::filters::round(value.clone(), precision)
}

/// `{{ total | number(2) }}`.
fn number(value: &Value, decimals: Option<u8>) -> Result<Value, Error> {
    if missing(value) {
        return Ok(Value::UNDEFINED);
    }
    let decimals = decimals.unwrap_or(0);
    if decimals > MAX_DECIMALS {
        return Err(invalid(format!(
            "`number` writes at most {MAX_DECIMALS} decimals, not {decimals}"
        )));
    }
    let n = as_number("number", value)?;
    format_number(n, decimals)
        .map(Value::from)
        .ok_or_else(|| invalid(format!("`number` cannot write `{n}`")))
}

/// `{{ total | currency("EUR") }}`.
fn currency(value: &Value, code: &str) -> Result<Value, Error> {
    if missing(value) {
        return Ok(Value::UNDEFINED);
    }
    let n = as_number("currency", value)?;
    let known = CURRENCIES.iter().find(|(c, _, _)| *c == code);
    let decimals = known.map_or(2, |(_, _, d)| *d);
    let amount = format_number(n, decimals)
        .ok_or_else(|| invalid(format!("`currency` cannot write `{n}`")))?;
    let (sign, digits) = match amount.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", amount.as_str()),
    };
    match known {
        Some((_, symbol, _)) => Ok(Value::from(format!("{sign}{symbol}{digits}"))),
        None if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => {
            Ok(Value::from(format!("{amount} {code}")))
        }
        None => Err(invalid(format!(
            "`currency` needs a three-letter currency code such as \"EUR\", not \"{code}\""
        ))),
    }
}

/// `{{ profile.renewal_date | date("%d %B %Y") }}`: a timestamp, or a date
/// alone (midnight of that day), written in the customer's time zone with
/// strftime's patterns (jiff's: `%d`, `%B`, `%A`, `%H:%M`, ...; month and
/// day names in English).
fn date(state: &State, value: &Value, pattern: Option<&str>) -> Result<Value, Error> {
    if missing(value) {
        return Ok(Value::UNDEFINED);
    }
    let zone = state
        .lookup(ZONE_KEY)
        .and_then(|z| z.as_str().and_then(|z| jiff::tz::TimeZone::get(z).ok()))
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let Some(text) = value.as_str() else {
        return Err(invalid(format!(
            "`date` needs a date or a timestamp, not {} `{value}`",
            a_kind(value)
        )));
    };
    let ms = crate::value::parse_timestamp_in(text, &zone).ok_or_else(|| {
        invalid(format!(
            "`date` needs a date (2026-03-20) or a timestamp (2026-03-20T09:00:00Z), not \"{text}\""
        ))
    })?;
    let zoned = jiff::Timestamp::from_millisecond(ms)
        .map_err(|e| invalid(format!("`date`: {e}")))?
        .to_zoned(zone);
    let pattern = pattern.unwrap_or("%Y-%m-%d");
    jiff::fmt::strtime::format(pattern, &zoned)
        .map(Value::from)
        .map_err(|e| invalid(format!("`date(\"{pattern}\")`: {e}")))
}

/// Whether `pattern` is one `date(...)` can write (checked at compile time
/// for a pattern written in the template).
pub fn valid_date_pattern(pattern: &str) -> Result<(), String> {
    let probe = jiff::Timestamp::UNIX_EPOCH.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(pattern, &probe)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn too_long(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} would be longer than {} KiB", MAX_PART_BYTES / 1024),
    )
}

/// `join`, stopping once the text would pass [`MAX_PART_BYTES`]: the
/// builtin builds the whole text first (`range(100000) | join(big)`).
fn join(state: &State, value: &Value, joiner: Option<Value>) -> Result<Value, Error> {
    let html = !matches!(state.auto_escape(), AutoEscape::None);
    let joiner = match joiner {
        Some(j) => state.format(j)?,
        None => String::new(),
    };
    let items = value.try_iter().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot join a {}", value.kind()),
        )
    })?;
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            push_bounded(&mut out, &joiner, "the joined text")?;
        }
        push_bounded(&mut out, &state.format(item)?, "the joined text")?;
    }
    // Under HTML escaping, `format` has escaped every item already.
    Ok(if html {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    })
}

fn push_bounded(out: &mut String, text: &str, what: &str) -> Result<(), Error> {
    if out.len() + text.len() > MAX_PART_BYTES {
        return Err(too_long(what));
    }
    out.push_str(text);
    Ok(())
}

/// `replace`, refusing a result past [`MAX_PART_BYTES`] before building it
/// (`x | replace("", x)` squares the length).
fn replace(value: &str, from: &str, to: &str) -> Result<Value, Error> {
    let count = if from.is_empty() {
        value.chars().count() + 1
    } else {
        value.matches(from).count()
    };
    let len = (value.len() - count * from.len()).saturating_add(count.saturating_mul(to.len()));
    if len > MAX_PART_BYTES {
        return Err(too_long("the replaced text"));
    }
    Ok(Value::from(value.replace(from, to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> Result<String, Error> {
        environment().render_str(source, ())
    }

    #[test]
    fn every_listed_name_is_in_the_environment_and_no_other() {
        for name in FILTERS.iter().map(|f| f.name) {
            let out = render(&format!("{{{{ 1 | {name} }}}}"));
            assert!(
                !matches!(&out, Err(e) if e.kind() == ErrorKind::UnknownFilter),
                "{name}"
            );
        }
        for name in TESTS {
            let out = render(&format!("{{{{ 1 is {name} }}}}"));
            assert!(
                !matches!(&out, Err(e) if e.kind() == ErrorKind::UnknownTest),
                "{name}"
            );
        }
        for name in ["indent", "batch", "slice", "list", "sort", "pprint", "safe"] {
            let out = render(&format!("{{{{ 1 | {name} }}}}"));
            assert!(
                matches!(&out, Err(e) if e.kind() == ErrorKind::UnknownFilter),
                "{name}"
            );
        }
        for name in ["debug", "namespace", "dict"] {
            let out = render(&format!("{{{{ {name}() }}}}"));
            assert!(
                matches!(&out, Err(e) if e.kind() == ErrorKind::UnknownFunction),
                "{name}"
            );
        }
    }

    fn render_with(source: &str, ctx: minijinja::Value) -> Result<String, Error> {
        environment().render_str(source, ctx)
    }

    #[test]
    fn the_guide_lists_every_filter_and_function_as_written_here() {
        let guide = include_str!("../docs/guide.md");
        for c in FILTERS.iter().chain(FUNCTIONS) {
            let row = format!("| `{}` | {} |", c.usage, c.doc);
            assert!(guide.contains(&row), "docs/guide.md lacks the row {row}");
        }
    }

    #[test]
    fn numbers_and_currencies_are_written_with_separators() {
        let r = |source: &str| render(source).unwrap();
        assert_eq!(r("{{ 1234567.891 | number(2) }}"), "1,234,567.89");
        assert_eq!(r("{{ 1234 | number }}"), "1,234");
        assert_eq!(r("{{ 999.5 | number }}"), "1,000");
        assert_eq!(r("{{ -1234.5 | number(1) }}"), "-1,234.5");
        assert_eq!(r("{{ -0.001 | number(2) }}"), "0.00");
        assert_eq!(r("{{ 12 | number(3) }}"), "12.000");
        assert_eq!(r("{{ 1234.5 | currency('EUR') }}"), "€1,234.50");
        assert_eq!(r("{{ 80 | currency('USD') }}"), "$80.00");
        assert_eq!(r("{{ -5 | currency('GBP') }}"), "-£5.00");
        assert_eq!(r("{{ 1200.4 | currency('JPY') }}"), "¥1,200");
        assert_eq!(r("{{ 99.9 | currency('SEK') }}"), "99.90 SEK");
        // A missing value stays missing, for `default` after it.
        assert_eq!(
            r("{{ nothing | currency('EUR') | default('free') }}"),
            "free"
        );
        assert_eq!(r("{{ nothing | round(1) | default('-') }}"), "-");
        assert_eq!(r("{{ 1.26 | round(1) }}"), "1.3");
        assert!(render("{{ 'ten' | number }}").is_err());
        assert!(render("{{ 1 | currency('euro') }}").is_err());
        assert!(render("{{ 1 | number(9) }}").is_err());
    }

    #[test]
    fn dates_are_written_in_the_customers_zone() {
        let with_zone = |zone: &str, at: &str, source: &str| {
            let mut map = std::collections::BTreeMap::new();
            map.insert("at".to_string(), Value::from(at));
            map.insert(ZONE_KEY.to_string(), Value::from(zone));
            render_with(source, Value::from(map)).unwrap()
        };
        let pattern = "{{ at | date('%d %B %Y %H:%M') }}";
        assert_eq!(
            with_zone("Europe/Paris", "2026-03-20T23:30:00Z", pattern),
            "21 March 2026 00:30"
        );
        assert_eq!(
            with_zone("America/New_York", "2026-03-20T23:30:00Z", pattern),
            "20 March 2026 19:30"
        );
        // A date alone is that day, in any zone.
        for zone in ["Pacific/Auckland", "America/Los_Angeles", "UTC"] {
            assert_eq!(
                with_zone(zone, "2026-03-20", "{{ at | date('%A %d %B') }}"),
                "Friday 20 March"
            );
        }
        assert_eq!(
            with_zone("Nowhere/Else", "2026-03-20T09:00:00Z", "{{ at | date }}"),
            "2026-03-20"
        );
        assert!(render_with("{{ at | date }}", minijinja::context! { at => 5 }).is_err());
        assert!(render_with("{{ at | date }}", minijinja::context! { at => "soon" }).is_err());
        assert_eq!(
            render("{{ nothing | date('%d') | default('soon') }}").unwrap(),
            "soon"
        );
        assert!(valid_date_pattern("%d %B %Y").is_ok());
        assert!(valid_date_pattern("%J").is_err());
    }

    #[test]
    fn join_and_replace_stop_at_the_size_limit() {
        // Without the check, this join builds a 100,000 × 1 MB text.
        let big = "{{ range(100000) | join('x' * 1000000) }}";
        assert!(render(big).is_err());
        let square = "{% set x = 'ab' * 1000 %}{{ x | replace('', x) }}";
        assert!(render(square).is_err());
        assert_eq!(render("{{ [1, 2] | join(', ') }}").unwrap(), "1, 2");
        assert_eq!(render("{{ 'a-b' | replace('-', '+') }}").unwrap(), "a+b");
    }

    #[test]
    fn nested_loops_run_out_of_fuel() {
        let nested =
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
        let err = render(nested).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel);
    }
}
