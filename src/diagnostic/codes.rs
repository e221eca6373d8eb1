//! The registry of every diagnostic code. Codes are stable: a code is never
//! renumbered or reused for another meaning. Errors are `E` + four digits
//! grouped by phase (01xx syntax, 02xx names, 03xx types, 04xx structure,
//! 05xx templates); warnings are `W` + four digits. docs/errors/ has one page
//! per code, and `journey explain CODE` prints it.

use crate::diagnostic::Severity;

/// A diagnostic code with its default severity and a one-line title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
}

macro_rules! codes {
    ($($name:ident = $id:literal, $sev:ident, $title:literal;)*) => {
        $(pub const $name: Code = Code { id: $id, severity: Severity::$sev, title: $title };)*
        /// Every code, in registry order.
        pub const ALL: &[Code] = &[$($name),*];
    };
}

codes! {
    // 00xx: the compiler itself
    UNRESOLVED = "E0001", Error, "internal error: a reference left unresolved";

    // 01xx: syntax
    SYNTAX = "E0101", Error, "syntax error";
    INVALID_DURATION = "E0102", Error, "invalid duration";
    INVALID_TIME_OF_DAY = "E0103", Error, "invalid time of day";
    INVALID_TIMESTAMP = "E0104", Error, "invalid timestamp";
    INVALID_PERCENT = "E0105", Error, "invalid percentage";
    INVALID_ESCAPE = "E0106", Error, "invalid escape in a string";
    ASSIGN_IN_CONDITION = "E0107", Error, "`=` used in a condition";
    RESERVED_WORD = "E0108", Error, "reserved word used as a name";
    INVALID_NUMBER = "E0109", Error, "invalid number";

    // 02xx: names
    DUPLICATE_NAME = "E0201", Error, "name declared twice";
    UNKNOWN_JOURNEY = "E0202", Error, "unknown journey";
    UNKNOWN_NAME = "E0203", Error, "unknown segment or handle";
    UNKNOWN_TEMPLATE = "E0204", Error, "unknown template";
    UNKNOWN_CHANNEL = "E0205", Error, "unknown channel";
    UNKNOWN_EVENT = "E0206", Error, "unknown event";
    UNKNOWN_FIELD = "E0207", Error, "unknown field";
    UNKNOWN_FUNCTION = "E0208", Error, "unknown function";
    DUPLICATE_POLICY = "E0209", Error, "more than one policy";
    UNKNOWN_ENGAGEMENT = "E0210", Error, "unknown engagement";
    HANDLE_NOT_BOUND = "E0211", Error, "handle not bound on every path";
    EVENT_OUT_OF_SCOPE = "E0212", Error, "`event` outside a `where` clause";
    TRIGGER_OUT_OF_SCOPE = "E0213", Error, "`trigger` where no trigger event exists";
    INVALID_PATH = "E0214", Error, "invalid path";
    ALLOW_NOT_A_WARNING = "E0215", Error, "`allow` names an error or an unknown code";
    PER_NOT_TRIGGER = "E0216", Error, "`per` names something other than a trigger field";

    // 03xx: types
    TYPE_MISMATCH = "E0301", Error, "type mismatch";
    WRONG_ARITY = "E0302", Error, "wrong number of arguments";
    NOT_A_CONDITION = "E0303", Error, "expected a condition";
    DATE_TRIGGER_TYPE = "E0304", Error, "date trigger on a value that is not a profile timestamp";

    // 04xx: structure
    MISSING_TRIGGER = "E0401", Error, "journey without a trigger";
    HEADER_AFTER_STEP = "E0402", Error, "header clause after a step";
    DUPLICATE_CLAUSE = "E0403", Error, "clause given twice";
    SPLIT_SUM = "E0404", Error, "split percentages do not sum to 100";
    DUPLICATE_LABEL = "E0405", Error, "split label used twice";
    HOLDOUT_WITHOUT_WINDOW = "E0406", Error, "holdout without a goal window";
    REPEAT_RANGE = "E0407", Error, "repeat count out of range";
    TEMPLATE_CHANNEL_MISMATCH = "E0408", Error, "template sent on the wrong channel";
    SEGMENT_CYCLE = "E0409", Error, "segments refer to each other in a cycle";
    CAP_LIMIT = "E0410", Error, "invalid cap";
    DUPLICATE_WEEKDAY = "E0411", Error, "weekday listed twice";
    DUPLICATE_KEY = "E0412", Error, "key given twice";
    DUPLICATE_WAIT_EVENT = "E0413", Error, "event named twice in a `wait for`";
    BEST_HOUR_WINDOW = "E0414", Error, "best-hour window over 24 hours";
    DUPLICATE_ATTRIBUTION = "E0420", Error, "more than one `attribution` item";
    ATTRIBUTION_MISSING = "E0421", Error, "`attribution` without a conversion or a window";

    // 05xx: templates
    TEMPLATE_SYNTAX = "E0501", Error, "template syntax error";
    TEMPLATE_UNKNOWN_VARIABLE = "E0502", Error, "unknown variable in a template";
    TEMPLATE_WITHOUT_BODY = "E0503", Error, "template without a body";
    HTML_NOT_EMAIL = "E0504", Error, "`html` on a template that is not an email";
    TEMPLATE_UNKNOWN_NAME = "E0505", Error, "unknown filter, test, function or statement in a template";
    TEMPLATE_LIMIT = "E0506", Error, "template over a render limit";
    TEMPLATE_CALL = "E0507", Error, "template filter or function given wrong arguments";

    // warnings
    UNREACHABLE_STEP = "W0001", Warning, "unreachable step";
    SENDS_NOTHING = "W0002", Warning, "journey sends nothing";
    CONSTANT_CONDITION = "W0003", Warning, "condition is constant";
    CAPPED_SEND = "W0004", Warning, "send always blocked by caps";
    EXIT_ON_TRIGGER = "W0005", Warning, "exit or goal on the trigger event";
    WAIT_UNTIL_WITHOUT_ZONE = "W0006", Warning, "`wait until` a time of day without a time zone";
    ADDRESS_UNDECLARED = "W0007", Warning, "channel address not in the profile schema";
    USELESS_ON_CAPPED = "W0008", Warning, "`on capped` on a transactional send";
    UNKNOWN_TIME_ZONE = "W0009", Warning, "unknown time zone";
    EMPTY_QUIET_HOURS = "W0010", Warning, "quiet hours that start and end at the same time";
    TIME_BASED_SEGMENT_TRIGGER = "W0011", Warning, "segment trigger on a segment that reads the clock";
}

/// Looks a code up by its id, case-insensitively (`e0404` works).
pub fn lookup(id: &str) -> Option<Code> {
    ALL.iter().copied().find(|c| c.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed_by_severity() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ALL {
            assert!(seen.insert(code.id), "{} registered twice", code.id);
            let prefix = match code.severity {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(code.id.starts_with(prefix), "{}", code.id);
        }
    }
}
