//! Event input (Segment NDJSON), a synthetic event stream generator, and
//! action output.

pub mod adapter;
pub mod json;
pub mod late;
mod owned;
pub mod segment;
pub mod synth;

pub use json::RawJson;
pub use owned::MalformedEvent;
pub use segment::{EventReader, InputError, MessageKind, RawEvent, parse_line};
