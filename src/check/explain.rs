//! The long explanation of each diagnostic code, as printed by
//! `journey explain CODE`: the pages of docs/errors/, compiled into the
//! binary so the explanation always matches the version that reported it.

use crate::diagnostic::codes::{self, Code};

/// Every code's page, by id. The tests below keep this table and
/// `codes::ALL` in step.
const PAGES: &[(&str, &str)] = &[
    ("E0001", include_str!("../../docs/errors/E0001.md")),
    ("E0101", include_str!("../../docs/errors/E0101.md")),
    ("E0102", include_str!("../../docs/errors/E0102.md")),
    ("E0103", include_str!("../../docs/errors/E0103.md")),
    ("E0104", include_str!("../../docs/errors/E0104.md")),
    ("E0105", include_str!("../../docs/errors/E0105.md")),
    ("E0106", include_str!("../../docs/errors/E0106.md")),
    ("E0107", include_str!("../../docs/errors/E0107.md")),
    ("E0108", include_str!("../../docs/errors/E0108.md")),
    ("E0109", include_str!("../../docs/errors/E0109.md")),
    ("E0201", include_str!("../../docs/errors/E0201.md")),
    ("E0202", include_str!("../../docs/errors/E0202.md")),
    ("E0203", include_str!("../../docs/errors/E0203.md")),
    ("E0204", include_str!("../../docs/errors/E0204.md")),
    ("E0205", include_str!("../../docs/errors/E0205.md")),
    ("E0206", include_str!("../../docs/errors/E0206.md")),
    ("E0207", include_str!("../../docs/errors/E0207.md")),
    ("E0208", include_str!("../../docs/errors/E0208.md")),
    ("E0209", include_str!("../../docs/errors/E0209.md")),
    ("E0210", include_str!("../../docs/errors/E0210.md")),
    ("E0211", include_str!("../../docs/errors/E0211.md")),
    ("E0212", include_str!("../../docs/errors/E0212.md")),
    ("E0213", include_str!("../../docs/errors/E0213.md")),
    ("E0214", include_str!("../../docs/errors/E0214.md")),
    ("E0215", include_str!("../../docs/errors/E0215.md")),
    ("E0216", include_str!("../../docs/errors/E0216.md")),
    ("E0301", include_str!("../../docs/errors/E0301.md")),
    ("E0302", include_str!("../../docs/errors/E0302.md")),
    ("E0303", include_str!("../../docs/errors/E0303.md")),
    ("E0304", include_str!("../../docs/errors/E0304.md")),
    ("E0401", include_str!("../../docs/errors/E0401.md")),
    ("E0402", include_str!("../../docs/errors/E0402.md")),
    ("E0403", include_str!("../../docs/errors/E0403.md")),
    ("E0404", include_str!("../../docs/errors/E0404.md")),
    ("E0405", include_str!("../../docs/errors/E0405.md")),
    ("E0406", include_str!("../../docs/errors/E0406.md")),
    ("E0407", include_str!("../../docs/errors/E0407.md")),
    ("E0408", include_str!("../../docs/errors/E0408.md")),
    ("E0409", include_str!("../../docs/errors/E0409.md")),
    ("E0410", include_str!("../../docs/errors/E0410.md")),
    ("E0411", include_str!("../../docs/errors/E0411.md")),
    ("E0412", include_str!("../../docs/errors/E0412.md")),
    ("E0413", include_str!("../../docs/errors/E0413.md")),
    ("E0414", include_str!("../../docs/errors/E0414.md")),
    ("E0420", include_str!("../../docs/errors/E0420.md")),
    ("E0421", include_str!("../../docs/errors/E0421.md")),
    ("E0501", include_str!("../../docs/errors/E0501.md")),
    ("E0502", include_str!("../../docs/errors/E0502.md")),
    ("E0503", include_str!("../../docs/errors/E0503.md")),
    ("E0504", include_str!("../../docs/errors/E0504.md")),
    ("E0505", include_str!("../../docs/errors/E0505.md")),
    ("E0506", include_str!("../../docs/errors/E0506.md")),
    ("E0507", include_str!("../../docs/errors/E0507.md")),
    ("W0001", include_str!("../../docs/errors/W0001.md")),
    ("W0002", include_str!("../../docs/errors/W0002.md")),
    ("W0003", include_str!("../../docs/errors/W0003.md")),
    ("W0004", include_str!("../../docs/errors/W0004.md")),
    ("W0005", include_str!("../../docs/errors/W0005.md")),
    ("W0006", include_str!("../../docs/errors/W0006.md")),
    ("W0007", include_str!("../../docs/errors/W0007.md")),
    ("W0008", include_str!("../../docs/errors/W0008.md")),
    ("W0009", include_str!("../../docs/errors/W0009.md")),
    ("W0010", include_str!("../../docs/errors/W0010.md")),
    ("W0011", include_str!("../../docs/errors/W0011.md")),
];

/// The explanation page of a code (case-insensitive: `e0404` works), or
/// `None` for an unknown code.
pub fn explain(id: &str) -> Option<(Code, &'static str)> {
    let code = codes::lookup(id)?;
    PAGES
        .iter()
        .find(|(page_id, _)| *page_id == code.id)
        .map(|(_, page)| (code, *page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_page_whose_first_line_names_it() {
        for code in codes::ALL {
            let (found, page) =
                explain(code.id).unwrap_or_else(|| panic!("no page for {}", code.id));
            assert_eq!(found, *code);
            let first = page.lines().next().unwrap_or_default();
            assert_eq!(
                first,
                format!("# {}: {}", code.id, code.title),
                "first line of the page of {}",
                code.id
            );
        }
    }

    #[test]
    fn every_page_belongs_to_a_registered_code() {
        for (id, _) in PAGES {
            assert!(
                codes::lookup(id).is_some(),
                "page for unregistered code {id}"
            );
        }
        assert_eq!(PAGES.len(), codes::ALL.len());
    }

    #[test]
    fn lookup_is_case_insensitive_and_rejects_unknown_codes() {
        assert_eq!(explain("e0404").map(|(c, _)| c.id), Some("E0404"));
        assert!(explain("E9999").is_none());
        assert!(explain("").is_none());
    }
}
