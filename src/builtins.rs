//! Names the language defines itself: what can happen to a sent message
//! (its engagements) and the functions of expressions. The checker
//! resolves a name written in a journey to one of these values (kept in
//! [`crate::check::Model`] by the name's span); compile and the runtime use
//! the value and never read the name again. Add an engagement or a function
//! here, and the checker's suggestions, compile and the docs' lists follow.

use serde::{Deserialize, Serialize};

/// `send ... at best hour`: the window when none is written, and the
/// longest one may write (LANGUAGE.md §4.4): a best hour comes once a day.
pub const BEST_HOUR_WINDOW_MS: i64 = 24 * 3_600_000;
/// How far back a customer's engagements count toward the best hour.
pub const BEST_HOUR_HISTORY_MS: i64 = 90 * 24 * 3_600_000;

impl Engagement {
    /// Whether the engagement shows the customer reading: `opened` and
    /// `clicked` make the best hour of `send ... at best hour`.
    pub fn engaged(self) -> bool {
        matches!(self, Engagement::Opened | Engagement::Clicked)
    }
}

/// Something that happened to a sent message, reported as the track event
/// `message.<name>` (LANGUAGE.md §6.1): `h.opened`, `wait for h.clicked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engagement {
    Delivered,
    Opened,
    Clicked,
    Bounced,
    Failed,
}

impl Engagement {
    pub const ALL: [Engagement; 5] = [
        Engagement::Delivered,
        Engagement::Opened,
        Engagement::Clicked,
        Engagement::Bounced,
        Engagement::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Engagement::Delivered => "delivered",
            Engagement::Opened => "opened",
            Engagement::Clicked => "clicked",
            Engagement::Bounced => "bounced",
            Engagement::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Engagement> {
        Engagement::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Every engagement's name, in declaration order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Engagement::ALL.into_iter().map(Engagement::name)
    }

    /// Bit of this engagement in an instance's per-handle engagement mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What `<handle>.<field>` reads: whether the send went out, or whether
/// one of its engagements happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleField {
    Sent,
    Engaged(Engagement),
}

impl HandleField {
    /// The field a condition may read after a handle: `sent` or an
    /// engagement.
    pub fn from_name(name: &str) -> Option<HandleField> {
        match name {
            "sent" => Some(HandleField::Sent),
            _ => Engagement::from_name(name).map(HandleField::Engaged),
        }
    }
}

/// A function of the expression language (LANGUAGE.md §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Now,
    Lower,
    Upper,
    Len,
    Coalesce,
    DaysSince,
    HoursSince,
    Reachable,
}

impl Function {
    pub const ALL: [Function; 8] = [
        Function::Now,
        Function::Lower,
        Function::Upper,
        Function::Len,
        Function::Coalesce,
        Function::DaysSince,
        Function::HoursSince,
        Function::Reachable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Now => "now",
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Len => "len",
            Function::Coalesce => "coalesce",
            Function::DaysSince => "days_since",
            Function::HoursSince => "hours_since",
            Function::Reachable => "reachable",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How many arguments it takes; `None`: one or more.
    pub fn arity(self) -> Option<usize> {
        match self {
            Function::Now => Some(0),
            Function::Coalesce => None,
            _ => Some(1),
        }
    }

    /// How a call is written, for messages.
    pub fn usage(self) -> &'static str {
        match self {
            Function::Now => "now()",
            Function::Lower => "lower(text)",
            Function::Upper => "upper(text)",
            Function::Len => "len(list or text)",
            Function::Coalesce => "coalesce(value, fallback, ...)",
            Function::DaysSince => "days_since(timestamp)",
            Function::HoursSince => "hours_since(timestamp)",
            Function::Reachable => "reachable(channel)",
        }
    }

    /// Every function's name, in declaration order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Function::ALL.into_iter().map(Function::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Engagement::ALL {
            assert_eq!(Engagement::from_name(e.name()), Some(e));
        }
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
        }
        assert_eq!(HandleField::from_name("sent"), Some(HandleField::Sent));
        assert_eq!(Engagement::from_name("sent"), None);
        assert_eq!(Function::from_name("dateformat"), None);
    }

    #[test]
    fn engagement_bits_are_distinct() {
        let all = Engagement::ALL.iter().fold(0u8, |m, e| {
            assert_eq!(m & e.bit(), 0);
            m | e.bit()
        });
        assert_eq!(all.count_ones(), 5);
    }
}
