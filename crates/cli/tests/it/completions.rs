//! `iptvportal completions SHELL`: a script for every shell `clap_complete` knows, naming this
//! build's subcommands and options, and clap's usage error for a shell it does not.

use crate::{bare, run, success};

#[test]
fn the_bash_script_completes_subcommands_options_and_values() {
    let script = success(bare().args(["completions", "bash"]));
    assert!(
        script.contains("_iptvportal()") && script.contains("complete -F _iptvportal"),
        "{script}"
    );
    for word in ["dump", "select", "auth", "tables", "status", "verify", "completions"] {
        assert!(
            script.contains(&format!("iptvportal__subcmd__{word})")),
            "no {word} in the script"
        );
    }
    for option in ["--strategy", "--format", "--where", "--demo", "--out"] {
        assert!(script.contains(option), "no {option} in the script");
    }
    // The values of an option with a fixed set are completed too.
    assert!(script.contains("id-range") && script.contains("parquet"), "{script}");
    // What --help hides stays out of it.
    assert!(!script.contains("__reference") && !script.contains("__man"), "{script}");
    assert!(!script.contains("--demo-rows"), "{script}");
}

#[test]
fn every_shell_gets_a_script() {
    for (shell, marker) in [
        ("bash", "complete -F _iptvportal"),
        ("zsh", "#compdef iptvportal"),
        ("fish", "complete -c iptvportal"),
        ("elvish", "edit:completion:arg-completer[iptvportal]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = success(bare().args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: no {marker:?} in\n{script}");
        assert!(
            script.contains("strategy") && script.contains("id-range"),
            "{shell}: no --strategy"
        );
        assert!(!script.contains("__reference") && !script.contains("demo-rows"), "{shell}");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let r = run(bare().args(["completions", "tcsh"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("error: invalid value 'tcsh' for '<SHELL>'")
            && r.stderr.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{}",
        r.stderr
    );
    let r = run(bare().arg("completions"));
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn completions_read_no_config_file() {
    // A shell that sources the script at startup must not break on a broken config file.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "this is not toml").unwrap();
    let script = success(bare().arg("--config").arg(&config).args(["completions", "fish"]));
    assert!(script.contains("complete -c iptvportal"), "{script}");
    let r = run(bare().arg("--config").arg(&config).arg("status"));
    assert_eq!(r.code, 1, "the broken file is refused elsewhere: {}", r.stderr);
}

#[test]
fn the_man_pages_are_roff_of_every_visible_command() {
    let json = success(bare().arg("__man"));
    let pages: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    for name in ["iptvportal.1", "iptvportal-dump.1", "iptvportal-completions.1"] {
        let page = pages[name].as_str().unwrap();
        let title = name.trim_end_matches(".1");
        assert!(page.contains(&format!(".TH {title} 1 ")) && page.contains(".SH NAME"), "{page}");
    }
    assert!(pages["iptvportal-dump.1"].as_str().unwrap().contains("strategy"));
    assert!(!pages.keys().any(|k| k.contains("__") || k == "iptvportal-help.1"), "{pages:?}");
}
