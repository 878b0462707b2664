//! Input framing: splits a JSON input stream into raw records, incrementally.
//! (Contract stub: being implemented.)

/// One record as it appeared in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// 0-based position of the record in the input.
    pub index: u64,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// The record's original text, exactly as in the input.
    pub text: String,
}

/// What the framer produces for each record position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameItem {
    Record(RawRecord),
    /// A record larger than `FrameLimits::max_record_bytes`; its bytes were skipped, not kept.
    Oversize { index: u64, line: u64, bytes: u64 },
}

/// Bounds applied while framing.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_record_bytes: usize,
    pub max_depth: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_record_bytes: 1 << 20,
            max_depth: 64,
        }
    }
}

/// The input is broken at the frame level (e.g. unbalanced brackets, not JSON at all); the file
/// stops here, but records already emitted still count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FrameError {
    pub line: u64,
    pub message: String,
}

/// The detected shape of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"type":"bundle","objects":[...]}`
    StixBundle,
    /// A JSON array of objects, or a single object.
    StixJson,
    /// `{"sourcesystem":..,"stixobjects"|"indicators":[..]}` or `{"value":[..]}`.
    SentinelRequest,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::StixBundle => "stix-bundle",
            Format::StixJson => "stix-json",
            Format::SentinelRequest => "sentinel-request",
        }
    }
}

/// Push-based framer.
pub struct Framer {
    _limits: FrameLimits,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Self {
        Framer { _limits: limits }
    }

    /// Feeds the next chunk of input; complete records are appended to `out`.
    pub fn push(&mut self, _chunk: &[u8], _out: &mut Vec<FrameItem>) -> Result<(), FrameError> {
        todo!("framer")
    }

    /// Ends the input; any final record is appended to `out`. Returns the detected format.
    pub fn finish(&mut self, _out: &mut Vec<FrameItem>) -> Result<Format, FrameError> {
        todo!("framer")
    }
}
