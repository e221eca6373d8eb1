//! The typed syntax tree of a `.journey` file. Every node carries the span of
//! the source it came from; nothing here knows about pest.

use crate::source::Span;

/// A name written by the user, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal, unescaped.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// An event name: an identifier (`order_completed`) or a string
/// (`"Order Completed"`); both match the event named exactly that text.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef {
    pub name: String,
    pub quoted: bool,
    pub span: Span,
}

/// An event pattern of `trigger no ... for`: a named event or `any`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventPattern {
    Named(EventRef),
    Any(Span),
}

/// A duration literal such as `1h30m`, in whole seconds (always > 0 once checked).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurationLit {
    pub secs: u64,
    pub span: Span,
}

/// A time of day `HH:MM`, as minutes after midnight (0..1440).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeOfDay {
    pub minutes: u16,
    pub span: Span,
}

/// A percentage such as `12.5%` (0 < value <= 100 once checked).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percent {
    pub value: f64,
    pub span: Span,
}

/// An integer literal where the grammar wants a count (`cap email 2 ...`,
/// `repeat 3 times`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntLit {
    pub value: i64,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
    /// Every `//` comment of the file (`///` doc lines included), in order:
    /// the items do not hold them, a formatter or an editor reads them here.
    pub comments: Vec<Comment>,
}

/// A `//` comment: its text from the slashes to the end of its line.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Event(EventSchema),
    Profile(ProfileSchema),
    Channel(ChannelDecl),
    Template(TemplateDecl),
    Segment(SegmentDecl),
    Policy(PolicyDecl),
    /// `attribution { ... }` (LANGUAGE.md §4.4).
    Attribution(AttributionDecl),
    /// `allow W0005, ...` for the whole project.
    Allow(Allow),
    Journey(JourneyDecl),
}

/// `allow <code>[, <code>]...`: the warnings it silences, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Allow {
    pub codes: Vec<Ident>,
    pub span: Span,
}

impl Item {
    /// The item's text, from its keyword to its end.
    pub fn span(&self) -> Span {
        match self {
            Item::Event(i) => i.span,
            Item::Profile(i) => i.span,
            Item::Channel(i) => i.span,
            Item::Template(i) => i.span,
            Item::Segment(i) => i.span,
            Item::Policy(i) => i.span,
            Item::Attribution(i) => i.span,
            Item::Allow(i) => i.span,
            Item::Journey(i) => i.span,
        }
    }
}

// ---------------------------------------------------------------- schemas

/// `event <ref> { field: type, ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct EventSchema {
    pub name: EventRef,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// `profile { field: type, ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileSchema {
    pub fields: Vec<FieldDecl>,
    /// The `profile` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// `name: type` or `name: type?` in a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub optional: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    String,
    Number,
    Bool,
    Timestamp,
    Duration,
    List(Box<TypeExpr>),
    Object(Vec<FieldDecl>),
}

// ---------------------------------------------------------------- declarations

/// `channel <name> { address <expr> consent <expr> }`; both parts optional
/// (a missing one keeps the built-in or default rule).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDecl {
    pub name: Ident,
    pub address: Option<Expr>,
    pub consent: Option<Expr>,
    pub span: Span,
}

/// `template <name> { channel <name> subject "..." body "..." html "..." }`
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateDecl {
    pub name: Ident,
    pub channel: Ident,
    pub subject: Option<StrLit>,
    /// Required; `None` is reported by the checker with the template's span.
    pub body: Option<StrLit>,
    /// The HTML part of an email (values HTML-escaped when rendered).
    pub html: Option<StrLit>,
    pub span: Span,
}

/// `segment <name> = <expr>`
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDecl {
    pub name: Ident,
    pub expr: Expr,
    pub span: Span,
}

/// `policy { cap ... quiet hours ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDecl {
    pub caps: Vec<Cap>,
    /// More than one is reported as a duplicate clause.
    pub quiet_hours: Vec<QuietHours>,
    /// The `policy` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// `attribution { conversion <event> [where <expr>] [value <expr>]  window D
