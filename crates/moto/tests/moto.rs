//! The starter against the real `moto_server` (installed by `cargo xtask venv`, as CI does).

use std::net::TcpStream;

use iptvportal_moto::{DUMMY_AUTHORIZATION, Moto};

#[test]
fn starts_answers_and_stops_when_dropped() {
    let log = tempfile_path("moto-starter.log");
    let moto = Moto::start(&[], Some(&log)).unwrap();
    assert_eq!(moto.url(), format!("http://127.0.0.1:{}", moto.port()));
    moto.bucket("starter").unwrap();
    assert_eq!(moto.uploads("starter").unwrap(), 0);
    // An object that is not there: moto answers it only with an Authorization header.
    let auth = [("Authorization", DUMMY_AUTHORIZATION)];
    let (status, body) = moto.request("GET", "/starter/none.json", &auth).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NoSuchKey"), "{body}");
    let err = moto.uploads("no-such-bucket").unwrap_err();
    assert!(err.starts_with("listing the uploads of no-such-bucket: 404 "), "{err}");

    let port = moto.port();
    drop(moto);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening on {port}");
    let _ = std::fs::remove_file(log);
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
