//! A real S3 API for the tests, the e2e runner and the bench: `moto_server` (`moto[server]` from
//! `PyPI`, which `cargo xtask venv` installs into `target/moto-venv`) on a free loopback port,
//! stopped when dropped, and the few plain HTTP requests they make of it themselves (make a
//! bucket, list uploads in progress, read or delete an object).
//!
//! The standard library only, and errors as one line of text, so that each user wraps them its
//! own way (the tests panic, the e2e runner reports, xtask adds context).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `moto_server` may take to listen (a cold start on a loaded 2-core machine takes a
/// few seconds).
const START_WITHIN: Duration = Duration::from_secs(60);

/// Where `moto_server` is: `$MOTO_SERVER`, else `moto-venv/bin/moto_server` under the target
/// directory (`$CARGO_TARGET_DIR`, else the workspace's `target`: what `cargo xtask venv` makes),
/// else the `PATH`.
///
/// # Errors
///
/// None of them has it; the line says how to install it.
pub fn server() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let venv = target.join("moto-venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.exists())
        })
        .ok_or_else(|| {
            "moto_server not found: run `cargo xtask venv` (it installs moto[server] into \
             target/moto-venv), or pip install 'moto[server]', or set MOTO_SERVER"
                .to_owned()
        })
}

/// A loopback port nothing listens on (as far as anyone can tell).
///
/// # Errors
///
/// The system gave no port.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free loopback port: {e}"))
}

/// A running `moto_server`, killed and reaped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts one with `env` added to its environment (`INITIAL_NO_AUTH_ACTION_COUNT=0`: one
    /// that checks credentials), its output into `log` (else discarded), and waits until it
    /// listens.
    ///
    /// # Errors
    ///
    /// It is not installed, does not start, exits, or does not listen within a minute; the line
    /// ends with its log, when there is one.
    pub fn start(env: &[(&str, &str)], log: Option<&Path>) -> Result<Moto, String> {
        let bin = server()?;
        let port = free_port()?;
        let mut command = Command::new(&bin);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        if let Some(log) = log {
            let file = std::fs::File::create(log)
                .map_err(|e| format!("creating {}: {e}", log.display()))?;
            let copy = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
            command.stdout(copy).stderr(file);
        } else {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = command.spawn().map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut moto = Moto { child, port };
        let started = Instant::now();
        let logged = || log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            match moto.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(format!(
                        "{} exited ({status}) before listening: {}",
                        bin.display(),
                        logged().trim()
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for {}: {e}", bin.display())),
            }
            if started.elapsed() > START_WITHIN {
                return Err(format!(
                    "{} did not listen on port {port} within {} s: {}",
                    bin.display(),
                    START_WITHIN.as_secs(),
                    logged().trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request without a body, over a plain HTTP/1.1 connection, with `headers` beside
    /// `Host`: the status and the body. moto takes unsigned requests for buckets and listings,
    /// but serves or deletes an object only for a request with an `Authorization` header, which
    /// it does not check unless told to ([`DUMMY_AUTHORIZATION`]).
    ///
    /// # Errors
    ///
    /// The connection fails, or the answer is not one the function reads (no end of headers, or
    /// a chunked body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let what = |e: &dyn std::fmt::Display| format!("{method} {path} to moto: {e}");
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| what(&e))?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| what(&e))?;
        let mut fields = String::new();
        for (name, value) in headers {
            let _ = write!(fields, "{name}: {value}\r\n");
        }
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{fields}Content-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        stream.write_all(head.as_bytes()).map_err(|e| what(&e))?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(|e| what(&e))?;
        let Some((head, body)) = answer.split_once("\r\n\r\n") else {
            return Err(what(&format!("no end of headers in {answer:?}")));
        };
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            return Err(what(&"a chunked answer, which this client does not read"));
        }
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_owned()))
    }

    /// [`Moto::request`] without headers.
    ///
    /// # Errors
    ///
    /// As [`Moto::request`].
    pub fn http(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        self.request(method, path, &[])
    }

    /// Creates `bucket`.
    ///
    /// # Errors
    ///
    /// The request fails or moto does not answer 200.
    pub fn bucket(&self, bucket: &str) -> Result<(), String> {
        match self.http("PUT", &format!("/{bucket}"))? {
            (200, _) => Ok(()),
            (status, body) => Err(format!("creating bucket {bucket}: {status} {body}")),
        }
    }

    /// How many multipart uploads are in progress in `bucket`.
    ///
    /// # Errors
    ///
    /// The request fails or moto does not answer 200.
    pub fn uploads(&self, bucket: &str) -> Result<usize, String> {
        match self.http("GET", &format!("/{bucket}?uploads"))? {
            (200, body) => Ok(body.matches("<UploadId>").count()),
            (status, body) => Err(format!("listing the uploads of {bucket}: {status} {body}")),
        }
    }
}

/// An `Authorization` header moto accepts for reading and deleting objects when it does not
/// check signatures (its default).
pub const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
     Credential=testing/20000101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
