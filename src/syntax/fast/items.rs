//! Top-level items on the fast path: schemas, channels, templates, segments,
//! the policy and journeys, rule for rule as in `grammar/journey.pest` and
//! `syntax/items.rs`. A part given twice or a template without a channel is
//! reported by the visitors, so it goes to pest.

use super::super::ast::{
    ChannelDecl, EventRef, EventSchema, FieldDecl, Item, JourneyDecl, PolicyDecl, ProfileSchema,
    SegmentDecl, TemplateDecl, TypeExpr, TypeKind,
};
use super::cursor::{Parser, is_ident_start};

impl Parser<'_> {
    /// `SOI ~ item`; the caller checks that only trivia is left.
    pub fn item(&mut self, doc: Option<String>) -> Option<Item> {
        self.skip();
        Some(match self.word() {
            "event" => Item::Event(self.event_schema()?),
            "profile" => Item::Profile(self.profile_schema()?),
            "channel" => Item::Channel(self.channel_decl()?),
            "template" => Item::Template(self.template_decl()?),
            "segment" => Item::Segment(self.segment_decl()?),
            "policy" => Item::Policy(self.policy_decl()?),
            "journey" => Item::Journey(self.journey_decl(doc)?),
            _ => return None,
        })
    }

    /// `cart_abandoned` (not a reserved word) or `"Order Completed"`.
    pub fn event_ref(&mut self) -> Option<EventRef> {
        if self.peek() == b'"' {
            let s = self.string()?;
            return Some(EventRef {
                name: s.value,
                quoted: true,
                span: s.span,
            });
        }
        if super::super::ast::is_reserved(self.word()) {
            return None;
        }
        let ident = self.ident()?;
        Some(EventRef {
            name: ident.name,
            quoted: false,
            span: ident.span,
        })
    }

    fn event_schema(&mut self) -> Option<EventSchema> {
        let start = self.pos;
        self.keyword("event")?;
        let name = self.event_ref()?;
        self.punct(b'{')?;
        let fields = self.fields()?;
        Some(EventSchema {
            name,
            fields,
            span: self.closed_span(start),
        })
    }

    fn profile_schema(&mut self) -> Option<ProfileSchema> {
        let start = self.pos;
        let keyword = self.keyword("profile")?;
        self.punct(b'{')?;
        let fields = self.fields()?;
        Some(ProfileSchema {
            fields,
            keyword,
            span: self.closed_span(start),
        })
    }

    /// `(field_decl ~ comma?)* ~ rbrace`, after the `{`.
    fn fields(&mut self) -> Option<Vec<FieldDecl>> {
        let mut fields = Vec::new();
        while self.peek() != b'}' {
            fields.push(self.field_decl()?);
            if self.peek() == b',' {
                self.take_to(self.pos + 1);
            }
        }
        self.punct(b'}')?;
        Some(fields)
    }

    fn field_decl(&mut self) -> Option<FieldDecl> {
        let start = self.pos;
        let name = self.ident()?;
        self.punct(b':')?;
        let ty = self.type_expr()?;
        let optional = self.punct(b'?').is_some();
        Some(FieldDecl {
            name,
            ty,
            optional,
            span: self.open_span(start),
        })
    }

    fn type_expr(&mut self) -> Option<TypeExpr> {
        let start = self.pos;
        let kind = if self.peek() == b'{' {
            self.take_to(start + 1);
            TypeKind::Object(self.fields()?)
        } else {
            let kind = match self.word() {
                "list" => None,
                "string" => Some(TypeKind::String),
                "number" => Some(TypeKind::Number),
                "bool" => Some(TypeKind::Bool),
                "timestamp" => Some(TypeKind::Timestamp),
                "duration" => Some(TypeKind::Duration),
                _ => return None,
            };
            let word_end = start + self.word().len();
            self.take_to(word_end);
            match kind {
                Some(kind) => kind,
                None => {
                    self.punct(b'<')?;
                    let inner = self.type_expr()?;
                    self.punct(b'>')?;
                    TypeKind::List(Box::new(inner))
                }
            }
        };
        Some(TypeExpr {
            kind,
            span: self.closed_span(start),
        })
    }

    fn channel_decl(&mut self) -> Option<ChannelDecl> {
        let start = self.pos;
        self.keyword("channel")?;
        let name = self.name()?;
        self.punct(b'{')?;
        let (mut address, mut consent) = (None, None);
        while self.peek() != b'}' {
            let slot = match self.word() {
                "address" => &mut address,
                "consent" => &mut consent,
                _ => return None,
            };
            if slot.is_some() {
                return self.decline();
            }
            let word_end = self.pos + self.word().len();
            self.take_to(word_end);
            *slot = Some(self.expr()?);
        }
        self.punct(b'}')?;
        Some(ChannelDecl {
            name,
            address,
            consent,
            span: self.closed_span(start),
        })
    }

    fn template_decl(&mut self) -> Option<TemplateDecl> {
        let start = self.pos;
        self.keyword("template")?;
        let name = self.name()?;
        self.punct(b'{')?;
        let (mut channel, mut subject, mut body, mut html) = (None, None, None, None);
        while self.peek() != b'}' {
            match self.word() {
                "channel" if channel.is_none() => {
                    self.keyword("channel")?;
                    channel = Some(self.name()?);
                }
                "subject" if subject.is_none() => {
                    self.keyword("subject")?;
                    subject = Some(self.string()?);
                }
                "body" if body.is_none() => {
                    self.keyword("body")?;
                    body = Some(self.string()?);
                }
                "html" if html.is_none() => {
                    self.keyword("html")?;
                    html = Some(self.string()?);
                }
                // Given twice: reported.
                "channel" | "subject" | "body" | "html" => return self.decline(),
                _ => return None,
            }
        }
        self.punct(b'}')?;
        let Some(channel) = channel else {
            // A template without a channel is reported.
            return self.decline();
        };
        Some(TemplateDecl {
            name,
            channel,
            subject,
            body,
            html,
            span: self.closed_span(start),
        })
    }

    fn segment_decl(&mut self) -> Option<SegmentDecl> {
        let start = self.pos;
        self.keyword("segment")?;
        let name = self.name()?;
        self.eq_sign()?;
        let expr = self.expr()?;
        Some(SegmentDecl {
            name,
            expr,
            span: self.open_span(start),
        })
    }

    fn policy_decl(&mut self) -> Option<PolicyDecl> {
        let start = self.pos;
        let keyword = self.keyword("policy")?;
        self.punct(b'{')?;
        let mut caps = Vec::new();
        let mut quiet_hours = Vec::new();
        while self.peek() != b'}' {
            match self.word() {
                "cap" => caps.push(self.cap_clause()?.0),
                "quiet" => quiet_hours.push(self.quiet_hours()?.0),
                _ => return None,
            }
        }
        self.punct(b'}')?;
        Some(PolicyDecl {
            caps,
            quiet_hours,
            keyword,
            span: self.closed_span(start),
        })
    }

    fn journey_decl(&mut self, doc: Option<String>) -> Option<JourneyDecl> {
        let start = self.pos;
        self.keyword("journey")?;
        let name = self.name()?;
        self.punct(b'{')?;
        let mut headers = Vec::new();
        let mut steps = Vec::new();
        while self.peek() != b'}' {
            if !is_ident_start(self.peek()) {
                return None;
            }
            match self.header()? {
                Some(header) => headers.push(header),
                None => steps.push(self.step()?),
            }
        }
        self.punct(b'}')?;
        let first_step = steps.first().map(|s: &super::super::ast::Step| s.span);
        Some(JourneyDecl {
            doc,
            name,
            headers,
            steps,
            first_step,
            span: self.closed_span(start),
        })
    }
}
