//! The fast path of the parser: a hand-written recursive-descent parser
//! for items that are fully valid.
//!
//! pest and the visitors stay the reference: they define the language and
//! word every syntax error. But matching with pest costs most of the time of
//! `journey check`, and nearly every item a user checks is valid. So each
//! chunk is first given to [`parse_item`], which either builds exactly the
//! item pest and the visitors would build (spans included) for an item
//! they would report nothing about, or declines; a declined chunk goes
//! through pest as before and gets its diagnostics there.
//!
//! The parser follows the grammar rule for rule on bytes, slicing the text
//! until the AST needs a `String`. It validates values with the visitors'
//! own helpers (`literals::parse_*`), so the two paths cannot drift on
//! what is valid. It declines on anything pest would report, and
//! wherever pest could back out of a partly matched alternative into
//! another one: that parse is rare and left to pest. A `None` from a rule
//! after it has taken tokens fails the whole chunk, as pest would.
//!
//! `tests/parse_fast_path.rs` checks both paths agree on every chunk of
//! the repository's sources and on random mutations of them.

mod cursor;
mod expr;
mod items;
mod statements;

use super::ast;
use crate::source::FileId;
use cursor::Parser;

/// The item in `text` (one chunk from `chunks::split`, at byte `offset` of
/// `file`), or `None` when pest must parse it: a syntax error, a value or
/// name the visitors would report, or a construct this parser leaves to pest.
pub(super) fn parse_item(
    file: FileId,
    offset: usize,
    text: &str,
    doc: Option<String>,
) -> Option<ast::Item> {
    let mut parser = Parser::new(file, offset, text);
    let item = parser.item(doc);
    if parser.declined || !parser.at_end() {
        return None;
    }
    item
}
