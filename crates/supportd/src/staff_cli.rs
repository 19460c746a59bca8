//! `supportd staff add` and `supportd token create`: the accounts and tokens
//! the web server authenticates. Passwords are read from stdin (or a prompt on
//! a terminal) and stored as argon2 hashes; tokens are printed once and stored
//! as SHA-256 hashes.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use supportd_store::{StaffRole, Store};

/// Shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 10;

/// Adds staff account `name` with `role`, its password read from stdin.
pub async fn add_staff(store: &Store, name: &str, role: &str) -> anyhow::Result<()> {
    let role: StaffRole = role.parse()?;
    check_name(name)?;
    let password = read_password(name)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    let password_hash = supportd_web::hash_password(&password)?;
    if !store
        .add_staff(name, role, &password_hash, crate::now())
        .await?
    {
        bail!("a staff account named `{name}` exists already");
    }
    println!("staff account {name} added ({role})");
    Ok(())
}

/// Creates API token `name` with `role` and prints it; it cannot be shown again.
pub async fn create_token(store: &Store, name: &str, role: &str) -> anyhow::Result<()> {
    let role: StaffRole = role.parse()?;
    check_name(name)?;
    let (token, token_hash) = supportd_web::new_api_token()?;
    if !store
        .add_api_token(name, role, &token_hash, crate::now())
        .await?
    {
        bail!("an API token named `{name}` exists already");
    }
    eprintln!("API token {name} created ({role}); it is shown only this once:");
    println!("{token}");
    Ok(())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !valid {
        bail!("`{name}` is not a usable name: 1 to 64 letters, digits, . _ - or @");
    }
    Ok(())
}

/// The first line of stdin; on a terminal, after a prompt (the input is echoed:
/// pipe the password in to keep it off the screen).
fn read_password(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for {name}: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
