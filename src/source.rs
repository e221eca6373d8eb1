//! Source files, byte spans and line/column lookup, shared by every phase
//! that reports a position to the user.

use std::sync::Arc;

/// Index of a file inside a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One `.journey` file: its display name (repo-relative where possible) and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub id: FileId,
    pub name: String,
    pub text: Arc<str>,
    /// Byte offset of the start of every line.
    line_starts: Vec<u32>,
    /// Characters before every [`CHAR_MARK`]-th byte (empty when the text is
    /// ASCII): a column costs at most that many bytes of counting, however
    /// long its line.
    char_marks: Vec<u32>,
}

/// The stride of [`SourceFile`]'s character counts, in bytes.
const CHAR_MARK: usize = 4096;

/// The characters that start in `bytes`: the bytes that are not UTF-8
/// continuation bytes, so a slice may start or end inside a character.
fn chars_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

impl SourceFile {
    pub fn new(id: FileId, name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        let char_marks = if text.is_ascii() {
            Vec::new()
        } else {
            let mut before = 0;
            let mut marks = Vec::with_capacity(text.len() / CHAR_MARK + 1);
            for chunk in text.as_bytes().chunks(CHAR_MARK) {
                marks.push(before as u32);
                before += chars_in(chunk);
            }
            marks
        };
        SourceFile {
            id,
            name: name.into(),
            text,
            line_starts,
            char_marks,
        }
    }

    pub fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.id, start, end)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let end = (offset as usize).min(self.text.len());
        let column = if self.text.is_char_boundary(end) {
            self.chars_before(end) - self.chars_before(start)
        } else {
            end - start
        };
        (line + 1, column + 1)
    }

    /// The characters before byte `offset`, counting from the nearest mark.
    fn chars_before(&self, offset: usize) -> usize {
        if self.char_marks.is_empty() {
            return offset;
        }
        let mark = offset / CHAR_MARK;
        self.char_marks[mark] as usize + chars_in(&self.text.as_bytes()[mark * CHAR_MARK..offset])
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// Every file of a project, indexed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile::new(id, name, text));
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_across_marks() {
        let line = format!(
            "{}é{}",
            "a".repeat(CHAR_MARK - 1),
            "b".repeat(2 * CHAR_MARK)
        );
        let text = format!("x\n{line}\n日本");
        let file = SourceFile::new(FileId(0), "a.journey", text.as_str());
        let naive = |offset: usize| {
            let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let line = text[..offset].matches('\n').count() + 1;
            (line, text[start..offset].chars().count() + 1)
        };
        for offset in [
            0,
            1,
            2,
            CHAR_MARK,
            CHAR_MARK + 1,
            CHAR_MARK + 3,
            3 * CHAR_MARK,
            text.len() - 3,
            text.len(),
        ] {
            assert_eq!(
                file.line_col(offset as u32),
                naive(offset),
                "offset {offset}"
            );
        }
    }
}
