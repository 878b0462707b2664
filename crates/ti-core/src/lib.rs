//! ti-core: the I/O-free heart of ti-ingest.
//!
//! Layout (each module owns one pipeline stage, none does I/O, so the Functions handler, the CLI
//! and the tests all run the same code):
//! - [`frame`]: splits an input byte stream into raw records (bundle objects, array elements, a
//!   single object) incrementally, with each record's 0-based input index, 1-based line and
//!   original text. Push-based, so callers feed it from async blob streams or sync files alike.
//! - [`stix`]: the internal model (a STIX 2.1 object) and local validation of what the service
//!   would reject, including the STIX pattern grammar ([`stix::pattern`]) and observable value
//!   checks ([`stix::observable`]: IPs, CIDRs, domains, URLs, e-mail addresses, hashes).
//! - [`input`]: the input decoder the pipeline feeds: gzip, UTF-8/UTF-16, format detection and
//!   per-format record decoding (JSON via [`frame`], NDJSON, CSV, text), each record handed on as
//!   a STIX object with its index, line and original text (README.md, How it works).
//! - [`convert`]: conversions into and out of the STIX model: Graph tiIndicators both ways, CSV
//!   rows and text lines into indicators, with the settings defaults (docs/ARCHITECTURE.md, The model).
//! - [`report`]: the per-record error vocabulary and the report document (docs/REPORTS.md).

pub mod convert;
pub mod frame;
pub mod input;
pub mod report;
pub mod stix;
