//! Parser tests: AST shapes, spans, every syntax diagnostic, recovery.

use super::ast::*;
use super::parse;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceFile};

fn source(text: &str) -> SourceFile {
    SourceFile::new(FileId(0), "test.journey", text)
}

fn parse_str(text: &str) -> (File, Vec<Diagnostic>, SourceFile) {
    let file = source(text);
    let (ast, diags) = parse(&file);
    (ast, diags, file)
}

#[test]
fn debug_dump() {
    let Ok(path) = std::env::var("JOURNEY_DUMP") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let (ast, diags, file) = parse_str(&text);
    println!("{ast:?}");
    for d in diags {
        let (l, c) = file.line_col(d.span.start);
        println!("{l}:{c} {} {} | {:?} | {:?} | {:?}", d.code.id, d.message, d.help, d.label, d.related);
    }
}
