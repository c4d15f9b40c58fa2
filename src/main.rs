use std::process::ExitCode;

use clap::{Parser, Subcommand};
use codesherpa::{app, config::Config, memory, telemetry};
use tokio::net::TcpListener;

/// CodeSherpa API server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(err) = dotenvy::dotenv() {
        if !err.not_found() {
            eprintln!("error: cannot read .env: {err}");
            return ExitCode::FAILURE;
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&config.telemetry);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => app::connect_and_migrate(&config).await.map(|db| {
            tracing::info!(database = db.backend(), "migrations applied");
        }),
        Command::Serve => match TcpListener::bind((config.http.host, config.http.port)).await {
            Ok(listener) => {
                memory::trim_after_bursts();
                app::run(config, listener, shutdown_signal()).await
            }
            Err(err) => Err(err.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
