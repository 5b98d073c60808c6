//! `iptvportal completions SHELL`: the shell's completion script, generated from the clap
//! definitions, so that it completes exactly the subcommands, options and values of this build.

use std::io::Write;
use std::sync::LazyLock;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

/// Writes `shell`'s completion script for `iptvportal` to `out`.
pub(crate) fn run(shell: Shell, out: &mut impl Write) -> anyhow::Result<()> {
    let mut cmd = visible(&DECLARED);
    // Into memory first: the generators panic on a failed write, and a closed pipe is the
    // reader's choice (`main` takes it as success), not a bug.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "iptvportal", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// The declared command line (not `settings::command`'s: the script is about names), kept for
/// the life of the process so that the names [`visible`] borrows from it are `'static`, as
/// `clap::Command::new` takes them.
static DECLARED: LazyLock<clap::Command> = LazyLock::new(Cli::command);

/// `cmd` without what it hides. `clap_complete` offers hidden subcommands and options like the
/// others (clap-rs/clap#1335), and clap has no way to remove one, so the command is assembled
/// again from its visible arguments and subcommands: nothing of the command line is restated
/// here, so the script cannot drift from it. Left out with the hidden parts are the argument
/// groups (which name them) and the settings of usage and help, which no script shows.
fn visible(cmd: &'static clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(visible));
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_help_shows_is_completed() {
        let mut cmd = visible(&DECLARED);
        cmd.build();
        let names: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
        assert!(names.contains(&"dump") && names.contains(&"completions"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("__")), "{names:?}");
        let dump = cmd.find_subcommand("dump").unwrap();
        let options: Vec<&str> = dump.get_arguments().filter_map(clap::Arg::get_long).collect();
        assert!(options.contains(&"strategy") && options.contains(&"demo"), "{options:?}");
        assert!(!options.contains(&"demo-rows"), "{options:?}");
        // Every visible subcommand and option of the declared command line is still there.
        let mut declared = Cli::command();
        declared.build();
        for sub in declared.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = sub.get_name();
            let kept = cmd.find_subcommand(name).unwrap_or_else(|| panic!("{name} is lost"));
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                assert!(
                    kept.get_arguments().any(|k| k.get_id() == arg.get_id()),
                    "{} {}",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
