//! `ti-ingest convert`: its own streaming loop (decode, validate, convert, drop earlier
//! duplicates), writing the converted records to stdout as they come, without the pipeline's
//! batching and upload.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ti_core::frame::FrameLimits;
use tokio::io::AsyncReadExt;

use super::exit::Exit;
use super::offline::Overrides;
use crate::pipeline;
use crate::startup::Settings;

/// The shapes `convert` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertTo {
    /// A STIX 2.1 bundle.
    Stix,
    /// `{"value":[tiIndicator, ...]}` for Microsoft Graph `submitTiIndicators`.
    Graph,
    /// `{"sourcesystem":..,"stixobjects":[..]}` for the Sentinel STIX objects upload API.
    SentinelRequest,
}

/// `ti-ingest convert`: decode, validate and convert one file, streaming the result to stdout.
pub async fn convert(file: &Path, to: ConvertTo, format: Option<String>) -> Result<ExitCode> {
    use std::io::Write;
    use ti_core::input::{Decoder, InputOptions};
    use ti_core::stix::ValidationContext;

    let env = Overrides {
        format,
        ..Default::default()
    }
    .env(true);
    let settings = Settings::from_env(&env)?;
    let now = time::OffsetDateTime::now_utc();
    let validation = ValidationContext {
        now,
        accepted_types: pipeline::SENTINEL_STIX_TYPES,
    };
    let mut decoder = Decoder::new(InputOptions {
        format: settings.input.format,
        limits: FrameLimits::default(),
        defaults: settings.input.defaults,
        now,
        max_decompressed_bytes: settings.max_input_bytes,
        max_ratio: InputOptions::DEFAULT_MAX_RATIO,
    });
    let mut input: Box<dyn tokio::io::AsyncRead + Unpin> = if file.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(file)
                .await
                .with_context(|| format!("opening {}", file.display()))?,
        )
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (open, close) = match to {
        ConvertTo::Stix => (
            format!(
                "{{\"type\":\"bundle\",\"id\":\"bundle--{}\",\"objects\":[",
                uuid::Uuid::new_v4()
            ),
            "]}",
        ),
        ConvertTo::Graph => ("{\"value\":[".to_string(), "]}"),
        ConvertTo::SentinelRequest => (
            format!(
                "{{\"sourcesystem\":{},\"stixobjects\":[",
                serde_json::to_string(&settings.upload.source_system)?
            ),
            "]}",
        ),
    };
    out.write_all(open.as_bytes())?;
    let (mut written, mut rejected) = (0u64, 0u64);
    // The duplicate rule of `validate`/`upload`: of records with the same id, the last one wins
    // (among records up to `DEDUP_WINDOW` converted records apart). Converted records wait here,
    // in input order, until the window is full or the input ends.
    let mut pending = ConvertWindow::default();
    let mut items = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut frame_error = None;
    loop {
        let n = input.read(&mut buf).await.context("reading the input")?;
        let step = if n == 0 {
            decoder.finish(&mut items).map(|_| ())
        } else {
            decoder.push(&buf[..n], &mut items)
        };
        if let Err(e) = step {
            frame_error = Some(e);
        }
        for item in items.drain(..) {
            let converted = match pipeline::check(item, &validation) {
                pipeline::Checked::Rejected(r) => Err((r.index, r.line, r.code, r.messages)),
                pipeline::Checked::Valid {
                    index, line, valid, ..
                } => match to {
                    ConvertTo::Graph => ti_core::convert::stix_to_ti_with_warnings(
                        &valid.object,
                        &settings.upload.graph_action,
                        &settings.upload.graph_target_product,
                    )
                    .map(|(ti, warnings)| {
                        for w in warnings {
                            eprintln!(
                                "record {index} (line {line}): warning {}: {}",
                                code_name(w.code),
                                w.message
                            );
                        }
                        (index, line, valid.id, ti)
                    })
                    .map_err(|p| (index, line, p.code, vec![p.message])),
                    _ => Ok((index, line, valid.id, valid.object)),
                },
            };
            match converted {
                Ok((index, line, id, object)) => {
                    let text = serde_json::to_string(&object)?;
                    if let Some((earlier, earlier_line)) = pending.push(&id, index, line, text) {
                        rejected += 1;
                        eprintln!(
                            "record {earlier} (line {earlier_line}): duplicate: record {index} (line {line}) has the same id; the last record with an id wins, so this one is not written"
                        );
                    }
                    if pending.is_full() {
                        for object in pending.drain() {
                            write_object(&mut out, &mut written, &object)?;
                        }
                    }
                }
                Err((index, line, code, messages)) => {
                    rejected += 1;
                    eprintln!(
                        "record {index} (line {line}): {}: {}",
                        code_name(code),
                        messages.join("; ")
                    );
                }
            }
        }
        if n == 0 || frame_error.is_some() {
            break;
        }
    }
    for object in pending.drain() {
        write_object(&mut out, &mut written, &object)?;
    }
    out.write_all(b"\n")?;
    out.write_all(close.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    eprintln!(
        "{}: {written} records converted, {rejected} rejected",
        file.display()
    );
    if let Some(e) = frame_error {
        eprintln!(
            "ti-ingest: the input is not valid at line {}: {}",
            e.line, e.message
        );
        return Ok(Exit::Unusable.into());
    }
    Ok(Exit::of_rejected(rejected).into())
}

/// Writes one converted record after the ones already written (`written` of them).
fn write_object(
    out: &mut impl std::io::Write,
    written: &mut u64,
    object: &str,
) -> std::io::Result<()> {
    if *written > 0 {
        out.write_all(b",")?;
    }
    out.write_all(b"\n")?;
    out.write_all(object.as_bytes())?;
    *written += 1;
    Ok(())
}

/// A code's report name (`duplicate`, `pattern_invalid`).
fn code_name(code: ti_core::report::Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `convert`'s converted records waiting to be written, in input order: a record whose id a later
/// one repeats is dropped when the later one arrives (the last one wins, as in `validate` and
/// `upload`). Holds at most [`pipeline::DEDUP_WINDOW`] records; then they are written and the
/// window starts afresh, as the pipeline's forgets the ids it has seen.
#[derive(Default)]
struct ConvertWindow {
    /// Serialised records; `None` where a later record superseded one.
    records: Vec<Option<String>>,
    /// id → (position in `records`, input index, line).
    ids: std::collections::HashMap<String, (usize, u64, u64)>,
}

impl ConvertWindow {
    /// Adds a record; returns the input index and line of the earlier record with the same id,
    /// which is dropped.
    fn push(&mut self, id: &str, index: u64, line: u64, text: String) -> Option<(u64, u64)> {
        let pos = self.records.len();
        self.records.push(Some(text));
        let earlier = self.ids.insert(id.to_string(), (pos, index, line))?;
        self.records[earlier.0] = None;
        Some((earlier.1, earlier.2))
    }

    fn is_full(&self) -> bool {
        self.records.len() >= pipeline::DEDUP_WINDOW
    }

    fn drain(&mut self) -> impl Iterator<Item = String> + '_ {
        self.ids.clear();
        self.records.drain(..).flatten()
    }
}
