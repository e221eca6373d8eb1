//! The built-in channels, in one place: which exist, where each finds a
//! customer's address and consent in the profile, and which template parts
//! it takes. The checker (names, E0205, W0007, the profile fields always
//! known), the compiler (each channel's default rule and the fixed profile
//! slots), the runtime (through the compiled rules) and the help text all
//! read this table; a declared `channel NAME { address ... consent ... }`
//! overrides a built-in's rule or adds a channel.

/// One built-in channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    /// The profile field holding the address; `None`: it needs none.
    pub address: Option<&'static str>,
    /// Whether sending asks `profile.consent.<name>` (see [`consent_path`]).
    pub consent: bool,
    /// Whether its templates may have an `html` part.
    pub html: bool,
}

/// The built-in channels, in their fixed order (their ids in a program).
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "email",
        address: Some("email"),
        consent: true,
        html: true,
    },
    Builtin {
        name: "sms",
        address: Some("phone"),
        consent: true,
        html: false,
    },
    Builtin {
        name: "push",
        address: Some("push_token"),
        consent: true,
        html: false,
    },
    Builtin {
        name: "in_app",
        address: Some("push_token"),
        consent: true,
        html: false,
    },
    Builtin {
        name: "whatsapp",
        address: Some("phone"),
        consent: true,
        html: false,
    },
    Builtin {
        name: "webhook",
        address: None,
        consent: false,
        html: false,
    },
];

/// The profile object of per-channel consent: `profile.consent.<channel>`.
pub const CONSENT: &str = "consent";
/// The profile flag that stops every non-transactional send.
pub const UNSUBSCRIBED: &str = "unsubscribed";
/// The profile field with the customer's time zone.
pub const TIMEZONE: &str = "timezone";

/// The parts a template may have, in the order they are checked.
pub const TEMPLATE_PARTS: &[&str] = &["subject", "body", "html"];

/// The built-in channel called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The built-in channels' names, in order.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    BUILTINS.iter().map(|b| b.name)
}

/// The profile path of a channel's consent (built-in or declared).
pub fn consent_path(channel: &str) -> [&str; 2] {
    [CONSENT, channel]
}

/// The distinct address fields, in the order channels first use them
/// (`email`, `phone`, `push_token`).
pub fn address_fields() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for field in BUILTINS.iter().filter_map(|b| b.address) {
        if !out.contains(&field) {
            out.push(field);
        }
    }
    out
}

/// Whether a top-level profile field is one the built-in rules read: an
/// address, `consent`, `unsubscribed` or `timezone`. A declared profile
/// schema may omit them; they then read `null`.
pub fn is_builtin_profile_field(field: &str) -> bool {
    matches!(field, CONSENT | UNSUBSCRIBED | TIMEZONE)
        || BUILTINS.iter().any(|b| b.address == Some(field))
}

/// Whether a channel's templates may have an `html` part (built-in `email`
/// only; a declared channel takes none).
pub fn takes_html(channel: &str) -> bool {
    builtin(channel).is_some_and(|b| b.html)
}

/// The built-in names for help text: "`email`, `sms`, ..., `webhook`".
pub fn listed() -> String {
    names()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_address_fields_are_in_first_use_order() {
        let mut seen = std::collections::BTreeSet::new();
        assert!(names().all(|n| seen.insert(n)));
        assert_eq!(address_fields(), ["email", "phone", "push_token"]);
        assert_eq!(
            listed(),
            "`email`, `sms`, `push`, `in_app`, `whatsapp`, `webhook`"
        );
    }

    #[test]
    fn the_rules_read_the_builtin_profile_fields() {
        for f in [
            "email",
            "phone",
            "push_token",
            "consent",
            "unsubscribed",
            "timezone",
        ] {
            assert!(is_builtin_profile_field(f), "{f}");
        }
        assert!(!is_builtin_profile_field("first_name"));
        assert!(takes_html("email") && !takes_html("sms") && !takes_html("custom"));
        assert_eq!(consent_path("sms"), ["consent", "sms"]);
    }
}
