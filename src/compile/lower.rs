//! Steps → nodes. Ids are handed out in source pre-order (a step's node
//! before the nodes of its blocks, `repeat` unrolled); the successors that are
//! not known yet (the step after a block) are left as holes and patched once
//! the next node exists. `if`/`split` arms and `wait for` blocks rejoin at the
//! step after them, an absent or empty block goes straight there, and the end
//! of the steps is one `End` node.

use std::sync::Arc;

use super::program::{EventClause, Node, NodeId, NodeKind, SendAlt, SendNode, SplitArm};
use super::tables::{Compiler, Role, duration_ms};
use crate::builtins::BEST_HOUR_WINDOW_MS;
use crate::builtins::HandleField;
use crate::source::Span;
use crate::syntax::ast;

/// A successor not known yet: slot `slot` (in [`NodeKind::successors`]
/// order) of node `node`.
#[derive(Clone, Copy)]
struct Hole {
    node: NodeId,
    slot: usize,
}

/// The nodes of a run of steps: where it starts (`None`: it has no node and
/// control passes straight through) and the successors that leave it.
struct Fragment {
    entry: Option<NodeId>,
    holes: Vec<Hole>,
}

/// Placeholder for a successor until its hole is patched.
const UNSET: NodeId = NodeId::MAX;

/// Most characters of a node label.
const LABEL_MAX: usize = 60;

impl<'p> Compiler<'p> {
    /// Lowers the journey's steps into `self.journey.nodes`; node 0 is the entry.
    pub(crate) fn lower_journey(&mut self, decl: &'p ast::JourneyDecl) {
        let body = self.lower_steps(&decl.steps);
        let end_span = Span {
            start: decl.span.end.saturating_sub(1),
            ..decl.span
        };
        let end = self.push_node(NodeKind::End, end_span, Some("end"));
        self.patch(&body.holes, end);
        // Defensive: every successor is patched by construction.
        for node in &mut self.journey.nodes {
            for slot in 0.. {
                match successor_mut(&mut node.kind, slot) {
                    Some(next) if *next == UNSET => *next = end,
                    Some(_) => {}
                    None => break,
                }
            }
        }
    }

    fn lower_steps(&mut self, steps: &'p [ast::Step]) -> Fragment {
        let mut entry = None;
        let mut pending: Vec<Hole> = Vec::new();
        for step in steps {
            let fragment = self.lower_step(step);
            let Some(start) = fragment.entry else {
                continue;
            };
            entry.get_or_insert(start);
            self.patch(&pending, start);
            pending = fragment.holes;
        }
        Fragment {
            entry,
            holes: pending,
        }
    }

    fn lower_block(&mut self, block: Option<&'p ast::Block>) -> Fragment {
        match block {
            Some(b) => self.lower_steps(&b.steps),
            None => Fragment {
                entry: None,
                holes: Vec::new(),
            },
        }
    }

