//! A config file that cannot be read: at the default location, where no config was asked for, a
//! warning and the run goes on; named by `--config` or `IPTVPORTAL_CONFIG`, an error.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::dumping::portal;
use crate::{failure, run};

/// `auth` against `portal` with `XDG_CONFIG_HOME` at `xdg`.
fn auth(portal: &crate::Portal, xdg: &Path, flags: &[&str]) -> crate::Run {
    run(portal.cmd().env("XDG_CONFIG_HOME", xdg).args(flags).arg("auth"))
}

#[test]
fn an_unreadable_default_config_is_a_warning_and_an_explicit_one_an_error() {
    let portal = portal(10, 0);
    let root = tempfile::tempdir().unwrap();

    // A directory where the file would be.
    let xdg = root.path().join("dir");
    let path = xdg.join("iptvportal/config.toml");
    std::fs::create_dir_all(&path).unwrap();
    let r = auth(&portal, &xdg, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "warning: cannot read the config file {}: Is a directory (os error 21); going on \
             without it; make it a readable file, or pass --config FILE\n",
            path.display()
        )
    );
    assert!(r.stdout.starts_with("logged in to "), "{}", r.stdout);
    let r = auth(&portal, &xdg, &["--quiet"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));

    // The same path asked for is an error, by option or by variable.
    let line = failure(portal.cmd().arg("--config").arg(&path).arg("auth"));
    assert_eq!(
        line,
        format!(
            "error: cannot read config file {}: Is a directory (os error 21); fix the path given \
             with --config or IPTVPORTAL_CONFIG, or create the file",
            path.display()
        )
    );
    let line = failure(portal.cmd().env("IPTVPORTAL_CONFIG", &path).arg("auth"));
    assert!(line.starts_with("error: cannot read config file "), "{line}");

    // A file without read permission, where this user cannot read it (root can).
    let xdg = root.path().join("mode000");
    let path = xdg.join("iptvportal/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "[dump]\nchunk_size = 10\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_err() {
        let r = auth(&portal, &xdg, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.starts_with(&format!(
                "warning: cannot read the config file {}: Permission denied",
                path.display()
            )),
            "{}",
            r.stderr
        );
        let r = run(portal.cmd().arg("--config").arg(&path).arg("auth"));
        assert_eq!(r.code, 1, "{}", r.stderr);
    }
}
