//! The internal model (a STIX 2.1 object as a JSON map) and local validation.
//! (Contract stub: being implemented.)

pub mod pattern;

use crate::report::Code;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One reason a record is rejected or flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub message: String,
}

/// What validation needs to know besides the object.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    /// "Now", for the `expired` warning.
    pub now: OffsetDateTime,
    /// The STIX object types the target accepts.
    pub accepted_types: &'static [&'static str],
}

/// A validated (and normalised) object, ready to upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub id: String,
    pub object: Map<String, Value>,
    pub warnings: Vec<Problem>,
}

/// A rejected object: its id when it had a usable one, and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: Option<String>,
    pub problems: Vec<Problem>,
}

/// Parses one raw record's text into a JSON object (`json_invalid` / `not_an_object`).
pub fn parse_record(_text: &str) -> Result<Map<String, Value>, Problem> {
    todo!("parse_record")
}

/// Validates and normalises one object for upload.
pub fn validate(_object: Map<String, Value>, _ctx: &ValidationContext) -> Result<Valid, Invalid> {
    todo!("validate")
}