    fn lower_step(&mut self, step: &'p ast::Step) -> Fragment {
        match &step.kind {
            ast::StepKind::Wait(d) => {
                let ms = duration_ms(*d);
                self.single(step, NodeKind::Wait { ms, next: UNSET })
            }
            ast::StepKind::WaitUntilTime { time, days } => {
                let weekdays = days.iter().fold(0u8, |mask, (d, _)| mask | 1 << (*d as u8));
                let kind = NodeKind::WaitUntilTime {
                    minute: time.minutes,
                    weekdays,
                    next: UNSET,
                };
                self.single(step, kind)
            }
            ast::StepKind::WaitUntilExpr(e) => {
                let at = self.expr(e);
                self.single(step, NodeKind::WaitUntil { at, next: UNSET })
            }
            ast::StepKind::WaitForEvent {
                alternatives,
                within,
                then,
                otherwise,
            } => self.lower_wait_for_event(step, alternatives, *within, then, otherwise),
            ast::StepKind::WaitForEngagement {
                handle,
                engagement,
                within,
                then,
                otherwise,
            } => self.lower_wait_for_engagement(step, handle, engagement, *within, then, otherwise),
            ast::StepKind::Send(send) => self.lower_send(step, send),
            ast::StepKind::If {
                branches,
                otherwise,
            } => self.lower_if(step, branches, otherwise.as_ref()),
            ast::StepKind::Split { name, arms } => self.lower_split(step, name.as_ref(), arms),
            ast::StepKind::Repeat { count, body } => self.lower_repeat(count, body),
            ast::StepKind::Set { path, value } => {
                let slot = self.slot_of(path.iter().map(|p| Arc::from(p.name.as_str())).collect());
                let value = self.expr(value);
                self.single(
                    step,
                    NodeKind::Set {
                        slot,
                        value,
                        next: UNSET,
                    },
                )
            }
            ast::StepKind::Emit { event, with } => {
                let with = self.with_entries(with);
                let kind = NodeKind::Emit {
                    event: Arc::from(event.name.as_str()),
                    with,
                    next: UNSET,
                };
                self.single(step, kind)
            }
            ast::StepKind::AudienceAdd {
                audience,
                until_exit,
            } => {
                let kind = NodeKind::Audience {
                    add: true,
                    audience: Arc::from(audience.name.as_str()),
                    until_exit: *until_exit,
                    next: UNSET,
                };
                self.single(step, kind)
            }
            ast::StepKind::AudienceRemove { audience } => {
                let kind = NodeKind::Audience {
                    add: false,
                    audience: Arc::from(audience.name.as_str()),
                    until_exit: false,
                    next: UNSET,
                };
                self.single(step, kind)
            }
            ast::StepKind::Exit => {
                let id = self.push_node(NodeKind::Exit, step.span, None);
                Fragment {
                    entry: Some(id),
                    holes: Vec::new(),
                }
            }
        }
    }

    /// A node with one successor, the step after it.
    fn single(&mut self, step: &ast::Step, kind: NodeKind) -> Fragment {
        let id = self.push_node(kind, step.span, None);
        Fragment {
            entry: Some(id),
            holes: vec![Hole { node: id, slot: 0 }],
        }
    }

    fn lower_wait_for_event(
        &mut self,
        step: &'p ast::Step,
        alternatives: &'p [ast::WaitAlt],
        within: ast::DurationLit,
        then: &'p Option<ast::Block>,
        otherwise: &'p Option<ast::Block>,
    ) -> Fragment {
        let alternatives = alternatives
            .iter()
            .map(|alt| {
                let event = self.event_id(&alt.event.name);
                self.add_role(event, Role::Wait, self.journey.id);
                let condition = self.clause_condition(event, alt.condition.as_ref());
                EventClause { event, condition }
            })
            .collect();
        let kind = NodeKind::WaitForEvent {
            alternatives,
            within_ms: duration_ms(within),
            matched: UNSET,
            timeout: UNSET,
        };
        let id = self.push_node(kind, step.span, None);
        self.lower_arms(id, [then.as_ref(), otherwise.as_ref()])
    }

    fn lower_wait_for_engagement(
        &mut self,
        step: &'p ast::Step,
        handle: &ast::Ident,
        engagement: &ast::Ident,
        within: ast::DurationLit,
        then: &'p Option<ast::Block>,
        otherwise: &'p Option<ast::Block>,
    ) -> Fragment {
        let refs = &self.model.refs;
        let (Some(&checked), Some(&HandleField::Engaged(engagement))) = (
            refs.handles.get(&handle.span),
            refs.handle_fields.get(&engagement.span),
        ) else {
            self.unresolved(step.span);
            return self.lower_block(None);
        };
        let handle = self.journey.handle(checked, &handle.name);
        let event = self.engagement_event(engagement);
        self.add_role(event, Role::Wait, self.journey.id);
        let kind = NodeKind::WaitForEngagement {
            handle,
            engagement,
            within_ms: duration_ms(within),
            matched: UNSET,
            timeout: UNSET,
        };
        let id = self.push_node(kind, step.span, None);
        self.lower_arms(id, [then.as_ref(), otherwise.as_ref()])
    }

    /// Lowers each block into successor slot `i` of node `id`; an absent or
    /// empty block leaves the slot as a hole to the step after.
    fn lower_arms(
        &mut self,
        id: NodeId,
        blocks: impl IntoIterator<Item = Option<&'p ast::Block>>,
    ) -> Fragment {
        let mut holes = Vec::new();
        for (slot, block) in blocks.into_iter().enumerate() {
            let arm = self.lower_block(block);
            match arm.entry {
                Some(entry) => {
                    self.patch(&[Hole { node: id, slot }], entry);
                    holes.extend(arm.holes);
                }
                None => holes.push(Hole { node: id, slot }),
            }
        }
        Fragment {
            entry: Some(id),
            holes,
        }
    }

