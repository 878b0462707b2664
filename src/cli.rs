//! The command line (README.md, Command line): the same binary serves the Functions host and runs the same
//! pipeline by hand. Exit codes: 0 all records fine, 1 some records rejected, 2 unusable input or
//! arguments, or no token for a target's audience (`upload` and `pull` get one for each before
//! reading anything). `doctor`: 0 every check passed, 2 otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ti_core::frame::FrameLimits;
use ti_core::report::html::{write_page, PageFiles};
use ti_core::report::Source;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::auth;
use crate::functions::{self, AppState};
use crate::pipeline::{self, RunContext, RunOutcome};
use crate::settings::{Env, OnInvalid, Settings, StorageSettings, TargetKind, UploadSettings};
use crate::storage::Storage;
use crate::upload::Uploader;

#[derive(Parser, Debug)]
#[command(
    name = "ti-ingest",
    version,
    about = "Threat-intelligence indicators into Microsoft Sentinel"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the Azure Functions custom handler (what host.json starts).
    Serve {
        /// Port to listen on; defaults to FUNCTIONS_CUSTOMHANDLER_PORT.
        #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
        port: u16,
    },
    /// Parse, convert and validate files offline; nothing is sent.
    Validate {
        /// Input files (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also apply what this target would refuse before sending (default TI_TARGET, else
        /// sentinel-stix): `sentinel-indicators` takes only indicators, `graph` only what converts
        /// to a valid tiIndicator. Several may be listed, comma-separated. Nothing is sent.
        #[arg(long)]
        target: Option<String>,
        /// Write the report (docs/REPORTS.md) here; with several files, a directory for one report each.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Force the input format instead of detecting it (see TI_FORMAT).
        #[arg(long)]
        format: Option<String>,
    },
    /// Print the records of a file converted to STIX (a bundle), Graph tiIndicators
    /// (`{"value":[..]}`) or a Sentinel upload request body; invalid records go to stderr.
    Convert {
        file: PathBuf,
        #[arg(long, value_enum)]
        to: ConvertTo,
        #[arg(long)]
        format: Option<String>,
    },
    /// Upload files to the target with the identity from the environment (managed identity when
    /// IDENTITY_ENDPOINT is set, else the Azure CLI login).
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// sentinel-stix (default) or dry-run; defaults to TI_TARGET.
        #[arg(long)]
        target: Option<String>,
        /// The Log Analytics workspace id; defaults to TI_WORKSPACE_ID.
        #[arg(long)]
        workspace_id: Option<String>,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        format: Option<String>,
    },
    /// Run the configured feed pulls (TI_FEEDS_CONFIG) once, like the PullFeeds timer, with
    /// storage and identity from the environment.
    Pull {
        /// Pull only this feed.
        #[arg(long)]
        feed: Option<String>,
    },
    /// Check the app's settings, a token for each target's audience, the storage containers and
    /// queues, and each target with a request that uploads nothing; print the fix for each
    /// failure. Exit 0 when every check passes, 2 otherwise.
    Doctor {
        /// Print the result as JSON (the Health function's answer) instead of lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command line; `main` only maps the result to a process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        Some(c) => c,
        None => match std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
        {
            Some(port) => Command::Serve { port },
            None => {
                eprintln!(
                    "ti-ingest: no command given (serve, validate, upload, doctor); see --help"
                );
                return ExitCode::from(2);
            }
        },
    };
    let result = match command {
        Command::Serve { port } => serve(port).await.map(|_| ExitCode::SUCCESS),
        Command::Validate {
            files,
            target,
            report,
            format,
        } => {
            let o = Overrides {
                format,
                target,
                ..Default::default()
            };
            offline(&files, report.as_deref(), o, true).await
        }
        Command::Upload {
            files,
            target,
            workspace_id,
            report,
            format,
        } => {
            let o = Overrides {
                target,
                workspace_id,
                format,
            };
            offline(&files, report.as_deref(), o, false).await
        }
        Command::Convert { file, to, format } => convert(&file, to, format).await,
        Command::Pull { feed } => crate::pull::cli(feed).await,
        Command::Doctor { json } => doctor(json).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ti-ingest: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `ti-ingest doctor`: every check, printed; exit 0 when all pass, else 2.
async fn doctor(as_json: bool) -> Result<ExitCode> {
    let diagnosis = crate::doctor::diagnose(
        &Env::from_process(),
        crate::doctor::Identity::FromEnvironment,
    )
    .await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&diagnosis.to_json())?);
    } else {
        print!("{}", diagnosis.render());
    }
    Ok(ExitCode::from(if diagnosis.healthy { 0 } else { 2 }))
}

