//! `ti-ingest pull [--feed NAME]`: the same pulls as the `PullFeeds` timer, once, with the
//! handler's settings and identity from the environment ([`crate::startup::AppState`]).

use std::process::ExitCode;

use anyhow::Result;

use super::exit::Exit;
use crate::settings::Env;
use crate::startup::AppState;

/// Exit 0 when every feed was pulled (or not modified), 1 when records were rejected, 2 when a
/// feed failed or nothing could run.
pub async fn pull(feed: Option<String>) -> Result<ExitCode> {
    let app = AppState::build(&Env::from_process())?;
    // A credential that cannot work is found before any feed is read: one message, exit 2.
    if let Err(message) = crate::doctor::preflight(
        &app.credential,
        app.uploader.settings(),
        false,
        app.client_id.as_deref(),
    )
    .await
    {
        eprintln!("ti-ingest: {message}");
        return Ok(Exit::Unusable.into());
    }
    let outcomes = app.puller.run(feed.as_deref()).await?;
    if outcomes.is_empty() {
        eprintln!(
            "ti-ingest: no feeds configured at {}",
            app.puller.location()
        );
    }
    for o in &outcomes {
        eprintln!("{}", o.line());
    }
    Ok(Exit::worst(outcomes.iter().map(Exit::of_feed)).into())
}