    fn lower_send(&mut self, step: &'p ast::Step, send: &'p ast::Send) -> Fragment {
        let alternatives: Vec<SendAlt> = send
            .alternatives
            .iter()
            .filter_map(|alt| self.send_alt(alt))
            .collect();
        let handle = self.model.refs.binds.get(&step.span).map(|&checked| {
            let name = match (&send.handle, send.alternatives.first()) {
                (Some(h), _) => h.name.as_str(),
                (None, Some(alt)) => alt.template.name(),
                (None, None) => "",
            };
            self.journey.handle(checked, name)
        });
        let kind = NodeKind::Send(SendNode {
            alternatives,
            handle,
            transactional: send.transactional.is_some(),
            wait_when_capped: matches!(send.on_capped, Some((ast::OnCapped::Wait, _))),
            best_hour_ms: send
                .best_hour
                .as_ref()
                .map(|b| b.within.map_or(BEST_HOUR_WINDOW_MS, duration_ms)),
            next: UNSET,
        });
        self.single(step, kind)
    }

    fn send_alt(&mut self, alt: &'p ast::SendAlt) -> Option<SendAlt> {
        let channel = self.channel_ref(alt.channel.span)?;
        let declared = match &alt.template {
            ast::TemplateRef::Named(name) => self.template_ref(name.span),
            ast::TemplateRef::External(_) => None,
        };
        let with = self.with_entries(&alt.with);
        let render = declared.map(|t| self.render_values(t)).unwrap_or_default();
        Some(SendAlt {
            channel,
            template: Arc::from(alt.template.name()),
            declared,
            with,
            render,
        })
    }

    fn with_entries(
        &mut self,
        with: &'p [ast::WithEntry],
    ) -> Vec<(Arc<str>, super::program::CExpr)> {
        with.iter()
            .map(|w| (Arc::from(w.key.name.as_str()), self.expr(&w.value)))
            .collect()
    }

    fn lower_if(
        &mut self,
        step: &'p ast::Step,
        branches: &'p [(ast::Expr, ast::Block)],
        otherwise: Option<&'p ast::Block>,
    ) -> Fragment {
        let arms = branches
            .iter()
            .map(|(cond, _)| (self.expr(cond), UNSET))
            .collect();
        let id = self.push_node(
            NodeKind::Branch {
                arms,
                otherwise: UNSET,
            },
            step.span,
            None,
        );
        let source = self.project.sources.get(step.span.file);
        self.journey.nodes[id as usize].conditions = branches
            .iter()
            .map(|(cond, _)| Arc::from(one_line(source.slice(cond.span)).as_str()))
            .collect();
        let blocks = branches.iter().map(|(_, b)| Some(b)).chain([otherwise]);
        self.lower_arms(id, blocks.collect::<Vec<_>>())
    }

    fn lower_split(
        &mut self,
        step: &'p ast::Step,
        name: Option<&ast::Ident>,
        arms: &'p [ast::SplitArm],
    ) -> Fragment {
        let id = self.journey.nodes.len() as NodeId;
        let key = match name {
            Some(n) => Arc::from(n.name.as_str()),
            None => Arc::from(format!("split_{id}").as_str()),
        };
        let split_arms = arms
            .iter()
            .map(|a| SplitArm {
                percent: a.percent.value,
                label: Arc::from(a.label.name.as_str()),
                next: UNSET,
            })
            .collect();
        let id = self.push_node(
            NodeKind::Split {
                key,
                arms: split_arms,
            },
            step.span,
            None,
        );
        self.lower_arms(id, arms.iter().map(|a| Some(&a.body)).collect::<Vec<_>>())
    }

