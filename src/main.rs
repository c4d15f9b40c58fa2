use std::process::ExitCode;

use clap::{Parser, Subcommand};
use codesherpa::{app, config::Config, jobs::admin::JobsCommand, memory, telemetry};
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
    /// See and act on background jobs (on DATABASE_URL; a server may be running).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
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
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Jobs { command } => return jobs(config, command).await,
        Command::Migrate => {
            telemetry::init(&config.telemetry);
            app::connect_and_migrate(&config).await.map(|db| {
                tracing::info!(database = db.backend(), "migrations applied");
            })
        }
        Command::Serve => {
            telemetry::init(&config.telemetry);
            match TcpListener::bind((config.http.host, config.http.port)).await {
                Ok(listener) => {
                    memory::trim_after_bursts();
                    app::run(config, listener, shutdown_signal()).await
                }
                Err(err) => Err(err.into()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `codesherpa jobs …`: its output on stdout, its errors (and any warning) on stderr.
async fn jobs(config: Config, command: JobsCommand) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let result = match app::operator(config).await {
        Ok((db, workers)) => {
            let result = codesherpa::jobs::admin::run(command, &db, &workers).await;
            db.close().await;
            result.map_err(|err| err.to_string())
        }
        Err(err) => Err(err.to_string()),
    };
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
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