/// Builds the handler's shared state from the environment.
pub fn app_state(env: &Env) -> Result<AppState> {
    let settings = Settings::from_env(env)?;
    let storage_settings = StorageSettings::from_env(env)?;
    if !auth::identity_endpoint_configured() {
        tracing::warn!("IDENTITY_ENDPOINT/IDENTITY_HEADER are not set: the managed identity will fall back to the VM metadata endpoint, which fails slowly outside Azure VMs");
    }
    let credential = auth::managed_identity(settings.client_id.as_deref())?;
    let storage = Storage::new(storage_settings, credential.clone())?;
    let mut upload = settings.upload.clone();
    // Targets keep their state (the Defender budget) in the app's storage.
    upload.state_store = Some(std::sync::Arc::new(storage.clone()));
    let uploader = Uploader::new(upload, Some(credential))?;
    Ok(AppState {
        storage,
        uploader,
        input: settings.input.clone(),
        max_input_bytes: settings.max_input_bytes,
        work_item_records: settings.work_item_records,
        sweep: settings.sweep,
        max_http_bytes: functions::http::max_http_bytes(env)?,
        invocation_deadline: settings.invocation_deadline,
    })
}

async fn serve(port: u16) -> Result<()> {
    let state = app_state(&Env::from_process())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, target = state.uploader.target_name(), "ti-ingest handler listening");
    axum::serve(listener, functions::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Command-line flags that override settings from the environment.
#[derive(Debug, Default)]
struct Overrides {
    target: Option<String>,
    workspace_id: Option<String>,
    format: Option<String>,
}

impl Overrides {
    fn env(self, validate_only: bool) -> Env {
        let mut pairs: Vec<(String, String)> = std::env::vars().collect();
        if let Some(t) = self.target {
            pairs.push(("TI_TARGET".into(), t));
        }
        if let Some(w) = self.workspace_id {
            pairs.push(("TI_WORKSPACE_ID".into(), w));
        }
        if let Some(f) = self.format {
            pairs.push(("TI_FORMAT".into(), f));
        }
        if validate_only {
            pairs.push(("TI_TARGET".into(), "dry-run".into()));
        }
        Env::from_pairs(pairs)
    }
}

async fn offline(
    files: &[PathBuf],
    report: Option<&Path>,
    overrides: Overrides,
    validate_only: bool,
) -> Result<ExitCode> {
    // validate sends nothing (the dry run), but applies the rules of the targets it was given.
    let validate_as = if validate_only {
        let given = overrides
            .target
            .clone()
            .or_else(|| std::env::var("TI_TARGET").ok());
        match given {
            Some(t) => TargetKind::parse_list(&t).context("--target / TI_TARGET")?,
            None => vec![TargetKind::SentinelStix],
        }
    } else {
        Vec::new()
    };
    let env = overrides.env(validate_only);
    let settings = Settings::from_env(&env)?;
    let mut upload: UploadSettings = settings.upload.clone();
    upload.validate_as = validate_as;
    let credential = if upload.needs_credential() {
        Some(auth::from_environment(settings.client_id.as_deref())?)
    } else {
        None
    };
    // A credential that cannot work is found before any record is read: one message, exit 2.
    if let (Some(c), false) = (&credential, validate_only) {
        if let Err(message) = crate::doctor::preflight(
            c,
            &upload,
            !auth::identity_endpoint_configured(),
            settings.client_id.as_deref(),
        )
        .await
        {
            eprintln!("ti-ingest: {message}");
            return Ok(ExitCode::from(2));
        }
    }
    let uploader = Uploader::new(upload, credential)?;
    let ctx = RunContext {
        format: settings.input.format,
        defaults: settings.input.defaults,
        max_input_bytes: settings.max_input_bytes,
        validate_only,
        ..RunContext::new(uploader)
    };
    if files.len() > 1 {
        if let Some(dir) = report {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the report directory {}", dir.display()))?;
        }
    }
    let mut worst = 0u8;
    for file in files {
        let outcome = if validate_only {
            // Validation is fast, but a large file still takes seconds: show it moving.
            let bar = progress_bar(file, Default::default(), &ctx, validate_only);
            let progress = std::sync::Arc::new(crate::pipeline::Progress::default());
            bar.attach(progress.clone());
            let mut file_ctx = ctx.clone();
            file_ctx.progress = Some(progress);
            let outcome = run_file(file, &file_ctx).await;
            bar.finish();
            outcome?
        } else if file.as_os_str() == "-" {
            run_file(file, &ctx).await?
        } else {
            match upload_resumable(file, &ctx).await? {
                Some(o) => o,
                None => return Ok(ExitCode::from(130)),
            }
        };
        let r = &outcome.report;
        eprintln!(
            "{}: {} records, {} {}, {} rejected{}",
            r.source.name,
            r.summary.records,
            r.summary.uploaded,
            if validate_only { "valid" } else { "uploaded" },
            r.summary.rejected,
            r.input_error
                .as_ref()
                .map(|e| format!("; input error: {}", e.message))
                .unwrap_or_default()
        );
        for e in r.errors.iter().take(10) {
            eprintln!(
                "  record {} (line {}): {}: {}",
                e.record_index,
                e.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                serde_json::to_value(e.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                e.messages.join("; ")
            );
        }
        if r.errors.len() > 10 {
            eprintln!("  ... and {} more (see the report)", r.errors.len() - 10);
        }
        if let Some(path) = report {
            let path = if files.len() > 1 {
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "stdin".into());
                path.join(format!("{name}.report.json"))
            } else {
                path.to_path_buf()
            };
            write_report_files(&path, &outcome)?;
        }
        let code = if r.input_error.is_some() {
            2
        } else if r.summary.rejected > 0 {
            1
        } else {
            0
        };
        worst = worst.max(code);
    }
    Ok(ExitCode::from(worst))
}

async fn run_file(file: &Path, ctx: &RunContext) -> Result<RunOutcome> {
    let name = file.display().to_string();
    let source = Source {
        kind: "file".into(),
        name: if name == "-" {
            "stdin".into()
        } else {
            name.clone()
        },
        format: None,
    };
    // A file over the input bound is refused whole, as a blob is: nothing of it is uploaded.
    if let Ok(meta) = std::fs::metadata(file) {
        if meta.is_file() && meta.len() > ctx.max_input_bytes {
            let message = format!(
                "the file is {} bytes; TI_MAX_INPUT_BYTES allows {}",
                meta.len(),
                ctx.max_input_bytes
            );
            return Ok(RunOutcome::of_report(pipeline::input_error_report(
                source,
                ctx.report_target(),
                "input_too_large",
                message,
            )));
        }
    }
    let outcome = if name == "-" {
        if ctx.uploader.settings().on_invalid == OnInvalid::RejectFile {
            // reject-file reads its input twice; standard input can only be read once.
            let mut bytes = Vec::new();
            tokio::io::stdin()
                .take(ctx.max_input_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
                .await
                .context("reading standard input")?;
            let open = || {
                let bytes = bytes.clone();
                async move { Ok::<_, std::io::Error>(ReaderStream::new(std::io::Cursor::new(bytes))) }
            };
            pipeline::run_input(open, source, ctx).await
        } else {
            pipeline::run(ReaderStream::new(tokio::io::stdin()), source, ctx).await
        }
    } else {
        let open = || async { read_file(file) };
        pipeline::run_input(open, source, ctx).await
    };
    outcome.with_context(|| format!("reading {name}"))
}

/// Size of the reads of a local input file.
const FILE_READ_BYTES: usize = 256 * 1024;

/// A local file as a stream of chunks, read on a thread of its own with plain blocking reads
/// (`tokio::fs` would hand every read to the blocking pool and copy each chunk twice). Reads stay
/// at most two chunks ahead of the pipeline; a read buffer is reused once the pipeline has
/// dropped the chunk it held.
fn read_file(
    path: &Path,
) -> std::io::Result<impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    std::thread::Builder::new()
        .name("read-input".into())
        .spawn(move || {
            let mut buf = bytes::BytesMut::new();
            loop {
                buf.reserve(FILE_READ_BYTES);
                let start = buf.len();
                buf.resize(start + FILE_READ_BYTES, 0);
                let n = match f.read(&mut buf[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        buf.truncate(start);
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                buf.truncate(start + n);
                if n == 0 || tx.blocking_send(Ok(buf.split().freeze())).is_err() {
                    return;
                }
            }
        })?;
    let mut rx = rx;
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Writes the report as the app writes its reports (docs/REPORTS.md): at most
/// [`ti_core::report::REPORT_MAX_ENTRIES`] errors and warnings listed, with complete counts per
/// code, the rest in `<stem>.errors.ndjson` / `<stem>.warnings.ndjson` beside it,
/// `<stem>.rejected.ndjson` when records were rejected, and the page a person reads,
/// `<stem>.report.html`. Overflow files of an earlier run at the same place are removed when this
/// one has none.
fn write_report_files(path: &Path, outcome: &RunOutcome) -> Result<()> {
    let s = path.to_string_lossy();
    let base = s.strip_suffix(".json").unwrap_or(&s);
    let base = base.strip_suffix(".report").unwrap_or(base);
    let errors_path = format!("{base}.errors.ndjson");
    let warnings_path = format!("{base}.warnings.ndjson");
    let (report, errors, warnings) = outcome.report.split(&errors_path, &warnings_path);
    for (content, file) in [(&errors, &errors_path), (&warnings, &warnings_path)] {
        if content.is_empty() {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing the stale {file}"))
                }
                _ => {}
            }
        } else {
            std::fs::write(file, content).with_context(|| format!("writing {file}"))?;
        }
    }
    let json = serde_json::to_vec_pretty(&report)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    let rejected = outcome.rejected_ndjson();
    let rpath = PathBuf::from(format!("{base}.rejected.ndjson"));
    if !rejected.is_empty() {
        std::fs::write(&rpath, rejected).with_context(|| format!("writing {}", rpath.display()))?;
    }
    // The page names its neighbours by file name: it sits in the same folder.
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let files = PageFiles {
        report: file_name(path),
        rejected: (!outcome.rejected.is_empty()).then(|| file_name(&rpath)),
        more_errors: report
            .more_errors_in
            .as_deref()
            .map(|f| file_name(Path::new(f))),
        more_warnings: report
            .more_warnings_in
            .as_deref()
            .map(|f| file_name(Path::new(f))),
    };
    let hpath = PathBuf::from(format!("{base}.report.html"));
    std::fs::File::create(&hpath)
        .and_then(|f| write_page(f, &outcome.report, |i| outcome.original(i), files))
        .with_context(|| format!("writing {}", hpath.display()))?;
    if outcome.report.summary.records == 0 && outcome.report.input_error.is_none() {
        bail!("the input held no records");
    }
    Ok(())
}

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
async fn convert(file: &Path, to: ConvertTo, format: Option<String>) -> Result<ExitCode> {
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
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::from(if rejected > 0 { 1 } else { 0 }))
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

/// Records per checkpointed range of `ti-ingest upload`: what an interrupted upload redoes.
const CLI_RANGE_RECORDS: u64 = 10_000;

/// `ti-ingest upload` of one file, in checkpointed ranges with a progress bar: Ctrl-C stops it
/// (returning `None`), and the same command later resumes after the last completed range
/// (records of the interrupted range are sent again; uploads are idempotent by id).
async fn upload_resumable(file: &Path, ctx: &RunContext) -> Result<Option<RunOutcome>> {
    use crate::work::{assemble, Part};
    use std::sync::Arc;

    let meta = std::fs::metadata(file).with_context(|| format!("opening {}", file.display()))?;
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // The checkpoints belong to this file in this version, for this target.
    let key = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!(
            "{}\n{}\n{modified}\n{}",
            canonical.display(),
            meta.len(),
            ctx.uploader.target_name()
        )
        .as_bytes(),
    );
    let dir = checkpoint_root().join(key.to_string());
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the checkpoint folder {}", dir.display()))?;
    let mut parts: Vec<Part> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path)?;
            match serde_json::from_slice::<Part>(&bytes) {
                Ok(p) => parts.push(p),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable checkpoint")
                }
            }
        }
    }
    parts.sort_by_key(|p| p.start);
    // Resume after the contiguous checkpoints from record 0.
    let mut start = 0u64;
    let mut kept = Vec::new();
    for p in parts {
        if p.start != start {
            break;
        }
        let next = p.next;
        kept.push(p);
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    let finished = kept.last().is_some_and(|p| p.next.is_none());
    if start > 0 && !finished {
        eprintln!(
            "{}: resuming after record {start} (checkpoints in {})",
            file.display(),
            dir.display()
        );
    }
    let done_before = kept
        .iter()
        .fold(ti_core::report::Summary::default(), |mut a, p| {
            a.records += p.report.summary.records;
            a.uploaded += p.report.summary.uploaded;
            a.rejected += p.report.summary.rejected;
            a
        });
    let bar = progress_bar(file, done_before, ctx, false);
    let mut parts = kept;
    while !finished && parts.last().is_none_or(|p| p.next.is_some()) {
        let progress = Arc::new(crate::pipeline::Progress::default());
        bar.attach(progress.clone());
        let mut range_ctx = ctx.clone();
        range_ctx.range = start..start.saturating_add(CLI_RANGE_RECORDS);
        range_ctx.progress = Some(progress.clone());
        let run = run_file(file, &range_ctx);
        let outcome = tokio::select! {
            o = run => o?,
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                eprintln!(
                    "\ninterrupted: records before {start} are uploaded and checkpointed; run the same command again to resume"
                );
                return Ok(None);
            }
        };
        let part = Part::from_outcome(start, &outcome);
        let path = dir.join(format!("{start:015}.json"));
        std::fs::write(&path, serde_json::to_vec(&part)?)
            .with_context(|| format!("writing the checkpoint {}", path.display()))?;
        bar.complete(&part.report.summary);
        let next = part.next;
        parts.push(part);
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    bar.finish();
    let outcome =
        assemble(parts).map_err(|e| anyhow::anyhow!("assembling the checkpoints: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Some(outcome))
}

/// Where `upload` keeps its checkpoints (one folder per file, version and target, removed once
/// the file's run completes): `TI_CHECKPOINT_DIR`, else the user's state directory,
/// `$XDG_STATE_HOME/ti-ingest/checkpoints`, else `~/.local/state/ti-ingest/checkpoints` (the XDG
/// Base Directory Specification 0.8: "$XDG_STATE_HOME defines the base directory relative to
/// which user-specific state files should be stored. If $XDG_STATE_HOME is either not set or
/// empty, a default equal to $HOME/.local/state should be used"; a relative value is invalid and
/// ignored); on Windows `%LOCALAPPDATA%\ti-ingest\checkpoints`. Never the working directory.
fn checkpoint_root() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("TI_CHECKPOINT_DIR") {
        return dir;
    }
    let state = var("XDG_STATE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".local").join("state")))
        .or_else(|| var("LOCALAPPDATA"))
        .unwrap_or_else(std::env::temp_dir);
    state.join("ti-ingest").join("checkpoints")
}

/// The progress bar of `upload` and `validate` (drawn only on a terminal): records read,
/// uploaded (or valid) and rejected, and the upload rate against the identity's quota (or the
/// validation rate).
struct Bar {
    bar: indicatif::ProgressBar,
    done: std::sync::Arc<std::sync::Mutex<ti_core::report::Summary>>,
    current: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<crate::pipeline::Progress>>>>,
    ticker: tokio::task::JoinHandle<()>,
}

fn progress_bar(
    file: &Path,
    done: ti_core::report::Summary,
    ctx: &RunContext,
    validate_only: bool,
) -> Bar {
    use std::sync::{Arc, Mutex};
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(file.display().to_string());
    let settings = ctx.uploader.settings();
    let quota_per_min =
        (settings.max_requests_per_minute as f64) * (settings.batch_size as f64) * 60.0
            / settings.rate_window.as_secs_f64().max(1.0);
    let done = Arc::new(Mutex::new(done));
    let current: Arc<Mutex<Option<Arc<crate::pipeline::Progress>>>> = Arc::new(Mutex::new(None));
    let (b, d, c) = (bar.clone(), done.clone(), current.clone());
    let ticker = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let base = d.lock().map(|s| s.uploaded).unwrap_or(0);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let mut s = d.lock().map(|s| *s).unwrap_or_default();
            if let Some(p) = c.lock().ok().and_then(|c| c.clone()) {
                let now = p.snapshot();
                s.records += now.records;
                s.uploaded += now.uploaded;
                s.rejected += now.rejected;
            }
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            if validate_only {
                b.set_message(format!(
                    "read {} · valid {} · rejected {} · {:.0} records/s",
                    s.records,
                    s.uploaded,
                    s.rejected,
                    s.records as f64 / (minutes * 60.0).max(0.001)
                ));
                b.tick();
                continue;
            }
            let rate = if minutes > 0.0 {
                (s.uploaded.saturating_sub(base)) as f64 / minutes
            } else {
                0.0
            };
            b.set_message(format!(
                "read {} · uploaded {} · rejected {} · {:.0}/min ({:.0}% of the quota)",
                s.records,
                s.uploaded,
                s.rejected,
                rate,
                100.0 * rate / quota_per_min.max(1.0)
            ));
            b.tick();
        }
    });
    Bar {
        bar,
        done,
        current,
        ticker,
    }
}

impl Bar {
    fn attach(&self, p: std::sync::Arc<crate::pipeline::Progress>) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(p);
        }
    }

    /// A range finished: its counts move from the live counters to the done total.
    fn complete(&self, s: &ti_core::report::Summary) {
        if let (Ok(mut d), Ok(mut c)) = (self.done.lock(), self.current.lock()) {
            d.records += s.records;
            d.uploaded += s.uploaded;
            d.rejected += s.rejected;
            *c = None;
        }
    }

    fn finish(&self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
