//! Template render values: the `profile.*`, `trigger.*` and `journey.*`
//! paths a declared template reads (found by minijinja's static analysis),
//! compiled so the runtime can build the render context from slots and
//! captured trigger fields. `with` keys and `message_id` come from the send.

use std::sync::Arc;

use super::program::{CExpr, FieldPath, TemplateId};
use super::tables::Compiler;
use crate::value::Value;

impl Compiler<'_> {
    /// `(path from the context root, value)` for every variable the template reads.
    pub(crate) fn render_values(&mut self, template: TemplateId) -> Vec<(FieldPath, CExpr)> {
        let vars = self.template_variables(template);
        vars.iter()
            .filter_map(|path| Some((path.clone(), self.render_value(path)?)))
            .collect()
    }

    fn render_value(&mut self, path: &FieldPath) -> Option<CExpr> {
        let (root, rest) = path.split_first()?;
        if rest.is_empty() {
            return None;
        }
        match &**root {
            "profile" => Some(CExpr::Profile(self.slot_of(rest.to_vec()))),
            "trigger" => Some(CExpr::Trigger(self.journey.trigger_field(rest.to_vec()))),
            "journey" => match rest.iter().map(|s| &**s).collect::<Vec<_>>().as_slice() {
                ["entered_at"] => Some(CExpr::EnteredAt),
                ["name"] => Some(CExpr::Const(Value::str(&self.journey.name))),
                ["display_name"] => Some(CExpr::Const(
                    self.journey
                        .display_name
                        .as_deref()
                        .map_or(Value::Null, Value::str),
                )),
                _ => None,
            },
            _ => None,
        }
    }

    /// The template's variables below `profile`, `trigger` and `journey`,
    /// sorted; computed once per template.
    fn template_variables(&mut self, template: TemplateId) -> Arc<[FieldPath]> {
        if let Some(vars) = self.template_vars.get(&template) {
            return vars.clone();
        }
        let mut vars: Vec<FieldPath> = Vec::new();
        if let Some(t) = self.templates.get(template as usize) {
            let env = minijinja::Environment::new();
            for source in t.subject.iter().chain([&t.body]).chain(&t.html) {
                // A syntax error is the checker's to report; it renders nothing here.
                if let Ok(parsed) = env.template_from_str(source) {
                    vars.extend(
                        parsed
                            .undeclared_variables(true)
                            .into_iter()
                            .map(|v| v.split('.').map(Arc::from).collect::<FieldPath>())
                            .filter(|p| {
                                p.len() > 1 && matches!(&*p[0], "profile" | "trigger" | "journey")
                            }),
                    );
                }
            }
        }
        vars.sort();
        vars.dedup();
        let vars: Arc<[FieldPath]> = Arc::from(vars);
        self.template_vars.insert(template, vars.clone());
        vars
    }
}
