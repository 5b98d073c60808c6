//! A real S3 API for tests: [`iptvportal_moto`]'s `moto_server` on a loopback port, stopped when
//! dropped, with its errors as panics (the test fails with the line).

pub use iptvportal_moto::server as moto_server;

/// A running `moto_server`; its fallible methods (`url`, `port`, `request`, ...) through `Deref`.
#[derive(Debug)]
pub struct Moto(iptvportal_moto::Moto);

impl std::ops::Deref for Moto {
    type Target = iptvportal_moto::Moto;

    fn deref(&self) -> &iptvportal_moto::Moto {
        &self.0
    }
}

/// A loopback port nothing listens on (as far as anyone can tell).
///
/// # Panics
///
/// The system gave no port.
pub fn free_port() -> u16 {
    iptvportal_moto::free_port().unwrap_or_else(|e| panic!("{e}"))
}

impl Moto {
    /// Starts one and waits until it listens.
    ///
    /// # Panics
    ///
    /// It is not installed or does not start (the message says how to install it).
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Starts one with `env` (`INITIAL_NO_AUTH_ACTION_COUNT=0`: one that checks credentials).
    ///
    /// # Panics
    ///
    /// As [`Moto::start`].
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        Moto(iptvportal_moto::Moto::start(env, None).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Creates `bucket`.
    ///
    /// # Panics
    ///
    /// moto does not create it.
    pub fn bucket(&self, bucket: &str) {
        self.0.bucket(bucket).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The multipart uploads in progress in `bucket`.
    ///
    /// # Panics
    ///
    /// The request fails.
    pub fn uploads(&self, bucket: &str) -> usize {
        self.0.uploads(bucket).unwrap_or_else(|e| panic!("{e}"))
    }
}
