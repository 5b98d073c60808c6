//! `--demo`: the embedded simulator on loopback, so that every command can be tried on a fresh
//! machine without a portal or credentials.

use iptvportal_sim::{Sim, SimConfig};

/// Rows of the demo's big tables: enough that a dump takes long enough to watch the bars and to
/// try Ctrl-C and resume; every other table keeps the simulator's default size.
const DEMO_ROWS: [(&str, u64); 3] =
    [("terminal", 200_000), ("tv_program", 100_000), ("terminal_playlog", 100_000)];

/// The demo portal's credentials: the simulator's defaults.
const USERNAME: &str = "admin";
const PASSWORD: &str = "admin";

/// Where the demo portal listens and how to log in.
pub(crate) struct DemoPortal {
    pub(crate) url: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

/// A running demo portal; it stops (and its database is deleted) when this is dropped.
pub(crate) struct Demo {
    pub(crate) portal: DemoPortal,
    sim: Sim,
}

impl Demo {
    /// Deletes the demo's database: for an exit that skips destructors.
    pub(crate) fn files_remover(&self) -> impl FnOnce() + Send + 'static {
        self.sim.temp_files_remover()
    }
}

/// Generates the demo data and starts serving it. `overrides` (the hidden `--demo-rows`) replaces
/// the sizes of the tables it names.
/// The name a `--demo` dump records as its portal: `demo`, with the row counts when they are not
/// the default (`demo terminal=100`). A demo portal listens on a new port every run, over the same
/// generated data, so it is known by its name rather than its URL.
pub(crate) fn identity(overrides: &[(String, u64)]) -> String {
    let rows: Vec<String> = overrides.iter().map(|(t, n)| format!("{t}={n}")).collect();
    if rows.is_empty() { "demo".to_owned() } else { format!("demo {}", rows.join(",")) }
}

pub(crate) async fn start(overrides: &[(String, u64)]) -> anyhow::Result<Demo> {
    let mut config = SimConfig::default().credentials(USERNAME, PASSWORD);
    let mut sizes = iptvportal_sim::default_rows();
    for (table, rows) in DEMO_ROWS {
        sizes.insert(table, rows);
    }
    for (table, rows) in overrides {
        let Some(known) = iptvportal_catalog::table(table) else {
            return Err(crate::failure::Hinted::new(
                format!("--demo-rows names {table:?}, which is not a table of the catalog"),
                "see docs/tables.md for the table names",
            )
            .into());
        };
        sizes.insert(known.name, *rows);
    }
    for (table, rows) in &sizes {
        config = config.rows(table, *rows);
    }
    let total: u64 = sizes.values().sum();
    // Generating a few hundred thousand rows takes a moment; say why nothing else happens yet.
    crate::output::note(&format!(
        "demo: using a local demo portal with generated data ({total} rows over {} tables; user {USERNAME})",
        sizes.len()
    ));
    let sim = Sim::start(config).await.map_err(|e| {
        crate::failure::Hinted::new(
            format!("cannot start the demo portal: {e}"),
            "check that loopback networking and the temp directory work",
        )
    })?;
    let portal = DemoPortal {
        url: sim.url().to_owned(),
        username: USERNAME.to_owned(),
        password: PASSWORD.to_owned(),
    };
    Ok(Demo { portal, sim })
}
