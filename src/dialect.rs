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

/// Filters a template may use.
pub const FILTERS: &[&str] = &[
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "join",
    "length",
    "lower",
    "replace",
    "round",
    "string",
    "title",
    "trim",
    "upper",
];

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

/// Functions a template may call.
pub const FUNCTIONS: &[&str] = &["range"];

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
    env.add_filter("round", f::round);
    env.add_filter("string", f::string);
    env.add_filter("title", f::title);
    env.add_filter("trim", f::trim);
    env.add_filter("upper", f::upper);
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
        for name in FILTERS {
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
