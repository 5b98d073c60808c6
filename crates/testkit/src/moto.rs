//! A real S3 API for tests: `moto_server` (`moto[server]` from `PyPI`) on a loopback port,
//! stopped when dropped, with the few unsigned requests tests need (moto takes them): make a
//! bucket, count the multipart uploads in progress.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `moto_server` is: `$MOTO_SERVER`, else `target/moto-venv/bin` (what `cargo xtask venv`
/// makes), else the `PATH`.
pub fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let venv = target.join("moto-venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found: run `cargo xtask venv` (it installs moto[server] into \
                 target/moto-venv), or pip install 'moto[server]', or set MOTO_SERVER"
            )
        })
}

/// A loopback port nothing listens on (as far as anyone can tell).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    /// Starts one and waits until it listens.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Starts one with `env` (`INITIAL_NO_AUTH_ACTION_COUNT=0`: one that checks credentials).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let moto = Moto { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned request: the status and the body.
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: \
             close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    /// Creates `bucket`.
    pub fn bucket(&self, bucket: &str) {
        let (status, body) = self.http("PUT", &format!("/{bucket}"));
        assert_eq!(status, 200, "creating bucket {bucket}: {body}");
    }

    /// The multipart uploads in progress in `bucket`.
    pub fn uploads(&self, bucket: &str) -> usize {
        self.http("GET", &format!("/{bucket}?uploads")).1.matches("<UploadId>").count()
    }
}