/// half life D }`: what a conversion is and what it is worth. Each part is
/// kept as often as it is written; the checker says which are missing or
/// repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributionDecl {
    pub conversions: Vec<Conversion>,
    pub windows: Vec<DurationLit>,
    pub half_lives: Vec<DurationLit>,
    /// The `attribution` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// `conversion <event> [where <expr>] [value <expr>]`
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    pub event: EventRef,
    pub condition: Option<Expr>,
    pub value: Option<Expr>,
    pub span: Span,
}

/// `cap <channel> <n> per <duration>` / `cap messages <n> per <duration>`
#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    pub target: CapTarget,
    pub limit: IntLit,
    pub per: DurationLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CapTarget {
    /// `messages`: every non-transactional send.
    Messages(Span),
    Channel(Ident),
}

/// `quiet hours <HH:MM> to <HH:MM> [in <expr>]`
#[derive(Clone, Debug, PartialEq)]
pub struct QuietHours {
    pub from: TimeOfDay,
    pub to: TimeOfDay,
    pub zone: Option<Expr>,
    pub span: Span,
}

// ---------------------------------------------------------------- journeys

/// `/// doc` + `journey <name> { <header>... <step>... }`
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyDecl {
    /// The `///` lines directly above, joined by `\n`, without the slashes
    /// and one leading space.
    pub doc: Option<String>,
    pub name: Ident,
    /// Header clauses in source order, wherever they appear in the body.
    pub headers: Vec<Header>,
    /// Top-level steps in source order.
    pub steps: Vec<Step>,
    /// The span of the first top-level step, so the checker can tell a
    /// header written after it.
    pub first_step: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub kind: HeaderKind,
    /// The clause's keyword(s): `trigger`, `exit on`, `quiet hours`, ...
    pub keyword: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HeaderKind {
    Name(StrLit),
    Trigger {
        event: EventRef,
        condition: Option<Expr>,
    },
    /// `trigger no <event|any> for <duration>`
    TriggerAbsence {
        event: EventPattern,
        silence: DurationLit,
    },
    /// `trigger every day|<weekday>, ... at HH:MM [in <expr>]` (`days`
    /// empty: every day).
    TriggerEvery {
        days: Vec<(Weekday, Span)>,
        at: TriggerAt,
    },
    /// `trigger on <path>`, `trigger <d> before|after <path>`, and
    /// `trigger anniversary of <path>`, each `[at HH:MM [in <expr>]]`.
    TriggerDate {
        kind: DateTrigger,
        path: Expr,
        at: Option<TriggerAt>,
    },
    /// `trigger enters|leaves <segment>` (`enters`: true).
    TriggerSegment {
        enters: bool,
        segment: Expr,
    },
    Audience(Expr),
    Reentry(Reentry),
    /// `per trigger.<path>`: the path as an expression (checked to be a
    /// `trigger.` path).
    Per(Expr),
    ExitOn {
        event: EventRef,
        condition: Option<Expr>,
    },
    ExitIf(Expr),
    Goal {
        event: EventRef,
        condition: Option<Expr>,
        within: Option<DurationLit>,
    },
    Holdout(Percent),
    Cap(Cap),
    QuietHours(QuietHours),
    /// `allow W0005`: silences those warnings inside this journey.
    Allow(Allow),
}

/// `at HH:MM [in <expr>]` of a scheduled or date trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerAt {
    pub time: TimeOfDay,
    pub zone: Option<Expr>,
}

/// Which moment a date trigger offers entry at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DateTrigger {
    /// `on <path>`
    On,
    /// `<d> before <path>`
    Before(DurationLit),
    /// `<d> after <path>`
    After(DurationLit),
    /// `anniversary of <path>`
    Anniversary,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reentry {
    Never,
    Always,
    After(DurationLit),
}