    /// `repeat n times { }`: the body, n times in a row.
    fn lower_repeat(&mut self, count: &ast::IntLit, body: &'p ast::Block) -> Fragment {
        let times = count.value.clamp(0, 50);
        let mut entry = None;
        let mut pending: Vec<Hole> = Vec::new();
        for _ in 0..times {
            let copy = self.lower_steps(&body.steps);
            let Some(start) = copy.entry else {
                continue;
            };
            entry.get_or_insert(start);
            self.patch(&pending, start);
            pending = copy.holes;
        }
        Fragment {
            entry,
            holes: pending,
        }
    }

    fn push_node(&mut self, kind: NodeKind, span: Span, label: Option<&str>) -> NodeId {
        let source = self.project.sources.get(span.file);
        let label = match label {
            Some(l) => Arc::from(l),
            None => step_label(source.slice(span)),
        };
        let line = source.line_col(span.start).0 as u32;
        let id = self.journey.nodes.len() as NodeId;
        self.journey.nodes.push(Node {
            kind,
            label,
            line,
            conditions: Vec::new(),
        });
        self.journey.spans.push(span);
        id
    }

    fn patch(&mut self, holes: &[Hole], target: NodeId) {
        for hole in holes {
            if let Some(node) = self.journey.nodes.get_mut(hole.node as usize)
                && let Some(next) = successor_mut(&mut node.kind, hole.slot)
            {
                *next = target;
            }
        }
    }
}

/// Source text on one line: runs of white space (newlines included) become
/// one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Successor slot `slot` of a node, in [`NodeKind::successors`] order.
fn successor_mut(kind: &mut NodeKind, slot: usize) -> Option<&mut NodeId> {
    match kind {
        NodeKind::Wait { next, .. }
        | NodeKind::WaitUntilTime { next, .. }
        | NodeKind::WaitUntil { next, .. }
        | NodeKind::Set { next, .. }
        | NodeKind::Emit { next, .. }
        | NodeKind::Audience { next, .. }
        | NodeKind::Send(SendNode { next, .. }) => (slot == 0).then_some(next),
        NodeKind::WaitForEvent {
            matched, timeout, ..
        }
        | NodeKind::WaitForEngagement {
            matched, timeout, ..
        } => match slot {
            0 => Some(matched),
            1 => Some(timeout),
            _ => None,
        },
        NodeKind::Branch { arms, otherwise } => {
            if slot < arms.len() {
                arms.get_mut(slot).map(|(_, n)| n)
            } else if slot == arms.len() {
                Some(otherwise)
            } else {
                None
            }
        }
        NodeKind::Split { arms, .. } => arms.get_mut(slot).map(|a| &mut a.next),
        NodeKind::Exit | NodeKind::End => None,
    }
}

/// The step as written: its first line, trimmed, without an opening `{`
/// (or `else {`),
/// at most [`LABEL_MAX`] characters (`…` marks a cut).
pub(crate) fn step_label(text: &str) -> Arc<str> {
    // The step's lines up to the first that opens a block, on one line: a
    // send whose alternatives `journey fmt` puts one a line reads as one.
    let end = text
        .lines()
        .scan(0, |at, line| {
            *at += line.len() + 1;
            Some((*at, line.trim_end().ends_with('{')))
        })
        .find(|&(_, opens)| opens)
        .map_or(text.len(), |(at, _)| at.min(text.len()));
    let first = one_line(&text[..end]);
    let first = first.strip_suffix('{').unwrap_or(&first).trim_end();
    // A send's `with {` broken over lines.
    let first = first.strip_suffix(" with").unwrap_or(first);
    // `wait for x within 1d else {` with no first block.
    let first = first.strip_suffix(" else").unwrap_or(first);
    if first.chars().count() <= LABEL_MAX {
        return Arc::from(first);
    }
    let mut cut: String = first.chars().take(LABEL_MAX - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Arc::from(cut.as_str())
}

#[cfg(test)]
mod tests {
    use super::step_label;

    #[test]
    fn labels_are_the_first_line_trimmed_and_cut() {
        assert_eq!(
            &*step_label("if trigger.total > 100 {\n  send email x\n}"),
            "if trigger.total > 100"
        );
        assert_eq!(
            &*step_label("send push a\n  or sms b\n  or email c"),
            "send push a or sms b or email c"
        );
        let long = format!("send email {}", "x".repeat(80));
        let label = step_label(&long);
        assert_eq!(label.chars().count(), 60);
        assert!(label.ends_with('…'));
    }
}
