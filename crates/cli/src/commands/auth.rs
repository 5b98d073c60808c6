//! `iptvportal auth`: log in and say who we are.

use std::io::Write;

use iptvportal_client::Client;

/// Logs in and prints the portal, the user and what the portal says about them. The session id is
/// never printed: it is a credential.
pub(super) async fn run(client: &Client, out: &mut impl Write) -> anyhow::Result<()> {
    let info = client.authorize().await?;
    writeln!(out, "logged in to {}", client.base_url())?;
    writeln!(out, "username: {}", client.config().login())?;
    if let Some(name) = &info.name {
        writeln!(out, "name:     {name}")?;
    }
    if let Some(role) = &info.role {
        writeln!(out, "role:     {role}")?;
    }
    if let Some(id) = info.user_id {
        writeln!(out, "user id:  {id}")?;
    }
    if let Some(language) = &info.language {
        writeln!(out, "language: {language}")?;
    }
    Ok(())
}