/// `{ <step>... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub steps: Vec<Step>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// `wait 1h`
    Wait(DurationLit),
    /// `wait until 09:00 [on monday, ...]`
    WaitUntilTime {
        time: TimeOfDay,
        days: Vec<(Weekday, Span)>,
    },
    /// `wait until <timestamp expr>`
    WaitUntilExpr(Expr),
    /// `wait for <event> [where <expr>] within <d> [{ }] [else { }]`
    WaitForEvent {
        /// `A [where ...] or B [where ...]`: at least one.
        alternatives: Vec<WaitAlt>,
        within: DurationLit,
        then: Option<Block>,
        otherwise: Option<Block>,
    },
    /// `wait for <handle>.<engagement> within <d> [{ }] [else { }]`
    WaitForEngagement {
        handle: Ident,
        engagement: Ident,
        within: DurationLit,
        then: Option<Block>,
        otherwise: Option<Block>,
    },
    Send(Send),
    /// `if <c> { } else if <c> { } else { }`
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    /// `split [<name>] { <p>% <label> { } ... }`
    Split {
        name: Option<Ident>,
        arms: Vec<SplitArm>,
    },
    /// `repeat <n> times { }`
    Repeat {
        count: IntLit,
        body: Block,
    },
    /// `set profile.<path> = <expr>`; `path` excludes the `profile` root.
    Set {
        path: Vec<Ident>,
        value: Expr,
    },
    /// `emit <event> [with { k: v }]`
    Emit {
        event: EventRef,
        with: Vec<WithEntry>,
    },
    /// `add to audience <name> [until exit]`
    AudienceAdd {
        audience: Ident,
        until_exit: bool,
    },
    /// `remove from audience <name>`
    AudienceRemove {
        audience: Ident,
    },
    /// `exit`
    Exit,
}

/// `send <alt> [or <alt>]... [as <handle>] [transactional] [on capped skip|wait]`
/// One event a `wait for` waits for, with its condition.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitAlt {
    pub event: EventRef,
    pub condition: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Send {
    pub alternatives: Vec<SendAlt>,
    pub handle: Option<Ident>,
    pub transactional: Option<Span>,
    pub on_capped: Option<(OnCapped, Span)>,
    /// `at best hour [within <duration>]`.
    pub best_hour: Option<BestHour>,
}

/// `at best hour [within <duration>]` on a send.
#[derive(Clone, Debug, PartialEq)]
pub struct BestHour {
    pub within: Option<DurationLit>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCapped {
    Skip,
    Wait,
}

/// `<channel> <template> [with { k: v, ... }]`
#[derive(Clone, Debug, PartialEq)]
pub struct SendAlt {
    pub channel: Ident,
    pub template: TemplateRef,
    pub with: Vec<WithEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplateRef {
    /// A declared template (checked when the project declares templates).
    Named(Ident),
    /// An external template id, passed to the channel unchecked.
    External(StrLit),
}

impl TemplateRef {
    pub fn name(&self) -> &str {
        match self {
            TemplateRef::Named(i) => &i.name,
            TemplateRef::External(s) => &s.value,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            TemplateRef::Named(i) => i.span,
            TemplateRef::External(s) => s.span,
        }
    }
}

/// `key: <expr>` inside `with { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct WithEntry {
    pub key: Ident,
    pub value: Expr,
}

/// `<p>% <label> { <steps> }`
#[derive(Clone, Debug, PartialEq)]
pub struct SplitArm {
    pub percent: Percent,
    pub label: Ident,
    pub body: Block,
    pub span: Span,
}

// ---------------------------------------------------------------- expressions

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Number(f64),
    String(String),
    Bool(bool),
    Null,
    /// Whole seconds.
    Duration(u64),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
    List(Vec<Expr>),
    /// `profile.a.b`, `event.x`, `trigger.x`, `journey.entered_at`,
    /// `handle.opened`, or a bare name (a segment, or a channel inside
    /// `reachable(...)`).
    Path(Path),
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub root: PathRoot,
    pub root_span: Span,
    pub fields: Vec<Ident>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathRoot {
    Profile,
    Event,
    Trigger,
    Journey,
    /// A segment, a handle (with one field: the engagement) or a channel.
    Name(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    /// The operator as the user writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::NotIn => "not in",
            BinaryOp::Contains => "contains",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// Words that can never name a journey, segment, template, channel, handle,
/// split, split label or audience.
pub const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "contains", "true", "false", "null", "any", "if", "else", "wait",
    "send", "split", "repeat", "set", "emit", "add", "remove", "exit", "journey", "segment",
    "template", "channel", "policy", "event", "profile", "trigger",
];

pub fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}
