use std::process::ExitCode;

use clap::Parser;
use palaver_bench::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    palaver_bench::init_tls();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Send(args) => palaver_bench::send::run(args).await.map(print),
        Command::Mixed(args) => palaver_bench::mixed::run(args).await.map(print),
        Command::Read(args) => palaver_bench::read::run(args).await.map(print),
        Command::Fanout(args) => palaver_bench::fanout::run(args).await.map(print),
        Command::Startup(args) => palaver_bench::startup::run(args).await.map(print),
        Command::Typing(args) => palaver_bench::typing::run(args).await.map(print),
        Command::Online(args) => palaver_bench::online::run(args).await.map(print),
        Command::Sql(args) => palaver_bench::sql::run(args).await.map(print),
        Command::Ceiling(args) => palaver_bench::ceiling::run(args).await.map(|()| true),
        Command::Smoke(args) => palaver_bench::smoke::run(args).await.map(|report| {
            let passed = report.passed;
            print(report);
            passed
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("palaver-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a summary as pretty JSON; a summary always counts as success (the
/// numbers say how it went).
fn print<T: serde::Serialize>(summary: T) -> bool {
    match serde_json::to_string_pretty(&summary) {
        Ok(json) => println!("{json}"),
        Err(error) => eprintln!("palaver-bench: cannot print the summary: {error}"),
    }
    true
}
