//! Line surgery shared by the benches that trim the generator's `context`
//! towards the ~240-byte lines PERFORMANCE.md measured.

/// Removes `start` and what follows up to the first `end` after it.
pub fn remove_field(line: &str, start: &str, end: char) -> String {
    let Some(from) = line.find(start) else {
        return line.to_owned();
    };
    let rest = &line[from + start.len()..];
    let Some(len) = rest.find(end) else {
        return line.to_owned();
    };
    format!("{}{}", &line[..from], &rest[len + 1..])
}
