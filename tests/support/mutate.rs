//! Random edits of a valid source, for the parser's property tests
//! (`parse_no_panic`, `parse_fast_path`): delete a few bytes, insert or
//! replace with a token from the test's own list, swap two words. Every edit
//! lands on character boundaries, so the text stays a `String`.

use proptest::prelude::*;

#[derive(Clone, Debug)]
pub enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Replace(usize, usize),
    Swap(usize, usize),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, t)| Edit::Replace(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

/// Applies `edit` to `text`; inserted and replacing text comes from `tokens`.
pub fn apply(text: &mut String, edit: &Edit, tokens: &[&str]) {
    match *edit {
        Edit::Delete(at, n) => {
            let start = floor_boundary(text, at);
            let end = floor_boundary(text, start + n);
            text.replace_range(start..end.max(start), "");
        }
        Edit::Insert(at, t) => {
            let at = floor_boundary(text, at);
            text.insert_str(at, tokens[t % tokens.len()]);
        }
        Edit::Replace(at, t) => {
            let start = floor_boundary(text, at);
            let end = text[start..]
                .chars()
                .next()
                .map_or(start, |c| start + c.len_utf8());
            text.replace_range(start..end, tokens[t % tokens.len()]);
        }
        Edit::Swap(a, b) => {
            let words = words(text);
            if words.len() < 2 {
                return;
            }
            let i = a % words.len();
            // A neighbour most of the time, so the result stays near-valid.
            let j = if b % 3 == 0 {
                b % words.len()
            } else {
                (i + 1) % words.len()
            };
            let (x, y) = (words[i.min(j)], words[i.max(j)]);
            if x == y {
                return;
            }
            let (first, second) = (text[x.0..x.1].to_owned(), text[y.0..y.1].to_owned());
            text.replace_range(y.0..y.1, &first);
            text.replace_range(x.0..x.1, &second);
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i %= s.len() + 1;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The byte ranges of the whitespace-separated words of `text`.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}
