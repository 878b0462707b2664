//! The STIX 2.1 patterning grammar. (Contract stub: being implemented.)

/// Checks that `pattern` is a syntactically valid STIX 2.1 pattern.
pub fn check(_pattern: &str) -> Result<(), String> {
    todo!("pattern")
}
