//! Journey header clauses, steps and blocks on the fast path, rule for rule
//! as in `grammar/journey.pest`, `syntax/headers.rs` and `syntax/steps.rs`.
//!
//! pest tries alternatives in order and backs out of a failed one; here the
//! first word (or token) picks the alternative, and wherever pest could back
//! out of a partly matched one into another that succeeds, the chunk is
//! declined instead, so the two never disagree.

use super::super::ast::{
    Block, Cap, CapTarget, EventPattern, Expr, Header, HeaderKind, OnCapped, QuietHours, Reentry,
    Send, SendAlt, SplitArm, Step, StepKind, TemplateRef, Weekday, WithEntry,
};
use super::super::literals;
use super::cursor::{Parser, is_ident_start};
use crate::source::Span;

impl Parser<'_> {
    /// A header clause at a header keyword; `Some(None)` when the statement
    /// is a step (`exit` alone is one).
    pub fn header(&mut self) -> Option<Option<Header>> {
        let start = self.pos;
        let (kind, keyword) = match self.word() {
            "name" => {
                let kw = self.keyword("name")?;
                (HeaderKind::Name(self.string()?), kw)
            }
            "trigger" => self.trigger()?,
            "audience" => {
                let kw = self.keyword("audience")?;
                (HeaderKind::Audience(self.expr()?), kw)
            }
            "reentry" => self.reentry()?,
            "exit" => {
                let after = self.skip_from(start + 4);
                let kw = match self.word_at(after) {
                    "on" | "if" => self.keyword("exit")?,
                    _ => return Some(None),
                };
                if self.at_word("on") {
                    let kw = kw.to(self.keyword("on")?);
                    let event = self.event_ref()?;
                    let condition = self.where_clause()?;
                    (HeaderKind::ExitOn { event, condition }, kw)
                } else {
                    let kw = kw.to(self.keyword("if")?);
                    (HeaderKind::ExitIf(self.expr()?), kw)
                }
            }
            "goal" => self.goal()?,
            "holdout" => {
                let kw = self.keyword("holdout")?;
                (HeaderKind::Holdout(self.percent()?), kw)
            }
            "cap" => {
                let (cap, kw) = self.cap_clause()?;
                (HeaderKind::Cap(cap), kw)
            }
            "quiet" => {
                let (quiet, kw) = self.quiet_hours()?;
                (HeaderKind::QuietHours(quiet), kw)
            }
            _ => return Some(None),
        };
        Some(Some(Header {
            kind,
            keyword,
            span: self.open_span(start),
        }))
    }

    /// Where the trivia from `at` ends (without moving).
    fn skip_from(&self, at: usize) -> usize {
        let mut probe = Parser::new(self.file, self.offset, self.text);
        probe.pos = at;
        probe.skip();
        probe.pos
    }

    /// `trigger <event> [where ...]` or `trigger no <event|any> for <d>`.
    fn trigger(&mut self) -> Option<(HeaderKind, Span)> {
        let kw = self.keyword("trigger")?;
        if !self.at_word("no") {
            let event = self.event_ref()?;
            let condition = self.where_clause()?;
            return Some((HeaderKind::Trigger { event, condition }, kw));
        }
        let kw = kw.to(self.keyword("no")?);
        // From here pest could still back out and read `no` as an event
        // name; that rare path is pest's.
        let event = if let Some(any) = self.keyword("any") {
            EventPattern::Any(any)
        } else {
            match self.event_ref() {
                Some(event) => EventPattern::Named(event),
                None => return self.decline(),
            }
        };
        if self.keyword("for").is_none() {
            return self.decline();
        }
        let Some(silence) = self.duration_slot() else {
            return self.decline();
        };
        Some((HeaderKind::TriggerAbsence { event, silence }, kw))
    }

    /// An optional `where <expr>`: `Some(None)` when absent.
    fn where_clause(&mut self) -> Option<Option<Expr>> {
        if self.keyword("where").is_none() {
            return Some(None);
        }
        Some(Some(self.expr()?))
    }

    fn reentry(&mut self) -> Option<(HeaderKind, Span)> {
        let kw = self.keyword("reentry")?;
        let reentry = match self.word() {
            "never" => {
                self.keyword("never")?;
                Reentry::Never
            }
            "always" => {
                self.keyword("always")?;
                Reentry::Always
            }
            "after" => {
                self.keyword("after")?;
                Reentry::After(self.duration_slot()?)
            }
            _ => return None,
        };
        Some((HeaderKind::Reentry(reentry), kw))
    }

    fn goal(&mut self) -> Option<(HeaderKind, Span)> {
        let kw = self.keyword("goal")?;
        let event = self.event_ref()?;
        let condition = self.where_clause()?;
        let within = match self.keyword("within") {
            Some(_) => Some(self.duration_slot()?),
            None => None,
        };
        let kind = HeaderKind::Goal {
            event,
            condition,
            within,
        };
        Some((kind, kw))
    }

    /// `cap <channel|messages> <n> per <duration>`, with its keyword's span.
    pub fn cap_clause(&mut self) -> Option<(Cap, Span)> {
        let start = self.pos;
        let kw = self.keyword("cap")?;
        let target = match self.keyword("messages") {
            Some(span) => CapTarget::Messages(span),
            None => CapTarget::Channel(self.name()?),
        };
        let limit = self.count()?;
        self.keyword("per")?;
        let per = self.duration_slot()?;
        let cap = Cap {
            target,
            limit,
            per,
            span: self.open_span(start),
        };
        Some((cap, kw))
    }

    /// `quiet hours <HH:MM> to <HH:MM> [in <expr>]`, with its keywords' span.
    pub fn quiet_hours(&mut self) -> Option<(QuietHours, Span)> {
        let start = self.pos;
        let kw = self.keyword("quiet")?.to(self.keyword("hours")?);
        let from = self.time_of_day()?;
        self.keyword("to")?;
        let to = self.time_of_day()?;
        let zone = match self.keyword("in") {
            Some(_) => Some(self.expr()?),
            None => None,
        };
        let quiet = QuietHours {
            from,
            to,
            zone,
            span: self.open_span(start),
        };
        Some((quiet, kw))
    }

    // ------------------------------------------------------------ steps

    /// `{ <step>... }`
    fn block(&mut self) -> Option<Block> {
        let start = self.pos;
        self.punct(b'{')?;
        let mut steps = Vec::new();
        while self.peek() != b'}' {
            steps.push(self.step()?);
        }
        self.punct(b'}')?;
        Some(Block {
            steps,
            span: self.closed_span(start),
        })
    }

    pub fn step(&mut self) -> Option<Step> {
        let start = self.pos;
        let kind = match self.word() {
            "wait" => self.wait_step()?,
            "send" => StepKind::Send(self.send_step()?),
            "if" => self.if_step()?,
            "split" => self.split_step()?,
            "repeat" => self.repeat_step()?,
            "set" => self.set_step()?,
            "emit" => self.emit_step()?,
            "add" => self.audience_add()?,
            "remove" => self.audience_remove()?,
            "exit" => {
                self.keyword("exit")?;
                StepKind::Exit
            }
            _ => return None,
        };
        Some(Step {
            kind,
            span: self.open_span(start),
        })
    }

    fn wait_step(&mut self) -> Option<StepKind> {
        self.keyword("wait")?;
        if self.keyword("for").is_some() {
            if self.at_handle_ref() {
                self.wait_for_engagement()
            } else {
                self.wait_for_event()
            }
        } else if self.keyword("until").is_some() {
            if self.time_of_day_end().is_some() {
                self.wait_until_time()
            } else {
                Some(StepKind::WaitUntilExpr(self.expr()?))
            }
        } else {
            Some(StepKind::Wait(self.duration_slot()?))
        }
    }

    /// Whether `name.ident` (no spaces) starts here.
    fn at_handle_ref(&self) -> bool {
        let name = self.word();
        let dot = self.pos + name.len();
        !name.is_empty() && self.byte(dot) == b'.' && is_ident_start(self.byte(dot + 1))
    }

    fn wait_for_engagement(&mut self) -> Option<StepKind> {
        if super::super::ast::is_reserved(self.word()) {
            return self.decline();
        }
        let start = self.pos;
        let handle = self.word();
        let dot = start + handle.len();
        let engagement = self.word_at(dot + 1);
        let end = dot + 1 + engagement.len();
        let handle = super::super::ast::Ident {
            name: handle.to_owned(),
            span: self.span(start, dot),
        };
        let engagement = super::super::ast::Ident {
            name: engagement.to_owned(),
            span: self.span(dot + 1, end),
        };
        self.take_to(end);
        // Past the handle, pest's other reading (an event named like the
        // handle) cannot go on at the `.`, so failing here fails the chunk.
        self.keyword("within")?;
        let within = self.duration_slot()?;
        let (then, otherwise) = self.wait_blocks()?;
        Some(StepKind::WaitForEngagement {
            handle,
            engagement,
            within,
            then,
            otherwise,
        })
    }

    fn wait_for_event(&mut self) -> Option<StepKind> {
        let event = self.event_ref()?;
        let condition = self.where_clause()?;
        self.keyword("within")?;
        let within = self.duration_slot()?;
        let (then, otherwise) = self.wait_blocks()?;
        Some(StepKind::WaitForEvent {
            event,
            condition,
            within,
            then,
            otherwise,
        })
    }

    /// `[{ ... }] [else { ... }]`
    #[allow(clippy::type_complexity)]
    fn wait_blocks(&mut self) -> Option<(Option<Block>, Option<Block>)> {
        let then = match self.peek() {
            b'{' => Some(self.block()?),
            _ => None,
        };
        let otherwise = match self.keyword("else") {
            Some(_) => Some(self.block()?),
            None => None,
        };
        Some((then, otherwise))
    }

    fn wait_until_time(&mut self) -> Option<StepKind> {
        let time = self.time_of_day()?;
        let mut days = Vec::new();
        if self.keyword("on").is_some() {
            days.push(self.weekday()?);
            while self.punct(b',').is_some() {
                days.push(self.weekday()?);
            }
        }
        Some(StepKind::WaitUntilTime { time, days })
    }

    fn weekday(&mut self) -> Option<(Weekday, Span)> {
        let day = literals::parse_weekday(self.word())?;
        let start = self.pos;
        self.take_to(start + self.word().len());
        Some((day, self.closed_span(start)))
    }

    fn send_step(&mut self) -> Option<Send> {
        self.keyword("send")?;
        let mut send = Send {
            alternatives: vec![self.send_alt()?],
            handle: None,
            transactional: None,
            on_capped: None,
        };
        while self.keyword("or").is_some() {
            send.alternatives.push(self.send_alt()?);
        }
        loop {
            let start = self.pos;
            match self.word() {
                "as" => {
                    self.keyword("as")?;
                    let handle = self.name()?;
                    if send.handle.replace(handle).is_some() {
                        return self.decline();
                    }
                }
                "transactional" => {
                    let span = self.keyword("transactional")?;
                    if send.transactional.replace(span).is_some() {
                        return self.decline();
                    }
                }
                "on" => {
                    self.keyword("on")?;
                    self.keyword("capped")?;
                    let mode = match self.word() {
                        "skip" => OnCapped::Skip,
                        "wait" => OnCapped::Wait,
                        _ => return None,
                    };
                    self.take_to(self.pos + 4);
                    let span = self.closed_span(start);
                    if send.on_capped.replace((mode, span)).is_some() {
                        return self.decline();
                    }
                }
                _ => break,
            }
        }
        Some(send)
    }

    fn send_alt(&mut self) -> Option<SendAlt> {
        let start = self.pos;
        let channel = self.name()?;
        let template = if self.peek() == b'"' {
            TemplateRef::External(self.string()?)
        } else {
            TemplateRef::Named(self.name()?)
        };
        let with = self.with_block()?;
        Some(SendAlt {
            channel,
            template,
            with,
            span: self.open_span(start),
        })
    }

    /// An optional `with { key: <expr>, ... }`; empty when absent.
    fn with_block(&mut self) -> Option<Vec<WithEntry>> {
        let mut entries = Vec::new();
        if self.keyword("with").is_none() {
            return Some(entries);
        }
        self.punct(b'{')?;
        while self.peek() != b'}' {
            let key = self.ident()?;
            self.punct(b':')?;
            let value = self.expr()?;
            entries.push(WithEntry { key, value });
            if self.peek() == b',' {
                self.take_to(self.pos + 1);
            }
        }
        self.punct(b'}')?;
        Some(entries)
    }

    fn if_step(&mut self) -> Option<StepKind> {
        self.keyword("if")?;
        let condition = self.expr()?;
        let block = self.block()?;
        let mut branches = vec![(condition, block)];
        let mut otherwise = None;
        while self.keyword("else").is_some() {
            if self.keyword("if").is_some() {
                let condition = self.expr()?;
                branches.push((condition, self.block()?));
            } else {
                otherwise = Some(self.block()?);
                break;
            }
        }
        Some(StepKind::If {
            branches,
            otherwise,
        })
    }

    fn split_step(&mut self) -> Option<StepKind> {
        self.keyword("split")?;
        let name = if is_ident_start(self.peek()) {
            Some(self.name()?)
        } else {
            None
        };
        self.punct(b'{')?;
        let mut arms = Vec::new();
        while self.peek() != b'}' {
            let start = self.pos;
            let percent = self.percent()?;
            let label = self.name()?;
            let body = self.block()?;
            arms.push(SplitArm {
                percent,
                label,
                body,
                span: self.closed_span(start),
            });
        }
        self.punct(b'}')?;
        Some(StepKind::Split { name, arms })
    }

    fn repeat_step(&mut self) -> Option<StepKind> {
        self.keyword("repeat")?;
        let count = self.count()?;
        self.keyword("times")?;
        let body = self.block()?;
        Some(StepKind::Repeat { count, body })
    }

    /// `set profile.a.b = <expr>`; the path is one token, without spaces.
    fn set_step(&mut self) -> Option<StepKind> {
        self.keyword("set")?;
        if !self.at_word("profile") {
            return None;
        }
        let mut end = self.pos + "profile".len();
        let mut path = Vec::new();
        while self.byte(end) == b'.' && is_ident_start(self.byte(end + 1)) {
            let field = self.word_at(end + 1);
            let field_end = end + 1 + field.len();
            path.push(super::super::ast::Ident {
                name: field.to_owned(),
                span: self.span(end + 1, field_end),
            });
            end = field_end;
        }
        if path.is_empty() {
            return None;
        }
        self.take_to(end);
        self.eq_sign()?;
        let value = self.expr()?;
        Some(StepKind::Set { path, value })
    }

    fn emit_step(&mut self) -> Option<StepKind> {
        self.keyword("emit")?;
        let event = self.event_ref()?;
        let with = self.with_block()?;
        Some(StepKind::Emit { event, with })
    }

    fn audience_add(&mut self) -> Option<StepKind> {
        self.keyword("add")?;
        self.keyword("to")?;
        self.keyword("audience")?;
        let audience = self.name()?;
        let until_exit = match self.keyword("until") {
            Some(_) => {
                self.keyword("exit")?;
                true
            }
            None => false,
        };
        Some(StepKind::AudienceAdd {
            audience,
            until_exit,
        })
    }

    fn audience_remove(&mut self) -> Option<StepKind> {
        self.keyword("remove")?;
        self.keyword("from")?;
        self.keyword("audience")?;
        let audience = self.name()?;
        Some(StepKind::AudienceRemove { audience })
    }
}
