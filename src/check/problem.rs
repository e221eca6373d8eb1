//! Every problem the checker and the compiler report, as a typed value: one
//! variant per diagnostic code (E02xx–E05xx and the warnings), carrying the
//! facts of the case. The wording — message, label, related labels and help —
//! lives here and nowhere else: call sites construct a variant and
//! [`Checker::report`](super::Checker::report) turns it into a
//! [`Diagnostic`]. The long explanation of each code is its page in
//! docs/errors/ ([`super::explain`]); the registry of codes is
//! [`crate::diagnostic::codes`].
//!
//! A variant that takes a `suggestion` gets it from
//! [`did_you_mean`](crate::diagnostic::did_you_mean) at the call site, which
//! knows the candidates; the variant words the fallback when there is none.

use crate::diagnostic::Diagnostic;
use crate::diagnostic::codes::{self, Code};
use crate::source::Span;

use super::types::Type;

/// One problem, with where it is and what it is about.
#[derive(Clone, Debug)]
pub enum Problem {
    /// E0001: a reference the checker accepted but did not resolve.
    Unresolved { span: Span },
    /// E0201.
    DuplicateName {
        span: Span,
        first: Span,
        what: Duplicated,
    },
    /// E0203.
    UnknownName {
        span: Span,
        name: String,
        suggestion: Option<String>,
        kind: UnknownNameKind,
    },
    /// E0204.
    UnknownTemplate {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    /// E0205.
    UnknownChannel {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    /// E0206: only in a project that declares event schemas.
    UnknownEvent {
        span: Span,
        name: String,
        /// Written in quotes (`"Order Completed"`).
        quoted: bool,
        suggestion: Option<String>,
    },
    /// E0207.
    UnknownField { span: Span, kind: UnknownFieldKind },
    /// E0208.
    UnknownFunction {
        span: Span,
        name: String,
        suggestion: Option<String>,
        /// Every function's name, in the order the help lists them.
        functions: Vec<&'static str>,
    },
    /// E0209.
    DuplicatePolicy { span: Span, first: Span },
    /// E0420: a second `attribution` item.
    DuplicateAttribution { span: Span, first: Span },
    /// E0421: an `attribution` item without its `conversion` or `window`.
    AttributionMissing { span: Span, part: &'static str },
    /// E0210.
    UnknownEngagement {
        span: Span,
        name: String,
        suggestion: Option<String>,
        /// What a message can be asked about here, in the order listed.
        candidates: Vec<&'static str>,
    },
    /// E0211.
    HandleNotBound {
        span: Span,
        name: String,
        /// The first send that binds it, and its 1-based line.
        send: Option<(Span, usize)>,
        /// Bound on some paths to here, but not all.
        on_some_paths: bool,
    },
    /// E0212.
    EventOutOfScope { span: Span, in_journey: bool },
    /// E0213.
    TriggerOutOfScope { span: Span, why: TriggerScope },
    /// E0214.
    InvalidPath { span: Span, kind: InvalidPathKind },
    /// E0215: `code` is an error's, or no code at all.
    AllowNotAWarning {
        span: Span,
        code: String,
        /// The registered error it names, if any.
        error: Option<&'static str>,
        suggestion: Option<String>,
    },
    /// E0301.
    TypeMismatch { span: Span, kind: Mismatch },
    /// E0302.
    WrongArity {
        span: Span,
        func: String,
        /// `None`: one or more.
        arity: Option<usize>,
        given: usize,
        usage: &'static str,
    },
    /// E0303.
    NotACondition {
        span: Span,
        what: String,
        snippet: String,
        found: Type,
    },
    /// E0401.
    MissingTrigger { span: Span, journey: String },
    /// E0402.
    HeaderAfterStep {
        span: Span,
        clause: String,
        first_step: Span,
    },
    /// E0403.
    DuplicateClause {
        span: Span,
        first: Span,
        clause: Clause,
    },
    /// E0404.
    SplitSum { span: Span, arms: usize, sum: f64 },
    /// E0405.
    DuplicateLabel {
        span: Span,
        first: Span,
        label: String,
    },
    /// E0406.
    HoldoutWithoutWindow { span: Span, percent: f64 },
    /// E0407.
    RepeatRange { span: Span, count: i64 },
    /// E0408.
    TemplateChannelMismatch {
        span: Span,
        template: String,
        made_for: String,
        made_for_span: Span,
        sent_on: String,
    },
    /// E0409: `path` runs from `segment` back to it; `uses` are the
    /// references along it (where `from` uses `to`).
    SegmentCycle {
        span: Span,
        segment: String,
        path: Vec<String>,
        uses: Vec<(Span, String, String)>,
    },
    /// E0410.
    CapLimit { span: Span, limit: i64 },
    /// E0411.
    DuplicateWeekday {
        span: Span,
        first: Span,
        day: String,
    },
    /// E0413: `wait for A ... or A ...`.
    DuplicateWaitEvent {
        span: Span,
        first: Span,
        event: String,
    },
    /// E0216: `per` names something other than a `trigger.` field.
    PerNotTrigger { span: Span, snippet: String },
    /// E0414: `at best hour within` a window over 24 hours.
    BestHourWindow { span: Span, window: String },
    /// E0412.
    DuplicateKey {
        span: Span,
        first: Span,
        key: String,
    },
    /// E0501.
    TemplateSyntax {
        span: Span,
        template: String,
        part: &'static str,
        detail: String,
    },
    /// E0502.
    TemplateUnknownVariable {
        span: Span,
        template: String,
        kind: UnknownVariable,
    },
    /// E0503.
    TemplateWithoutBody { span: Span, template: String },
    /// E0504.
    HtmlNotEmail {
        span: Span,
        template: String,
        channel: String,
    },
    /// E0505.
    TemplateUnknownName {
        span: Span,
        template: String,
        part: &'static str,
        kind: TemplateName,
    },
    /// E0507.
    TemplateCall {
        span: Span,
        template: String,
        part: &'static str,
        kind: TemplateCall,
    },
    /// E0506.
    TemplateLimit {
        span: Span,
        template: String,
        part: &'static str,
        limit: RenderLimit,
    },
    /// W0001.
    UnreachableStep { span: Span, steps: usize },
    /// W0002.
    SendsNothing { span: Span, journey: String },
    /// W0003.
    ConstantCondition {
        span: Span,
        snippet: String,
        kind: Constant,
    },
    /// W0004 (the compiler's analysis).
    CappedSend {
        span: Span,
        cap: Span,
        cap_text: String,
    },
    /// W0005: `goal` when true, else `exit on`.
    ExitOnTrigger {
        span: Span,
        trigger: Span,
        event: String,
        goal: bool,
    },
    /// W0006: `minutes` after midnight.
    WaitUntilWithoutZone { span: Span, minutes: u16 },
    /// W0007.
    AddressUndeclared {
        span: Span,
        channel: String,
        field: String,
    },
    /// W0008.
    UselessOnCapped { span: Span },
    /// W0009.
    UnknownTimeZone {
        span: Span,
        zone: String,
        suggestion: Option<String>,
    },
    /// W0010: `minutes` after midnight.
    EmptyQuietHours { span: Span, minutes: u16 },
    /// E0304: a date trigger's path is not a `profile.` path, or the
    /// profile schema gives it another type (`found`; `None`: not a
    /// profile path at all).
    DateTriggerType {
        span: Span,
        path: String,
        found: Option<Type>,
    },
    /// W0011: `trigger enters|leaves <segment>` whose segment reads the
    /// clock (`reads`: `now()`, `days_since(...)`, ...).
    TimeBasedSegmentTrigger {
        span: Span,
        segment: String,
        reads: String,
        enters: bool,
    },
}

/// What E0201 found declared twice.
#[derive(Clone, Debug)]
pub enum Duplicated {
    /// A journey, segment, template or channel (`kind`).
    Declaration {
        kind: &'static str,
        name: String,
    },
    Profile,
    Event {
        name: String,
    },
    /// A field of a schema; `owner` names the schema.
    Field {
        name: String,
        owner: String,
    },
}

/// Which name E0203 could not find.
#[derive(Clone, Debug)]
pub enum UnknownNameKind {
    /// A bare name in an expression; `handles` when sends can be named there.
    Segment { handles: bool },
    /// The handle of `wait for <handle>.<engagement>`.
    Handle,
}

/// E0207's cases.
#[derive(Clone, Debug)]
pub enum UnknownFieldKind {
    /// A field an object of `owner` lacks; `declared` lists the fields it
    /// has (`None`: it has none).
    Missing {
        field: String,
        owner: String,
        suggestion: Option<String>,
        declared: Option<String>,
    },
    /// `profile.consent.<channel>` for an unknown channel.
    ConsentChannel {
        channel: String,
        suggestion: Option<String>,
    },
    /// A field of a value that has none (`prefix` is `found`).
    NotAnObject {
        prefix: String,
        found: Type,
        field: String,
    },
}

/// Where `trigger` has no value (E0213).
#[derive(Clone, Copy, Debug)]
pub enum TriggerScope {
    NotInJourney,
    OwnClause,
    NoEvent,
}

/// E0214's cases.
#[derive(Clone, Debug)]
pub enum InvalidPathKind {
    /// `journey.…` outside a journey (`text` as written).
    JourneyOutside { text: String },
    /// `journey.x` for anything but `entered_at`.
    NotOfJourney { text: String },
    /// `segment.x`.
    SegmentField { segment: String },
    /// A handle on its own.
    HandleAlone { handle: String },
    /// `handle.opened.x`.
    EngagementField { handle: String, engagement: String },
    /// `trigger enters|leaves` on something that is not a segment's name.
    NotASegment { text: String },
}

/// E0301's cases: the snippets are the user's text, the types what it is.
#[derive(Clone, Debug)]
pub enum Mismatch {
    /// A list item of another type than the first typed one.
    ListItems {
        first: String,
        first_type: Type,
        first_span: Span,
        item: String,
        item_type: Type,
    },
    /// `what` must be `expected`.
    Expected {
        what: String,
        snippet: String,
        expected: Type,
        found: Type,
    },
    /// A function's argument is none of what it accepts (`wanted`).
    Argument {
        func: String,
        wanted: &'static str,
        snippet: String,
        found: Type,
    },
    /// `coalesce` with arguments of different types.
    Coalesce {
        first: String,
        common: Type,
        this: String,
        found: Type,
        /// 0-based.
        index: usize,
    },
    /// `reachable(...)` of something that is not a channel name.
    ReachableArgument { snippet: String },
    /// `-x` of a non-number.
    Negate { snippet: String, found: Type },
    /// An operand of `not`, `and` or `or` that is not true/false.
    NotBool {
        op: &'static str,
        snippet: String,
        found: Type,
    },
    /// An operand of `*` or `/` that is not a number.
    NotNumber {
        op: &'static str,
        snippet: String,
        found: Type,
    },
    /// Two operands that do not go together; `label` says why.
    Operands {
        lhs: String,
        lhs_type: Type,
        rhs: String,
        rhs_type: Type,
        label: &'static str,
    },
    /// An operand of an ordering that has no order.
    Unordered {
        op: &'static str,
        snippet: String,
        found: Type,
    },
    /// The right of `in` / `not in` is not a list.
    NotAList {
        op: &'static str,
        snippet: String,
        found: Type,
        lhs: String,
    },
    /// The left of `contains` is neither a list nor text.
    NotAContainer { snippet: String, found: Type },
    /// `+` or `-` of operands that cannot be combined.
    Arithmetic {
        subtract: bool,
        lhs: String,
        lhs_type: Type,
        rhs: String,
        rhs_type: Type,
    },
    /// An operand of `+` or `-` that can never be added.
    NotAddable {
        op: &'static str,
        snippet: String,
        found: Type,
    },
    /// `wait until <expr>` of a non-timestamp.
    WaitUntil { snippet: String, found: Type },
    /// `set profile.<path> = <value>`.
    Set {
        path: String,
        target: Type,
        snippet: String,
        found: Type,
    },
    /// `emit <event> with { key: value }`.
    EmitField {
        key: String,
        event: String,
        expected: Type,
        snippet: String,
        found: Type,
    },
}

/// Which clause E0403 found twice.
#[derive(Clone, Debug)]
pub enum Clause {
    /// A journey's clause, by its keyword.
    Journey(&'static str),
    /// The policy's `quiet hours`.
    PolicyQuietHours,
    /// A part of the `attribution` item (`window`, `half life`, `conversion`).
    Attribution(&'static str),
}

/// E0502's cases.
#[derive(Clone, Debug)]
pub enum UnknownVariable {
    /// `profile.<first>` the profile schema lacks; `declared` lists its fields.
    ProfileField {
        path: String,
        suggestion: Option<String>,
        declared: String,
    },
    /// A nested `profile.…` field `prefix` lacks.
    NestedField {
        path: String,
        prefix: String,
        suggestion: Option<String>,
        declared: String,
    },
    /// A variable no send of the template gives.
    NotProvided {
        var: String,
        suggestion: Option<String>,
    },
    /// A send of the template that lacks a variable it uses.
    SendLacks { var: String, used: Span },
}

/// E0505's cases.
#[derive(Clone, Debug)]
pub enum TemplateName {
    /// `{% include %}` and the like.
    Forbidden { statement: String },
    /// An unknown filter, test or function (`kind`).
    Unknown {
        kind: &'static str,
        name: String,
        suggestion: Option<String>,
    },
}

/// E0507's cases: a filter or function of the dialect called wrongly.
#[derive(Clone, Debug)]
pub enum TemplateCall {
    /// The wrong number of arguments.
    Arity {
        /// `filter` or `function`.
        kind: &'static str,
        name: String,
        /// Fewest and most.
        args: (u8, u8),
        given: usize,
        usage: &'static str,
    },
    /// A `date("...")` pattern it cannot write.
    DatePattern { pattern: String, error: String },
    /// A `currency("...")` code that is not three capital letters.
    Currency { code: String },
}

/// E0506's cases, against the dialect's limits.
#[derive(Clone, Debug)]
pub enum RenderLimit {
    NestedLoops,
    /// `range(n)` over the limit.
    Range(u64),
    RepeatedText,
}

/// W0003's cases.
#[derive(Clone, Debug)]
pub enum Constant {
    /// Reads nothing that can change; `Some` when its value is known.
    Value(Option<bool>),
    /// Compares a value with itself; `always` is the result when it is set.
    SelfComparison { always: bool },
}

/// Help shared by E0212, E0213 and E0214 outside a journey.
const PROFILE_ONLY: &str =
    "segments and channel rules see only `profile`, other segments and functions";

impl Problem {
    /// Its code in the registry.
    pub fn code(&self) -> Code {
        use Problem as P;
        match self {
            P::Unresolved { .. } => codes::UNRESOLVED,
            P::DuplicateName { .. } => codes::DUPLICATE_NAME,
            P::UnknownName { .. } => codes::UNKNOWN_NAME,
            P::UnknownTemplate { .. } => codes::UNKNOWN_TEMPLATE,
            P::UnknownChannel { .. } => codes::UNKNOWN_CHANNEL,
            P::UnknownEvent { .. } => codes::UNKNOWN_EVENT,
            P::UnknownField { .. } => codes::UNKNOWN_FIELD,
            P::UnknownFunction { .. } => codes::UNKNOWN_FUNCTION,
            P::DuplicatePolicy { .. } => codes::DUPLICATE_POLICY,
            P::DuplicateAttribution { .. } => codes::DUPLICATE_ATTRIBUTION,
            P::AttributionMissing { .. } => codes::ATTRIBUTION_MISSING,
            P::UnknownEngagement { .. } => codes::UNKNOWN_ENGAGEMENT,
            P::HandleNotBound { .. } => codes::HANDLE_NOT_BOUND,
            P::EventOutOfScope { .. } => codes::EVENT_OUT_OF_SCOPE,
            P::TriggerOutOfScope { .. } => codes::TRIGGER_OUT_OF_SCOPE,
            P::InvalidPath { .. } => codes::INVALID_PATH,
            P::TypeMismatch { .. } => codes::TYPE_MISMATCH,
            P::WrongArity { .. } => codes::WRONG_ARITY,
            P::NotACondition { .. } => codes::NOT_A_CONDITION,
            P::MissingTrigger { .. } => codes::MISSING_TRIGGER,
            P::HeaderAfterStep { .. } => codes::HEADER_AFTER_STEP,
            P::DuplicateClause { .. } => codes::DUPLICATE_CLAUSE,
            P::SplitSum { .. } => codes::SPLIT_SUM,
            P::DuplicateLabel { .. } => codes::DUPLICATE_LABEL,
            P::HoldoutWithoutWindow { .. } => codes::HOLDOUT_WITHOUT_WINDOW,
            P::RepeatRange { .. } => codes::REPEAT_RANGE,
            P::TemplateChannelMismatch { .. } => codes::TEMPLATE_CHANNEL_MISMATCH,
            P::SegmentCycle { .. } => codes::SEGMENT_CYCLE,
            P::CapLimit { .. } => codes::CAP_LIMIT,
            P::DuplicateWeekday { .. } => codes::DUPLICATE_WEEKDAY,
            P::DuplicateKey { .. } => codes::DUPLICATE_KEY,
            P::DuplicateWaitEvent { .. } => codes::DUPLICATE_WAIT_EVENT,
            P::PerNotTrigger { .. } => codes::PER_NOT_TRIGGER,
            P::BestHourWindow { .. } => codes::BEST_HOUR_WINDOW,
            P::TemplateSyntax { .. } => codes::TEMPLATE_SYNTAX,
            P::TemplateUnknownVariable { .. } => codes::TEMPLATE_UNKNOWN_VARIABLE,
            P::TemplateWithoutBody { .. } => codes::TEMPLATE_WITHOUT_BODY,
            P::HtmlNotEmail { .. } => codes::HTML_NOT_EMAIL,
            P::TemplateUnknownName { .. } => codes::TEMPLATE_UNKNOWN_NAME,
            P::TemplateLimit { .. } => codes::TEMPLATE_LIMIT,
            P::TemplateCall { .. } => codes::TEMPLATE_CALL,
            P::AllowNotAWarning { .. } => codes::ALLOW_NOT_A_WARNING,
            P::UnreachableStep { .. } => codes::UNREACHABLE_STEP,
            P::SendsNothing { .. } => codes::SENDS_NOTHING,
            P::ConstantCondition { .. } => codes::CONSTANT_CONDITION,
            P::CappedSend { .. } => codes::CAPPED_SEND,
            P::ExitOnTrigger { .. } => codes::EXIT_ON_TRIGGER,
            P::WaitUntilWithoutZone { .. } => codes::WAIT_UNTIL_WITHOUT_ZONE,
            P::AddressUndeclared { .. } => codes::ADDRESS_UNDECLARED,
            P::UselessOnCapped { .. } => codes::USELESS_ON_CAPPED,
            P::UnknownTimeZone { .. } => codes::UNKNOWN_TIME_ZONE,
            P::EmptyQuietHours { .. } => codes::EMPTY_QUIET_HOURS,
            P::DateTriggerType { .. } => codes::DATE_TRIGGER_TYPE,
            P::TimeBasedSegmentTrigger { .. } => codes::TIME_BASED_SEGMENT_TRIGGER,
        }
    }

    /// The diagnostic as the user reads it.
    pub fn into_diagnostic(self) -> Diagnostic {
        let code = self.code();
        let d = |span: Span, message: String| Diagnostic::new(code, span, message);
        use Problem as P;
        match self {
            P::Unresolved { span } => d(
                span,
                "internal error: the checker accepted this reference without resolving it".to_string(),
            )
            .with_label("not resolved")
            .with_help(
                "no program was made; this is a bug in journey: please report it with this file",
            ),
            P::DuplicateName { span, first, what } => {
                let (message, help) = match what {
                    Duplicated::Declaration { kind, name } => (
                        format!("{kind} `{name}` is declared twice"),
                        format!(
                            "names are global across all files of a project: rename one of the two {kind}s"
                        ),
                    ),
                    Duplicated::Profile => (
                        "the profile schema is declared twice".to_string(),
                        "merge the two `profile { }` blocks into one".to_string(),
                    ),
                    Duplicated::Event { name } => (
                        format!("event `{name}` is declared twice"),
                        "merge the two schemas into one".to_string(),
                    ),
                    Duplicated::Field { name, owner } => (
                        format!("field `{name}` is declared twice in {owner}"),
                        "remove one of the two declarations".to_string(),
                    ),
                };
                d(span, message)
                    .with_label("declared again here")
                    .with_related(first, "first declared here")
                    .with_help(help)
            }
            P::UnknownName {
                span,
                name,
                suggestion,
                kind,
            } => {
                let (message, fallback) = match kind {
                    UnknownNameKind::Segment { handles: true } => (
                        format!("unknown segment or message `{name}`"),
                        format!(
                            "declare `segment {name} = ...`, or name a send with `as {name}` to ask about its message"
                        ),
                    ),
                    UnknownNameKind::Segment { handles: false } => (
                        format!("unknown segment `{name}`"),
                        format!("declare it with `segment {name} = ...`"),
                    ),
                    UnknownNameKind::Handle => (
                        format!("no send in this journey is called `{name}`"),
                        format!(
                            "name a send with `as {name}` to wait for what happens to its message"
                        ),
                    ),
                };
                d(span, message).with_help(suggestion.unwrap_or(fallback))
            }
            P::UnknownTemplate {
                span,
                name,
                suggestion,
            } => {
                let help = suggestion.unwrap_or_else(|| {
                    format!(
                        "declare it with `template {name} {{ ... }}`, or write an external template id in quotes"
                    )
                });
                d(span, format!("unknown template `{name}`")).with_help(help)
            }
            P::UnknownChannel {
                span,
                name,
                suggestion,
            } => {
                let help = suggestion.unwrap_or_else(|| {
                    format!(
                        "the channels are {} and those declared with `channel {name} {{ ... }}`",
                        crate::channels::listed()
                    )
                });
                d(span, format!("unknown channel `{name}`")).with_help(help)
            }
            P::UnknownEvent {
                span,
                name,
                quoted,
                suggestion,
            } => {
                let help = suggestion.unwrap_or_else(|| {
                    let written = if quoted {
                        format!("\"{name}\"")
                    } else {
                        name.clone()
                    };
                    format!(
                        "the project declares event schemas, so every event needs one: add `event {written} {{ ... }}`"
                    )
                });
                d(span, format!("unknown event `{name}`"))
                    .with_label("no schema for this event")
                    .with_help(help)
            }
            P::UnknownField { span, kind } => match kind {
                UnknownFieldKind::Missing {
                    field,
                    owner,
                    suggestion,
                    declared,
                } => {
                    let help = suggestion.unwrap_or_else(|| match declared {
                        None => format!("{owner} declares no fields"),
                        Some(list) => format!("{owner} declares {list}"),
                    });
                    d(span, format!("unknown field `{field}` in {owner}")).with_help(help)
                }
                UnknownFieldKind::ConsentChannel {
                    channel,
                    suggestion,
                } => {
                    let help = suggestion.unwrap_or_else(|| {
                        "consent is recorded per channel, e.g. `profile.consent.email`".into()
                    });
                    d(
                        span,
                        format!("unknown channel `{channel}` in `profile.consent`"),
                    )
                    .with_help(help)
                }
                UnknownFieldKind::NotAnObject {
                    prefix,
                    found,
                    field,
                } => d(
                    span,
                    format!(
                        "`{prefix}` is {} and has no field `{field}`",
                        found.describe()
                    ),
                )
                .with_help(format!("use `{prefix}` itself")),
            },
            P::UnknownFunction {
                span,
                name,
                suggestion,
                functions,
            } => {
                let help = suggestion.unwrap_or_else(|| {
                    let quoted: Vec<String> = functions.iter().map(|f| format!("`{f}`")).collect();
                    format!("the functions are {}", and_list(&quoted))
                });
                d(span, format!("unknown function `{name}`")).with_help(help)
            }
            P::DuplicatePolicy { span, first } => {
                d(span, "the project has more than one policy".into())
                    .with_label("second policy")
                    .with_related(first, "first policy")
                    .with_help("merge them into one `policy { }` block")
            }
            P::DuplicateAttribution { span, first } => d(
                span,
                "the project has more than one `attribution` item".into(),
            )
            .with_label("second attribution")
            .with_related(first, "first attribution")
            .with_help(
                "a project says once what a conversion is: keep one `attribution { }` item",
            ),
            P::AttributionMissing { span, part } => {
                let (message, help) = if part == "conversion" {
                    (
                        "`attribution` does not say what a conversion is",
                        "add the event that counts as one, e.g. `conversion \"Order Completed\" value event.total`",
                    )
                } else {
                    (
                        "`attribution` has no `window`",
                        "add how long before a conversion a message still counts, e.g. `window 7d`",
                    )
                };
                d(span, message.into())
                    .with_label(format!("no `{part}` here"))
                    .with_help(help)
            }
            P::UnknownEngagement {
                span,
                name,
                suggestion,
                candidates,
            } => {
                if name == "sent" {
                    return d(span, "`sent` cannot be waited for".into()).with_help(
                        "a send happens at once; wait for `delivered` or `opened` instead",
                    );
                }
                let help = suggestion.unwrap_or_else(|| {
                    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
                    format!("a message can be {}", list.join(", "))
                });
                d(span, format!("unknown engagement `{name}`")).with_help(help)
            }
            P::HandleNotBound {
                span,
                name,
                send,
                on_some_paths,
            } => {
                let d = d(span, format!("`{name}` may not have been sent at this point"))
                    .with_label("not sent on every path to here");
                match send {
                    None => d,
                    Some((send, line)) if on_some_paths => d
                        .with_related(send, "sent here, but only on some paths")
                        .with_help(format!(
                            "`{name}` is sent only on some paths (by the send on line {line}); send it on every branch before this point, or move this into the branch that sends it"
                        )),
                    Some((send, line)) => d.with_related(send, "sent here").with_help(format!(
                        "`{name}` is sent by the send on line {line}, which does not come before this point; a message can be asked about only after it is sent"
                    )),
                }
            }
            P::EventOutOfScope { span, in_journey } => {
                let help = if in_journey {
                    "`event` is the event being matched by a `where` clause; use `trigger.` for the event that started the journey"
                } else {
                    PROFILE_ONLY
                };
                d(span, "`event` can only be used in a `where` clause".into()).with_help(help)
            }
            P::TriggerOutOfScope { span, why } => {
                let (message, help) = match why {
                    TriggerScope::NotInJourney => {
                        ("`trigger` can only be used inside a journey", PROFILE_ONLY)
                    }
                    TriggerScope::OwnClause => (
                        "`trigger` cannot be used in a trigger's own condition",
                        "use `event.` for the event being matched",
                    ),
                    TriggerScope::NoEvent => (
                        "`trigger` has no value in this journey",
                        "its triggers are all silences, schedules, dates or segment changes (`trigger no`, `every`, `before`, `after`, `on`, `anniversary of`, `enters`, `leaves`): no event starts it",
                    ),
                };
                d(span, message.into()).with_help(help)
            }
            P::InvalidPath { span, kind } => {
                let (message, help) = match kind {
                    InvalidPathKind::JourneyOutside { text } => (
                        format!("`{text}` can only be used inside a journey"),
                        PROFILE_ONLY.to_string(),
                    ),
                    InvalidPathKind::NotOfJourney { text } => (
                        format!("`{text}` is not something a journey has"),
                        "the only property of `journey` is `journey.entered_at`, the time of entry"
                            .to_string(),
                    ),
                    InvalidPathKind::SegmentField { segment } => (
                        format!("segment `{segment}` has no fields"),
                        format!("`{segment}` is true or false: use it as a condition on its own"),
                    ),
                    InvalidPathKind::HandleAlone { handle } => (
                        format!("`{handle}` is a sent message, not a condition"),
                        format!(
                            "ask what happened to it, e.g. `{handle}.opened` or `{handle}.sent`"
                        ),
                    ),
                    InvalidPathKind::EngagementField { handle, engagement } => (
                        format!("`{handle}.{engagement}` has no fields"),
                        "it is true or false: use it as a condition on its own".to_string(),
                    ),
                    InvalidPathKind::NotASegment { text } => (
                        format!("`trigger enters` and `trigger leaves` take a segment's name, not `{text}`"),
                        "declare the condition as a segment, e.g. `segment vip = profile.lifetime_value >= 500`, and write `trigger enters vip`".to_string(),
                    ),
                };
                d(span, message).with_help(help)
            }
            P::TypeMismatch { span, kind } => mismatch(d, span, kind),
            P::WrongArity {
                span,
                func,
                arity,
                given,
                usage,
            } => {
                let wanted = match arity {
                    Some(n) => plural(n, "argument"),
                    None => "at least 1 argument".to_string(),
                };
                let given = match given {
                    0 => "none was".to_string(),
                    1 => "1 was".to_string(),
                    n => format!("{n} were"),
                };
                d(span, format!("`{func}` takes {wanted}, but {given} given"))
                    .with_help(format!("write `{usage}`"))
            }
            P::NotACondition {
                span,
                what,
                snippet,
                found,
            } => {
                let help = match found {
                    Type::Number => format!("compare it with something, e.g. `{snippet} > 0`"),
                    Type::String => {
                        format!("compare it with something, e.g. `{snippet} == \"gold\"`")
                    }
                    Type::List(_) => format!("test its contents, e.g. `{snippet} contains ...`"),
                    _ => "write a comparison, a segment name or a test such as `reminder.opened`"
                        .to_string(),
                };
                d(
                    span,
                    format!(
                        "{what} must be true or false, but `{snippet}` is {}",
                        found.describe()
                    ),
                )
                .with_label("not a condition")
                .with_help(help)
            }
            P::MissingTrigger { span, journey } => {
                d(span, format!("journey `{journey}` has no trigger"))
                    .with_label("nothing starts this journey")
                    .with_help(
                        "add a clause such as `trigger signed_up` or `trigger no app_opened for 30d`",
                    )
            }
            P::HeaderAfterStep {
                span,
                clause,
                first_step,
            } => d(span, format!("`{clause}` comes after the first step"))
                .with_related(first_step, "the first step")
                .with_help("move it above the first step: header clauses come first"),
            P::DuplicateClause {
                span,
                first,
                clause,
            } => {
                let (message, help) = match clause {
                    Clause::Journey(word) => (
                        format!("`{word}` is given twice"),
                        format!("a journey has at most one `{word}` clause"),
                    ),
                    Clause::PolicyQuietHours => (
                        "`quiet hours` is given twice in the policy".to_string(),
                        "keep one `quiet hours` clause".to_string(),
                    ),
                    Clause::Attribution(word) => (
                        format!("`{word}` is given twice in `attribution`"),
                        format!("`attribution` has one `{word}`: keep one"),
                    ),
                };
                d(span, message)
                    .with_label("given again here")
                    .with_related(first, "first given here")
                    .with_help(help)
            }
            P::SplitSum { span, arms, sum } => {
                let diff = 100.0 - sum;
                let help = if diff > 0.0 {
                    format!("add {}% to one of the arms", format_number(diff))
                } else {
                    format!("take {}% away from the arms", format_number(-diff))
                };
                d(
                    span,
                    format!(
                        "split percentages sum to {}%, not 100%",
                        format_number(sum)
                    ),
                )
                .with_label(format!("{arms} arms, {}% in all", format_number(sum)))
                .with_help(help)
            }
            P::DuplicateLabel { span, first, label } => {
                d(span, format!("split label `{label}` is used twice"))
                    .with_label("used again here")
                    .with_related(first, "first used here")
                    .with_help("give each arm its own label: reports count users per label")
            }
            P::HoldoutWithoutWindow { span, percent } => {
                d(span, format!("a holdout of {percent}% needs a goal window"))
                    .with_label("nothing to measure the control group against")
                    .with_help("add a goal with a window, e.g. `goal \"Order Completed\" within 7d`")
            }
            P::RepeatRange { span, count } => {
                d(span, format!("`repeat {count} times` is out of range"))
                    .with_label("must be 1 to 50")
                    .with_help("a block can be repeated 1 to 50 times")
            }
            P::TemplateChannelMismatch {
                span,
                template,
                made_for,
                made_for_span,
                sent_on,
            } => d(
                span,
                format!(
                    "template `{template}` is made for `{made_for}`, but this sends it by `{sent_on}`"
                ),
            )
            .with_label(format!("made for `{made_for}`"))
            .with_related(made_for_span, "its channel is declared here")
            .with_help(format!(
                "send it with `send {made_for} {template}`, or use a template made for `{sent_on}`"
            )),
            P::SegmentCycle {
                span,
                segment,
                path,
                uses,
            } => {
                let arrow = path.join(" → ");
                let mut d = d(
                    span,
                    format!("segment `{segment}` depends on itself: `{arrow}`"),
                )
                .with_help("a segment cannot use itself, directly or through other segments; write the shared part as a separate segment");
                for (span, from, to) in uses {
                    d = d.with_related(span, format!("`{from}` uses `{to}` here"));
                }
                d
            }
            P::CapLimit { span, limit } => {
                d(span, format!("a cap of {limit} messages allows nothing"))
                    .with_label("must be at least 1")
                    .with_help("to stop sending on a channel, remove its sends instead")
            }
            P::DuplicateWeekday { span, first, day } => {
                d(span, format!("`{day}` is listed twice"))
                    .with_label("listed again here")
                    .with_related(first, "first listed here")
                    .with_help("list each weekday once")
            }
            P::PerNotTrigger { span, snippet } => d(
                span,
                format!("`per {snippet}` does not name a field of the trigger event"),
            )
            .with_label("not a `trigger.` field")
            .with_help(
                "`per` keys instances by a field of the event that started them, as in `per trigger.order_id`",
            ),
            P::BestHourWindow { span, window } => d(
                span,
                format!("`at best hour within {window}` waits longer than a day"),
            )
            .with_label("more than 24h")
            .with_help(
                "a customer's best hour comes once a day: write `within 24h` or less (24h is the default)",
            ),
            P::DuplicateWaitEvent { span, first, event } => d(
                span,
                format!("`{event}` is named twice in this `wait for`"),
            )
            .with_label("named again here")
            .with_related(first, "first named here")
            .with_help(format!(
                "both run the same block: name `{event}` once and join the conditions, as in `wait for {event} where (a or b) within 1d`"
            )),
            P::DuplicateKey { span, first, key } => {
                d(span, format!("`{key}` is given twice in `with {{ }}`"))
                    .with_label("given again here")
                    .with_related(first, "first given here")
                    .with_help("keep one value per key")
            }
            P::TemplateSyntax {
                span,
                template,
                part,
                detail,
            } => d(
                span,
                format!("syntax error in the {part} of template `{template}`"),
            )
            .with_label(detail)
            .with_help("templates use Jinja syntax: `{{ profile.first_name }}`, `{% if trigger.total > 100 %}...{% endif %}`"),
            P::TemplateUnknownVariable {
                span,
                template,
                kind,
            } => match kind {
                UnknownVariable::ProfileField {
                    path,
                    suggestion,
                    declared,
                } => {
                    let help = suggestion
                        .map(|s| s.replacen('`', "`profile.", 1))
                        .unwrap_or_else(|| format!("the profile schema declares {declared}"));
                    d(
                        span,
                        format!("unknown variable `{path}` in template `{template}`"),
                    )
                    .with_label("not in the profile schema")
                    .with_help(help)
                }
                UnknownVariable::NestedField {
                    path,
                    prefix,
                    suggestion,
                    declared,
                } => {
                    let help =
                        suggestion.unwrap_or_else(|| format!("`{prefix}` declares {declared}"));
                    d(
                        span,
                        format!("unknown variable `{path}` in template `{template}`"),
                    )
                    .with_label("not in the profile schema")
                    .with_help(help)
                }
                UnknownVariable::NotProvided { var, suggestion } => {
                    let help = suggestion.unwrap_or_else(|| {
                        format!(
                            "a template reads `profile.`, `trigger.`, `journey.`, `message_id` and the keys its sends give with `with {{ {var}: ... }}`; no send of `{template}` gives `{var}`"
                        )
                    });
                    d(
                        span,
                        format!("unknown variable `{var}` in template `{template}`"),
                    )
                    .with_label("not provided by any send")
                    .with_help(help)
                }
                UnknownVariable::SendLacks { var, used } => d(
                    span,
                    format!(
                        "this send of `{template}` does not give `{var}`, which the template uses"
                    ),
                )
                .with_label(format!("no `{var}` here"))
                .with_related(used, "used here")
                .with_help(format!("add `with {{ {var}: ... }}` to this send")),
            },
            P::TemplateWithoutBody { span, template } => {
                d(span, format!("template `{template}` has no body"))
                    .with_label("no `body`")
                    .with_help("add the message text, e.g. `body \"Hi {{ profile.first_name }}\"`")
            }
            P::HtmlNotEmail {
                span,
                template,
                channel,
            } => d(
                span,
                format!("template `{template}` has an `html` part but is sent on `{channel}`"),
            )
            .with_label("only an email has an HTML part")
            .with_help("remove `html`, or send this template on `channel email`"),
            P::TemplateUnknownName {
                span,
                template,
                part,
                kind,
            } => {
                let (message, help) = match kind {
                    TemplateName::Forbidden { statement } => (
                        format!(
                            "`{{% {statement} %}}` is not allowed, in the {part} of template `{template}`"
                        ),
                        "a template stands alone: no `include`, `extends`, `import`, `block` or `macro`".to_string(),
                    ),
                    TemplateName::Unknown {
                        kind,
                        name,
                        suggestion,
                    } => (
                        format!("unknown {kind} `{name}` in the {part} of template `{template}`"),
                        suggestion.unwrap_or_else(|| {
                            "templates have the filters, tests and functions listed in docs/guide.md (§6)".into()
                        }),
                    ),
                };
                d(span, message)
                    .with_label("not in the template language")
                    .with_help(help)
            }
            P::TemplateCall {
                span,
                template,
                part,
                kind,
            } => {
                let (message, label, help) = match kind {
                    TemplateCall::Arity {
                        kind,
                        name,
                        args: (min, max),
                        given,
                        usage,
                    } => {
                        let wanted = match (min, max) {
                            (0, 0) => "no arguments".to_string(),
                            (a, b) if a == b => plural(usize::from(a), "argument"),
                            (0, b) => format!("at most {}", plural(usize::from(b), "argument")),
                            (a, b) => format!("{a} to {b} arguments"),
                        };
                        let given = match given {
                            0 => "none".to_string(),
                            n => n.to_string(),
                        };
                        (
                            format!(
                                "the {kind} `{name}` takes {wanted}, but has {given}, in the {part} of template `{template}`"
                            ),
                            "wrong number of arguments".to_string(),
                            if max == 0 {
                                format!("write `| {usage}`, without parentheses")
                            } else {
                                format!("write `{usage}`")
                            },
                        )
                    }
                    TemplateCall::DatePattern { pattern, error } => (
                        format!(
                            "`date(\"{pattern}\")` cannot write a date, in the {part} of template `{template}`: {error}"
                        ),
                        "not a date pattern".to_string(),
                        "use strftime patterns such as `%d %B %Y` (20 March 2026) or `%A %H:%M` (Friday 09:00)".to_string(),
                    ),
                    TemplateCall::Currency { code } => (
                        format!(
                            "`currency(\"{code}\")` needs a currency code, in the {part} of template `{template}`"
                        ),
                        "not a currency code".to_string(),
                        "write a three-letter ISO 4217 code in capitals, such as `currency(\"EUR\")`".to_string(),
                    ),
                };
                d(span, message).with_label(label).with_help(help)
            }
            P::AllowNotAWarning {
                span,
                code,
                error,
                suggestion,
            } => match error {
                Some(title) => d(
                    span,
                    format!("`allow {code}` names an error ({title}), and errors cannot be silenced"),
                )
                .with_label("an error, not a warning")
                .with_help("fix what the error says; `allow` silences warnings only (codes starting with `W`)"),
                None => d(span, format!("`allow {code}`: there is no diagnostic `{code}`"))
                    .with_label("not a diagnostic code")
                    .with_help(suggestion.unwrap_or_else(|| {
                        "`allow` takes warning codes such as `W0005`; `journey explain` lists them".into()
                    })),
            },
            P::TemplateLimit {
                span,
                template,
                part,
                limit,
            } => {
                use crate::dialect;
                let (message, help) = match limit {
                    RenderLimit::NestedLoops => (
                        format!(
                            "these nested loops run more than {} times",
                            dialect::RENDER_FUEL
                        ),
                        format!("a render may run at most {} steps", dialect::RENDER_FUEL),
                    ),
                    RenderLimit::Range(n) => (
                        format!("`range` makes {n} numbers"),
                        format!(
                            "a template may loop over at most {} (`range({})`)",
                            dialect::MAX_RANGE,
                            dialect::MAX_RANGE
                        ),
                    ),
                    RenderLimit::RepeatedText => (
                        "this repeated text is longer than a message may be".to_string(),
                        format!(
                            "a rendered part may hold {} KiB",
                            dialect::MAX_PART_BYTES / 1024
                        ),
                    ),
                };
                d(
                    span,
                    format!("the {part} of template `{template}` cannot render: {message}"),
                )
                .with_label("over the render limit")
                .with_help(help)
            }
            P::UnreachableStep { span, steps } => {
                let message = if steps == 1 {
                    "this step can never run"
                } else {
                    "these steps can never run"
                };
                d(span, message.into())
                    .with_label("unreachable")
                    .with_help("every path to here ends with `exit` first: remove what comes after it, or the `exit`")
            }
            P::SendsNothing { span, journey } => {
                d(span, format!("journey `{journey}` sends nothing"))
                    .with_label("no `send` step")
                    .with_help(
                        "add a `send` step, unless the journey only updates profiles, audiences or events",
                    )
            }
            P::ConstantCondition {
                span,
                snippet,
                kind,
            } => match kind {
                Constant::Value(value) => {
                    let label = match value {
                        Some(b) => format!("always `{b}`"),
                        None => "always the same".to_string(),
                    };
                    d(span, format!("the condition `{snippet}` never changes"))
                        .with_label(label)
                        .with_help(
                            "test something about the customer, such as a `profile.` field or a segment",
                        )
                }
                Constant::SelfComparison { always } => {
                    d(span, format!("`{snippet}` compares a value with itself"))
                        .with_label(format!("always `{always}` when the value is set"))
                        .with_help("one side is probably meant to be another field or a value")
                }
            },
            P::CappedSend {
                span,
                cap,
                cap_text,
            } => d(span, format!("this send is always blocked by `{cap_text}`"))
                .with_label("capped on every path to it")
                .with_related(cap, "the cap")
                .with_help(
                    "the sends before it on every path use up the cap's window; wait longer between sends, \
                     raise the cap or remove this send",
                ),
            P::ExitOnTrigger {
                span,
                trigger,
                event,
                goal,
            } => {
                let (message, help) = if goal {
                    (
                        format!("the goal `{event}` is also the event that starts this journey"),
                        "the next such event converts the instance instead of starting a new one; pick the event that shows success, or add a `where` clause",
                    )
                } else {
                    (
                        format!("`exit on {event}` exits on the event that starts this journey"),
                        "the next such event ends the instance; add a `where` clause that tells the events apart",
                    )
                };
                d(span, message)
                    .with_related(trigger, "the trigger")
                    .with_help(help)
            }
            P::WaitUntilWithoutZone { span, minutes } => {
                let hhmm = format_time(minutes);
                d(
                    span,
                    format!("`wait until {hhmm}` has no time zone to read {hhmm} in"),
                )
                .with_label("read in UTC")
                .with_help("add `timezone: string?` to the profile schema, or `quiet hours ... in <zone>` to the journey or the policy")
            }
            P::AddressUndeclared {
                span,
                channel,
                field,
            } => d(
                span,
                format!(
                    "`{channel}` sends to `profile.{field}`, which the profile schema does not declare"
                ),
            )
            .with_label("nobody is reachable here")
            .with_help(format!(
                "add `{field}: string?` to `profile {{ }}`, or declare `channel {channel} {{ address ... }}`"
            )),
            P::UselessOnCapped { span } => d(
                span,
                "`on capped` has no effect on a transactional send".into(),
            )
            .with_label("never capped")
            .with_help("transactional sends are exempt from caps: remove `on capped ...`"),
            P::UnknownTimeZone {
                span,
                zone,
                suggestion,
            } => {
                let help = suggestion.unwrap_or_else(|| {
                    "use an IANA zone name such as `Europe/Paris` or `America/New_York`".to_string()
                });
                d(span, format!("unknown time zone `{zone}`"))
                    .with_label("treated as UTC")
                    .with_help(help)
            }
            P::EmptyQuietHours { span, minutes } => {
                let hhmm = format_time(minutes);
                d(
                    span,
                    format!("quiet hours from {hhmm} to {hhmm} cover no time"),
                )
                .with_label("starts and ends at the same time")
                .with_help("give the end of the quiet window, e.g. `quiet hours 21:00 to 08:00`")
            }
            P::DateTriggerType { span, path, found } => match found {
                None => d(
                    span,
                    format!("a date trigger reads a date in the profile, and `{path}` is not a `profile.` field"),
                )
                .with_label("not in the profile")
                .with_help(
                    "name a profile field holding a date, e.g. `trigger 30d before profile.renewal_date`",
                ),
                Some(found) => d(
                    span,
                    format!(
                        "`{path}` is {}, and a date trigger needs a timestamp",
                        found.describe()
                    ),
                )
                .with_label("not a timestamp")
                .with_help(format!(
                    "declare it `timestamp` in the profile schema (`{}: timestamp?`); its values are RFC 3339 times or dates such as \"2026-03-20\"",
                    path.rsplit('.').next().unwrap_or(&path)
                )),
            },
            P::TimeBasedSegmentTrigger {
                span,
                segment,
                reads,
                enters,
            } => d(
                span,
                format!(
                    "segment `{segment}` reads `{reads}`: time passing alone will not make customers {} it",
                    if enters { "enter" } else { "leave" }
                ),
            )
            .with_label("checked only when the profile changes")
            .with_help(
                "segments are evaluated when an identify or a `set` changes the profile; for entry at a moment, use a date trigger such as `trigger 30d after profile.signed_up_at`",
            ),
        }
    }
}

impl From<Problem> for Diagnostic {
    fn from(p: Problem) -> Diagnostic {
        p.into_diagnostic()
    }
}

/// E0301's wording.
fn mismatch(d: impl Fn(Span, String) -> Diagnostic, span: Span, kind: Mismatch) -> Diagnostic {
    match kind {
        Mismatch::ListItems {
            first,
            first_type,
            first_span,
            item,
            item_type,
        } => d(
            span,
            format!(
                "a list holds one kind of value, but `{first}` is {} and `{item}` is {}",
                first_type.describe(),
                item_type.describe()
            ),
        )
        .with_related(first_span, first_type.describe()),
        Mismatch::Expected {
            what,
            snippet,
            expected,
            found,
        } => d(
            span,
            format!(
                "{what} must be {}, but `{snippet}` is {}",
                expected.describe(),
                found.describe()
            ),
        )
        .with_label(format!("expected {}", expected.describe())),
        Mismatch::Argument {
            func,
            wanted,
            snippet,
            found,
        } => d(
            span,
            format!(
                "`{func}` needs {wanted}, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label(format!("expected {wanted}")),
        Mismatch::Coalesce {
            first,
            common,
            this,
            found,
            index,
        } => d(
            span,
            format!(
                "`coalesce` needs values of one kind, but `{first}` is {} and `{this}` is {}",
                common.describe(),
                found.describe()
            ),
        )
        .with_label(format!("argument {} differs", index + 1))
        .with_help("give every argument the same kind of value"),
        Mismatch::ReachableArgument { snippet } => d(
            span,
            format!("`reachable` needs a channel name, but got `{snippet}`"),
        )
        .with_help("write e.g. `reachable(sms)`"),
        Mismatch::Negate { snippet, found } => d(
            span,
            format!(
                "`-` needs a number or a duration, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("cannot be negated"),
        Mismatch::NotBool { op, snippet, found } => d(
            span,
            format!(
                "`{op}` needs true/false, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("not a condition")
        .with_help("compare it with something first, e.g. `x > 0` or `x == \"gold\"`"),
        Mismatch::NotNumber { op, snippet, found } => d(
            span,
            format!(
                "`{op}` needs numbers, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("not a number"),
        Mismatch::Operands {
            lhs,
            lhs_type,
            rhs,
            rhs_type,
            label,
        } => {
            let d = d(
                span,
                format!(
                    "`{lhs}` is {}, but `{rhs}` is {}",
                    lhs_type.describe(),
                    rhs_type.describe()
                ),
            )
            .with_label(label);
            match operand_help(&lhs_type, &rhs_type) {
                Some(help) => d.with_help(help),
                None => d,
            }
        }
        Mismatch::Unordered { op, snippet, found } => d(
            span,
            format!(
                "`{op}` needs numbers, text, timestamps or durations, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("has no order")
        .with_help("use `==` or `!=` to compare it"),
        Mismatch::NotAList {
            op,
            snippet,
            found,
            lhs,
        } => {
            let d = d(
                span,
                format!(
                    "`{op}` needs a list on its right, but `{snippet}` is {}",
                    found.describe()
                ),
            )
            .with_label("not a list");
            if matches!(found, Type::String) {
                d.with_help(format!(
                    "to look for text inside text, write `{snippet} contains {lhs}`"
                ))
            } else {
                d.with_help("write a list such as `[\"FR\", \"DE\"]`")
            }
        }
        Mismatch::NotAContainer { snippet, found } => d(
            span,
            format!(
                "`contains` needs a list or text on its left, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("not a list or text"),
        Mismatch::Arithmetic {
            subtract,
            lhs,
            lhs_type,
            rhs,
            rhs_type,
        } => {
            let verb = if subtract { "subtract" } else { "add" };
            let d = d(
                span,
                format!(
                    "cannot {verb} `{rhs}` ({}) {} `{lhs}` ({})",
                    rhs_type.describe(),
                    if subtract { "from" } else { "to" },
                    lhs_type.describe()
                ),
            );
            if let Some(help) = operand_help(&lhs_type, &rhs_type) {
                d.with_help(help)
            } else if subtract
                && matches!((&lhs_type, &rhs_type), (Type::Duration, Type::Timestamp))
            {
                d.with_help("write the timestamp first: `timestamp - duration`")
            } else {
                d
            }
        }
        Mismatch::NotAddable { op, snippet, found } => d(
            span,
            format!(
                "`{op}` works on numbers, timestamps and durations, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label(format!("cannot be used with `{op}`")),
        Mismatch::WaitUntil { snippet, found } => d(
            span,
            format!(
                "`wait until` needs a timestamp, but `{snippet}` is {}",
                found.describe()
            ),
        )
        .with_label("not a timestamp")
        .with_help("for a time of day write e.g. `wait until 09:00`; for a delay write `wait 2d`"),
        Mismatch::Set {
            path,
            target,
            snippet,
            found,
        } => d(
            span,
            format!(
                "`profile.{path}` is {}, but `{snippet}` is {}",
                target.describe(),
                found.describe()
            ),
        )
        .with_label(format!("expected {}", target.describe())),
        Mismatch::EmitField {
            key,
            event,
            expected,
            snippet,
            found,
        } => d(
            span,
            format!(
                "`{key}` of event `{event}` is {}, but `{snippet}` is {}",
                expected.describe(),
                found.describe()
            ),
        )
        .with_label(format!("expected {}", expected.describe())),
    }
}

/// How to fix two operands of types that do not go together, when it is
/// clear.
fn operand_help(lt: &Type, rt: &Type) -> Option<&'static str> {
    match (lt, rt) {
        (Type::Number, Type::String) | (Type::String, Type::Number) => {
            Some("write numbers without quotes, and text in quotes")
        }
        (Type::Duration | Type::Timestamp, Type::Number)
        | (Type::Number, Type::Duration | Type::Timestamp) => {
            Some("give the number a unit, e.g. `2d` or `12h`")
        }
        (Type::Timestamp, Type::Duration) | (Type::Duration, Type::Timestamp) => {
            Some("to compare with a time in the past, write e.g. `now() - 7d`")
        }
        (Type::Bool, Type::String) | (Type::String, Type::Bool) => {
            Some("write `true` and `false` without quotes")
        }
        _ => None,
    }
}

/// E0202: a command named a journey the program lacks. Raised by the CLI,
/// which has no source span to point at, so it is not a [`Problem`].
#[derive(Clone, Debug)]
pub struct UnknownJourney {
    pub name: String,
    pub suggestion: Option<String>,
    /// The journeys there are, in program order.
    pub journeys: Vec<String>,
}

impl UnknownJourney {
    pub const CODE: Code = codes::UNKNOWN_JOURNEY;

    pub fn message(&self) -> String {
        format!("unknown journey `{}`", self.name)
    }

    pub fn help(&self) -> String {
        self.suggestion
            .clone()
            .unwrap_or_else(|| format!("the journeys are: {}", self.journeys.join(", ")))
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: usize, word: &str) -> String {
    match n {
        0 => format!("no {word}s"),
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

/// `90`, `12.5`, `33.33` — at most two decimals, no trailing zeros.
fn format_number(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `HH:MM` from minutes after midnight.
fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    /// One value of every variant.
    fn samples() -> Vec<Problem> {
        let s = Span::new(FileId::default(), 0, 1);
        let name = || "x".to_string();
        let ty = || Type::Number;
        vec![
            Problem::Unresolved { span: s },
            Problem::DuplicateName {
                span: s,
                first: s,
                what: Duplicated::Profile,
            },
            Problem::UnknownName {
                span: s,
                name: name(),
                suggestion: None,
                kind: UnknownNameKind::Handle,
            },
            Problem::UnknownTemplate {
                span: s,
                name: name(),
                suggestion: None,
            },
            Problem::UnknownChannel {
                span: s,
                name: name(),
                suggestion: None,
            },
            Problem::UnknownEvent {
                span: s,
                name: name(),
                quoted: true,
                suggestion: None,
            },
            Problem::UnknownField {
                span: s,
                kind: UnknownFieldKind::ConsentChannel {
                    channel: name(),
                    suggestion: None,
                },
            },
            Problem::UnknownFunction {
                span: s,
                name: name(),
                suggestion: None,
                functions: vec!["now", "len"],
            },
            Problem::DuplicatePolicy { span: s, first: s },
            Problem::DuplicateAttribution { span: s, first: s },
            Problem::AttributionMissing {
                span: s,
                part: "window",
            },
            Problem::UnknownEngagement {
                span: s,
                name: name(),
                suggestion: None,
                candidates: vec!["opened"],
            },
            Problem::HandleNotBound {
                span: s,
                name: name(),
                send: Some((s, 3)),
                on_some_paths: true,
            },
            Problem::EventOutOfScope {
                span: s,
                in_journey: true,
            },
            Problem::TriggerOutOfScope {
                span: s,
                why: TriggerScope::NoEvent,
            },
            Problem::InvalidPath {
                span: s,
                kind: InvalidPathKind::HandleAlone { handle: name() },
            },
            Problem::TypeMismatch {
                span: s,
                kind: Mismatch::WaitUntil {
                    snippet: name(),
                    found: ty(),
                },
            },
            Problem::WrongArity {
                span: s,
                func: name(),
                arity: Some(1),
                given: 2,
                usage: "x(y)",
            },
            Problem::NotACondition {
                span: s,
                what: name(),
                snippet: name(),
                found: ty(),
            },
            Problem::MissingTrigger {
                span: s,
                journey: name(),
            },
            Problem::HeaderAfterStep {
                span: s,
                clause: name(),
                first_step: s,
            },
            Problem::DuplicateClause {
                span: s,
                first: s,
                clause: Clause::Journey("goal"),
            },
            Problem::SplitSum {
                span: s,
                arms: 2,
                sum: 90.0,
            },
            Problem::DuplicateLabel {
                span: s,
                first: s,
                label: name(),
            },
            Problem::HoldoutWithoutWindow {
                span: s,
                percent: 10.0,
            },
            Problem::RepeatRange { span: s, count: 0 },
            Problem::TemplateChannelMismatch {
                span: s,
                template: name(),
                made_for: name(),
                made_for_span: s,
                sent_on: name(),
            },
            Problem::SegmentCycle {
                span: s,
                segment: name(),
                path: vec![name(), name()],
                uses: vec![(s, name(), name())],
            },
            Problem::CapLimit { span: s, limit: 0 },
            Problem::DuplicateWeekday {
                span: s,
                first: s,
                day: name(),
            },
            Problem::DuplicateKey {
                span: s,
                first: s,
                key: name(),
            },
            Problem::DuplicateWaitEvent {
                span: s,
                first: s,
                event: name(),
            },
            Problem::PerNotTrigger {
                span: s,
                snippet: name(),
            },
            Problem::BestHourWindow {
                span: s,
                window: name(),
            },
            Problem::TemplateSyntax {
                span: s,
                template: name(),
                part: "body",
                detail: name(),
            },
            Problem::TemplateUnknownVariable {
                span: s,
                template: name(),
                kind: UnknownVariable::SendLacks {
                    var: name(),
                    used: s,
                },
            },
            Problem::TemplateWithoutBody {
                span: s,
                template: name(),
            },
            Problem::HtmlNotEmail {
                span: s,
                template: name(),
                channel: name(),
            },
            Problem::TemplateUnknownName {
                span: s,
                template: name(),
                part: "body",
                kind: TemplateName::Forbidden {
                    statement: "include".into(),
                },
            },
            Problem::TemplateLimit {
                span: s,
                template: name(),
                part: "body",
                limit: RenderLimit::Range(1 << 20),
            },
            Problem::UnreachableStep { span: s, steps: 2 },
            Problem::SendsNothing {
                span: s,
                journey: name(),
            },
            Problem::ConstantCondition {
                span: s,
                snippet: name(),
                kind: Constant::Value(Some(true)),
            },
            Problem::CappedSend {
                span: s,
                cap: s,
                cap_text: name(),
            },
            Problem::ExitOnTrigger {
                span: s,
                trigger: s,
                event: name(),
                goal: false,
            },
            Problem::WaitUntilWithoutZone {
                span: s,
                minutes: 9 * 60,
            },
            Problem::AddressUndeclared {
                span: s,
                channel: name(),
                field: name(),
            },
            Problem::UselessOnCapped { span: s },
            Problem::UnknownTimeZone {
                span: s,
                zone: name(),
                suggestion: None,
            },
            Problem::EmptyQuietHours {
                span: s,
                minutes: 0,
            },
            Problem::DateTriggerType {
                span: s,
                path: name(),
                found: Some(Type::String),
            },
            Problem::TimeBasedSegmentTrigger {
                span: s,
                segment: name(),
                reads: "now()".into(),
                enters: true,
            },
            Problem::AllowNotAWarning {
                span: s,
                code: "E0404".into(),
                error: Some("split percentages do not sum to 100"),
                suggestion: None,
            },
            Problem::TemplateCall {
                span: s,
                template: name(),
                part: "body",
                kind: TemplateCall::Arity {
                    kind: "filter",
                    name: "upper".into(),
                    args: (0, 0),
                    given: 1,
                    usage: "upper",
                },
            },
        ]
    }

    #[test]
    fn every_code_of_check_and_compile_has_one_variant() {
        let mut from_variants = std::collections::BTreeSet::new();
        for p in samples() {
            let code = p.code();
            assert!(
                from_variants.insert(code.id),
                "{} has two variants",
                code.id
            );
            let d = p.into_diagnostic();
            assert_eq!(d.code, code);
            assert_eq!(d.severity, code.severity);
            assert!(
                !d.message.is_empty() && !d.message.ends_with('.'),
                "{}",
                code.id
            );
            assert!(d.help.is_some(), "{} has no help", code.id);
        }
        let expected: std::collections::BTreeSet<&str> = codes::ALL
            .iter()
            .map(|c| c.id)
            .filter(|id| !id.starts_with("E01") && *id != UnknownJourney::CODE.id)
            .collect();
        assert_eq!(from_variants, expected);
    }

    #[test]
    fn fallback_help_is_worded_here() {
        let s = Span::new(FileId::default(), 0, 1);
        let d = Problem::UnknownChannel {
            span: s,
            name: "fax".into(),
            suggestion: None,
        }
        .into_diagnostic();
        assert_eq!(
            d.help.as_deref(),
            Some(
                "the channels are `email`, `sms`, `push`, `in_app`, `whatsapp`, `webhook` and those declared with `channel fax { ... }`"
            )
        );
        let d = Problem::UnknownFunction {
            span: s,
            name: "nope".into(),
            suggestion: None,
            functions: vec!["now", "lower", "reachable"],
        }
        .into_diagnostic();
        assert_eq!(
            d.help.as_deref(),
            Some("the functions are `now`, `lower` and `reachable`")
        );
    }
}
