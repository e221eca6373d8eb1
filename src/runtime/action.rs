//! The runtime's output: one [`Action`] per effect, in the order they
//! happen, written as one JSON object per line with its fields in a fixed
//! order (`at`, `kind`, `journey`, `user_id`, then the kind's own fields).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::{Str, Value, write_json_str, write_json_value, write_timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Epoch milliseconds (UTC).
    pub at: i64,
    pub journey: Arc<str>,
    pub user_id: Str,
    pub kind: ActionKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActionKind {
    Enter {
        holdout: bool,
    },
    Send {
        channel: Arc<str>,
        template: Arc<str>,
        message_id: String,
        /// The address; `null` for a channel without one (webhook).
        to: Value,
        vars: Vec<(Arc<str>, Value)>,
        subject: Option<String>,
        body: Option<String>,
        /// The HTML part, for a declared template that has one.
        html: Option<String>,
    },
    Suppress {
        channel: Arc<str>,
        template: Arc<str>,
        reason: SuppressReason,
    },
    Exit {
        reason: ExitReason,
    },
    Convert {
        goal: Arc<str>,
        holdout: bool,
        message_ids: Vec<String>,
    },
    Set {
        /// `profile.<path>`, dotted.
        path: String,
        value: Value,
    },
    Emit {
        event: Arc<str>,
        properties: Vec<(Arc<str>, Value)>,
    },
    Audience {
        add: bool,
        audience: Arc<str>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuppressReason {
    Unreachable,
    Capped,
    /// The chosen alternative's template failed to render.
    RenderFailed,
}

impl SuppressReason {
    pub const ALL: [SuppressReason; 3] = [
        SuppressReason::Unreachable,
        SuppressReason::Capped,
        SuppressReason::RenderFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SuppressReason::Unreachable => "unreachable",
            SuppressReason::Capped => "capped",
            SuppressReason::RenderFailed => "render_failed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    Completed,
    ExitEvent,
    ExitCondition,
    ExitStep,
    Goal,
    Holdout,
    /// A moment the instance needed has no timestamp: a `wait until` on a
    /// value that is not one, or a time past year 9999.
    InvalidTime,
}

impl ExitReason {
    pub const ALL: [ExitReason; 7] = [
        ExitReason::Completed,
        ExitReason::ExitEvent,
        ExitReason::ExitCondition,
        ExitReason::ExitStep,
        ExitReason::Goal,
        ExitReason::Holdout,
        ExitReason::InvalidTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExitReason::Completed => "completed",
            ExitReason::ExitEvent => "exit_event",
            ExitReason::ExitCondition => "exit_condition",
            ExitReason::ExitStep => "exit_step",
            ExitReason::Goal => "goal",
            ExitReason::Holdout => "holdout",
            ExitReason::InvalidTime => "invalid_time",
        }
    }
}

impl ActionKind {
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Enter { .. } => "enter",
            ActionKind::Send { .. } => "send",
            ActionKind::Suppress { .. } => "suppress",
            ActionKind::Exit { .. } => "exit",
            ActionKind::Convert { .. } => "convert",
            ActionKind::Set { .. } => "set",
            ActionKind::Emit { .. } => "emit",
            ActionKind::Audience { .. } => "audience",
        }
    }
}

impl Action {
    /// The action as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(160);
        self.write_json_line(&mut out);
        out
    }

    /// Appends [`Action::to_json_line`]'s text to `out`, so a writer can
    /// reuse one buffer for a whole stream.
    pub fn write_json_line(&self, out: &mut String) {
        out.push_str("{\"at\":\"");
        write_timestamp(self.at, out);
        out.push_str("\",\"kind\":");
        push_str(out, self.kind.name());
        out.push_str(",\"journey\":");
        push_str(out, &self.journey);
        out.push_str(",\"user_id\":");
        push_str(out, &self.user_id);
        self.kind.write_fields(out);
        out.push('}');
    }
}

impl ActionKind {
    fn write_fields(&self, out: &mut String) {
        match self {
            ActionKind::Enter { holdout } => field_bool(out, "holdout", *holdout),
            ActionKind::Send {
                channel,
                template,
                message_id,
                to,
                vars,
                subject,
                body,
                html,
            } => {
                field_str(out, "channel", channel);
                field_str(out, "template", template);
                field_str(out, "message_id", message_id);
                field_value(out, "to", to);
                key(out, "vars");
                push_object(out, vars);
                if let Some(subject) = subject {
                    field_str(out, "subject", subject);
                }
                if let Some(body) = body {
                    field_str(out, "body", body);
                }
                if let Some(html) = html {
                    field_str(out, "html", html);
                }
            }
            ActionKind::Suppress {
                channel,
                template,
                reason,
            } => {
                field_str(out, "channel", channel);
                field_str(out, "template", template);
                field_str(out, "reason", reason.name());
            }
            ActionKind::Exit { reason } => field_str(out, "reason", reason.name()),
            ActionKind::Convert {
                goal,
                holdout,
                message_ids,
            } => {
                field_str(out, "goal", goal);
                field_bool(out, "holdout", *holdout);
                key(out, "message_ids");
                out.push('[');
                for (i, id) in message_ids.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_str(out, id);
                }
                out.push(']');
            }
            ActionKind::Set { path, value } => {
                field_str(out, "path", path);
                field_value(out, "value", value);
            }
            ActionKind::Emit { event, properties } => {
                field_str(out, "event", event);
                key(out, "properties");
                push_object(out, properties);
            }
            ActionKind::Audience { add, audience } => {
                field_str(out, "op", if *add { "add" } else { "remove" });
                field_str(out, "audience", audience);
            }
        }
    }
}

fn key(out: &mut String, name: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
}

fn field_str(out: &mut String, name: &str, value: &str) {
    key(out, name);
    push_str(out, value);
}

fn field_bool(out: &mut String, name: &str, value: bool) {
    key(out, name);
    out.push_str(if value { "true" } else { "false" });
}

fn field_value(out: &mut String, name: &str, value: &Value) {
    key(out, name);
    push_value(out, value);
}

/// An object whose keys keep their source order.
fn push_object(out: &mut String, fields: &[(Arc<str>, Value)]) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_value(out, v);
    }
    out.push('}');
}

fn push_value(out: &mut String, value: &Value) {
    write_json_value(out, value);
}

fn push_str(out: &mut String, text: &str) {
    write_json_str(out, text);
}
