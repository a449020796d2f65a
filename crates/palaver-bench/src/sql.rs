//! `sql`: runs a SQL script against a SQLite database with the server's own
//! bundled SQLite (through sqlx), for fills that need its FTS5 (migration
//! 0004's `contentless_delete` tables need SQLite 3.43+, newer than many
//! `sqlite3` shells). `:name` in the script is replaced by the value given
//! with `--set name=value` (numbers only, so no quoting is involved).

use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use crate::cli::SqlArgs;

#[derive(Debug, Serialize)]
pub struct SqlSummary {
    pub command: &'static str,
    pub file: String,
    pub seconds: f64,
}

/// `script` with every `:name` of `sets` (`name=value`, value an integer)
/// replaced, longest names first.
pub fn substitute(script: &str, sets: &[String]) -> anyhow::Result<String> {
    let mut pairs = Vec::new();
    for set in sets {
        let (name, value) = set
            .split_once('=')
            .with_context(|| format!("--set {set:?}: not name=value"))?;
        if value.parse::<i64>().is_err() {
            bail!("--set {set:?}: the value must be an integer");
        }
        pairs.push((name.to_owned(), value.to_owned()));
    }
    pairs.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = script.to_owned();
    for (name, value) in pairs {
        out = out.replace(&format!(":{name}"), &value);
    }
    Ok(out)
}

pub async fn run(args: SqlArgs) -> anyhow::Result<SqlSummary> {
    let script = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let script = substitute(&script, &args.set)?;
    let options = SqliteConnectOptions::from_str(&args.database_url)
        .with_context(|| format!("database URL {:?}", args.database_url))?;
    let mut connection = options.connect().await.context("opening the database")?;
    let started = Instant::now();
    sqlx::raw_sql(&script)
        .execute(&mut connection)
        .await
        .with_context(|| format!("running {}", args.file.display()))?;
    Ok(SqlSummary {
        command: "sql",
        file: args.file.display().to_string(),
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_longest_first_and_values_must_be_numbers() {
        let sets = vec!["rooms=500".to_owned(), "rooms_max=7".to_owned()];
        assert_eq!(
            substitute("SELECT :rooms, :rooms_max", &sets).unwrap(),
            "SELECT 500, 7"
        );
        assert!(substitute("x", &["rooms=1; DROP".to_owned()]).is_err());
        assert!(substitute("x", &["rooms".to_owned()]).is_err());
    }

    #[tokio::test]
    async fn a_script_runs_against_the_bundled_sqlite() {
        let dir = std::env::temp_dir().join(crate::target::run_id("sql-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.sql");
        std::fs::write(
            &file,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (:n);\n\
             CREATE VIRTUAL TABLE f USING fts5 (text, content = '', contentless_delete = 1);",
        )
        .unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let args = SqlArgs {
            database_url: url.clone(),
            file,
            set: vec!["n=42".to_owned()],
        };
        run(args).await.unwrap();
        let mut c = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let x: i64 = sqlx::query_scalar("SELECT x FROM t")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(x, 42);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
