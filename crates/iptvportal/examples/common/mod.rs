//! What every example needs: a portal to talk to.
//!
//! With `IPTVPORTAL_URL` or `IPTVPORTAL_DOMAIN` set (and `IPTVPORTAL_USERNAME`,
//! `IPTVPORTAL_PASSWORD`), the examples talk to that portal. Without, they start the workspace's
//! simulator on loopback, so `cargo run -p iptvportal --example single_table` works anywhere.

use std::error::Error;

use iptvportal::{Client, ClientConfig};
use iptvportal_sim::{Sim, SimConfig};

/// A client, and the simulator behind it when there is one (kept alive as long as the portal).
pub(crate) struct Portal {
    pub(crate) client: Client,
    _sim: Option<Sim>,
}

pub(crate) async fn connect() -> Result<Portal, Box<dyn Error>> {
    let configured =
        ["IPTVPORTAL_URL", "IPTVPORTAL_DOMAIN"].iter().any(|v| std::env::var_os(v).is_some());
    if configured {
        return Ok(Portal { client: Client::new(ClientConfig::from_env()?)?, _sim: None });
    }
    let sim = Sim::start(SimConfig::default()).await?;
    eprintln!("no IPTVPORTAL_URL set: using a local simulator at {}", sim.url());
    let client = Client::new(ClientConfig::new(sim.url())?.credentials("admin", "admin"))?;
    Ok(Portal { client, _sim: Some(sim) })
}
