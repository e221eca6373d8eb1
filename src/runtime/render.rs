//! Renders declared templates (minijinja, compiled once per runtime) into a
//! send's `subject` and `body`. The context holds `profile`, `trigger` and
//! `journey` objects built from the values the template reads, the `with`
//! values as top-level variables, and `message_id`. A part that fails to
//! render is counted and sent as an empty text: the message still goes out,
//! as the compiler already checked the template.

use std::sync::Arc;

use minijinja::Environment;

use crate::compile::program::{FieldPath, Template};
use crate::value::Value;

pub struct Renderer {
    env: Environment<'static>,
    /// Per template id: whether its subject and body compiled.
    parts: Vec<(Option<String>, Option<String>)>,
}

/// A rendered message.
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
}

impl Renderer {
    pub fn new(templates: &[Template]) -> Renderer {
        let mut env = Environment::new();
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
            let subject = t.subject.as_ref().and_then(|s| {
                let name = format!("{id}.subject");
                env.add_template_owned(name.clone(), s.to_string())
                    .ok()
                    .map(|()| name)
            });
            let body_name = format!("{id}.body");
            let body = env
                .add_template_owned(body_name.clone(), t.body.to_string())
                .ok()
                .map(|()| body_name);
            parts.push((subject, body));
        }
        Renderer { env, parts }
    }

    /// Renders template `id`; `errors` counts the parts that failed.
    pub fn render(
        &self,
        id: u32,
        has_subject: bool,
        context: &serde_json::Value,
        errors: &mut u64,
    ) -> Rendered {
        let (subject, body) = match self.parts.get(id as usize) {
            Some((s, b)) => (s.as_deref(), b.as_deref()),
            None => (None, None),
        };
        let ctx = minijinja::Value::from_serialize(context);
        let mut part = |name: Option<&str>| -> String {
            let out = name
                .and_then(|n| self.env.get_template(n).ok())
                .and_then(|t| t.render(&ctx).ok());
            out.unwrap_or_else(|| {
                *errors += 1;
                String::new()
            })
        };
        Rendered {
            subject: has_subject.then(|| part(subject)),
            body: part(body),
        }
    }
}

/// The render context: each (path, value) placed at its path from the
/// root, then the `with` values and `message_id` at the top.
pub fn context(
    reads: &[(FieldPath, Value)],
    with: &[(Arc<str>, Value)],
    message_id: &str,
) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    for (path, value) in reads {
        insert(&mut root, path, value.to_json());
    }
    for (key, value) in with {
        root.insert(key.to_string(), value.to_json());
    }
    root.insert("message_id".into(), message_id.into());
    serde_json::Value::Object(root)
}

fn insert(
    map: &mut serde_json::Map<String, serde_json::Value>,
    path: &[Arc<str>],
    value: serde_json::Value,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert(first.to_string(), value);
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

    #[test]
    fn renders_nested_context_and_counts_errors() {
        let templates = vec![Template {
            name: "hi".into(),
            channel: 0,
            subject: Some("Hi {{ profile.first_name }}".into()),
            body: "Code {{ code }} for {{ trigger.total }} ({{ message_id }})".into(),
        }];
        let r = Renderer::new(&templates);
        let reads = vec![
            (
                vec![Arc::from("profile"), Arc::from("first_name")],
                Value::str("Ana"),
            ),
            (
                vec![Arc::from("trigger"), Arc::from("total")],
                Value::Number(80.0),
            ),
        ];
        let with = vec![(Arc::from("code"), Value::str("SAVE10"))];
        let ctx = context(&reads, &with, "m1");
        let mut errors = 0;
        let out = r.render(0, true, &ctx, &mut errors);
        assert_eq!(out.subject.as_deref(), Some("Hi Ana"));
        assert_eq!(out.body, "Code SAVE10 for 80 (m1)");
        assert_eq!(errors, 0);
        let out = r.render(7, false, &ctx, &mut errors);
        assert_eq!(out.body, "");
        assert_eq!(errors, 1);
    }
}
