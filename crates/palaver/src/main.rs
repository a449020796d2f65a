use std::process::ExitCode;

use clap::Parser;
use palaver::config::{Cli, Command};
use palaver::{startup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => startup::healthcheck(config.listen).await,
        Command::User(command) => {
            telemetry::init_logging(config.log_format, "warn");
            palaver::auth::cli::run(&config, command).await
        }
        Command::Migrate => {
            telemetry::init_logging(config.log_format, &config.log);
            match palaver::store::connect(&config).await {
                Ok(_) => {
                    tracing::info!(database = %config.database_url(), "migrations applied");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    tracing::error!(%error, "migration failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            telemetry::init_logging(config.log_format, &config.log);
            match startup::Application::build(config).await {
                Ok(app) => match app.run_until_stopped().await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        tracing::error!(%error, "server failed");
                        ExitCode::FAILURE
                    }
                },
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "cannot start");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
