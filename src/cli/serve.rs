//! `ti-ingest serve`: the Functions custom handler. [`Application::build`] builds the app
//! ([`crate::startup`]), checks the feeds configuration and binds the port (port 0 picks a free
//! one, which [`Application::port`] reports); [`Application::run_until_stopped`] serves the
//! router until Ctrl-C or SIGTERM (the host stops its worker with SIGTERM).

use std::net::SocketAddr;

use anyhow::{Context, Result};

use crate::functions;
use crate::settings::Env;
use crate::startup::{self, AppState};

/// The handler, built and bound, not yet serving.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Builds the app from `env` and binds `127.0.0.1:port`. A bad setting or a refused feeds
    /// configuration is an `Err` naming it, before anything listens.
    pub async fn build(env: &Env, port: u16) -> Result<Self> {
        let state = AppState::build(env)?;
        startup::check_feeds_config(&state).await?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        Ok(Application { listener, state })
    }

    /// The port bound (the one picked when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = self.listener.local_addr().context("the bound address")?;
        tracing::info!(%addr, target = self.state.uploader.target_name(), "ti-ingest handler listening");
        axum::serve(self.listener, functions::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving")
    }
}

/// `serve`: build, then serve until Ctrl-C or SIGTERM.
pub async fn serve(port: u16) -> Result<()> {
    Application::build(&Env::from_process(), port)
        .await?
        .run_until_stopped(shutdown_signal())
        .await
}

/// Ctrl-C, or SIGTERM on Unix.
pub async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The application built in-process on port 0 against the local stack (Azurite: see
    /// scripts/setup-azurite.sh): it reports the port it bound and answers the host's probe; a
    /// refused feeds configuration stops the build with the document's message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_application_binds_port_0_reports_it_and_refuses_a_bad_feeds_configuration() {
        let stack = devkit::Stack::start(Default::default())
            .await
            .expect("the stack starts (run scripts/setup-azurite.sh first)");
        let env = Env::from_pairs(stack.handler_env());
        let app = Application::build(&env, 0).await.unwrap();
        let port = app.port();
        assert_ne!(port, 0);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let probe = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap();
        assert_eq!(probe.status(), 200);
        assert_eq!(probe.text().await.unwrap(), "ti-ingest");
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();

        stack
            .storage()
            .create_container("indicator-config")
            .await
            .unwrap();
        stack
            .storage()
            .upload_blob(
                "indicator-config",
                "feeds.json",
                br#"{"feeds": [], "token": "hunter2-hunter2"}"#.to_vec(),
            )
            .await
            .unwrap();
        let err = match Application::build(&env, 0).await {
            Ok(_) => panic!("a refused feeds configuration must stop start-up"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.starts_with("the feeds configuration indicator-config/feeds.json: the feeds configuration holds secret values inline ($.token)"),
            "{err}"
        );
    }
}
