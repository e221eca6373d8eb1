//! The pest parser generated from `grammar/journey.pest`. Nothing outside
//! `syntax` sees [`Rule`] or pest's pairs.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/journey.pest"]
pub struct JourneyParser;
