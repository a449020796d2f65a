//! `palaver user add|set-role|reset-password`: account management for
//! operators, on the database of `--database-url`.

use std::io::BufRead;
use std::process::ExitCode;

use crate::auth::password::Passwords;
use crate::config::{Config, UserCommand};
use crate::domain::now_millis;
use crate::identity::{DisplayName, Password, Role, Username};
use crate::store::accounts::{CreateError, NewUser};

/// Runs one `palaver user` command; errors go to stderr, results to stdout
/// as JSON.
pub async fn run(config: &Config, command: UserCommand) -> ExitCode {
    match execute(config, command).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("palaver user: {error}");
            ExitCode::FAILURE
        }
    }
}

fn read_password() -> Result<Password, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    let line = line.trim_end_matches(['\n', '\r']);
    Password::parse(line).map_err(|e| e.message)
}

async fn execute(config: &Config, command: UserCommand) -> Result<String, String> {
    let store = crate::store::connect(config)
        .await
        .map_err(|e| format!("opening {}: {e}", config.database_url()))?;
    let accounts = store
        .accounts()
        .ok_or_else(|| "this store holds no accounts".to_owned())?;
    let passwords = Passwords::default();
    let user = match command {
        UserCommand::Add {
            username,
            display_name,
            admin,
        } => {
            let role = if admin { Role::Admin } else { Role::Member };
            let username = Username::parse(&username).map_err(|e| e.message)?;
            let display_name =
                DisplayName::parse(display_name.as_deref().unwrap_or(username.as_str()))
                    .map_err(|e| e.message)?;
            let password = read_password()?;
            let hash = passwords.hash(&password).await.map_err(|e| e.to_string())?;
            accounts
                .create_user(
                    NewUser {
                        username,
                        display_name: display_name.as_str().to_owned(),
                        role: Some(role),
                        password_hash: Some(hash),
                        oidc_subject: None,
                    },
                    now_millis(),
                )
                .await
                .map_err(|e| match e {
                    CreateError::Taken => "that username is taken".to_owned(),
                    CreateError::Store(e) => e.to_string(),
                })?
        }
        UserCommand::SetRole { username, role } => {
            let username = Username::parse(&username).map_err(|e| e.message)?;
            accounts
                .set_role(&username, role)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user named {username}"))?
        }
        UserCommand::ResetPassword { username } => {
            let username = Username::parse(&username).map_err(|e| e.message)?;
            let password = read_password()?;
            let hash = passwords.hash(&password).await.map_err(|e| e.to_string())?;
            let user = accounts
                .set_password_hash(&username, &hash)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user named {username}"))?;
            // Sign them out everywhere: suspend-and-reinstate would notify,
            // but a running server's caches also expire within their TTL.
            accounts
                .revoke_sessions(&user.id)
                .await
                .map_err(|e| e.to_string())?;
            user
        }
    };
    serde_json::to_string(&user).map_err(|e| e.to_string())
}
