//! One writer per table on a destination without locks: a lease object, taken with a conditional
//! create, renewed and released with conditional replaces, and taken over only once expired.
//!
//! What it guarantees (docs/adr/0006-destination-seam-and-lease.md): two runs never both *take*
//! a live lease, because taking it is a create-if-absent or a replace-if-unchanged that exactly one
//! of them wins. What it cannot guarantee alone: a holder stalled past its expiry (a suspended
//! machine) may still be running when another takes the lease over. The lease is therefore not the
//! fence. Every commit of a writer is itself conditional on the version of the object it replaces,
//! so a stalled writer's commit fails once another has committed; the lease keeps honest writers
//! from wasting work and names the holder in the refusal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Destination, Error, Version};

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// Who holds it, for messages (`host pid 1234`).
    pub holder: String,
    /// Unique to one taking of the lease: tells this run's lease from a later one of the same
    /// holder.
    pub token: String,
    /// Until when it holds (Unix seconds), unless renewed.
    pub expires_at: u64,
    /// Set when the holder let it go: free to take at once.
    #[serde(default)]
    pub released: bool,
}

/// A lease this run holds.
#[derive(Debug)]
pub struct Lease {
    key: String,
    ttl: Duration,
    holder: LeaseHolder,
    version: Version,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn encode(holder: &LeaseHolder) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(holder).expect("a lease serializes");
    bytes.push(b'\n');
    bytes
}

impl Lease {
    /// Takes the lease `key` on `dest` for `ttl`, as `who`. Refused with [`Error::Leased`] while
    /// another holder's lease is live; an expired or released one is taken over.
    pub async fn acquire(
        dest: &dyn Destination,
        key: &str,
        who: &str,
        ttl: Duration,
    ) -> Result<Lease, Error> {
        Lease::acquire_at(dest, key, who, ttl, SystemTime::now()).await
    }

    /// [`Lease::acquire`] at the time `now`.
    pub async fn acquire_at(
        dest: &dyn Destination,
        key: &str,
        who: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, Error> {
        Lease::acquire_with(dest, key, who, ttl, now, &|_| false).await
    }

    /// [`Lease::acquire_at`], also taking over a live lease whose holder `stale` says is gone
    /// (a run of this machine whose process is dead: the kernel, not the clock, says so).
    pub async fn acquire_with(
        dest: &dyn Destination,
        key: &str,
        who: &str,
        ttl: Duration,
        now: SystemTime,
        stale: &(dyn Fn(&LeaseHolder) -> bool + Sync),
    ) -> Result<Lease, Error> {
        let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let holder = LeaseHolder {
            holder: who.to_owned(),
            token: format!("{}-{nanos:x}", std::process::id()),
            expires_at: unix(now) + ttl.as_secs().max(1),
            released: false,
        };
        // Two rounds: a lease that vanished or expired between the read and the write is read
        // again once; losing the race twice means another run is taking it right now.
        for _ in 0..2 {
            let taken = match dest.read(key).await? {
                None => dest.create(key, encode(&holder)).await,
                Some(current) => {
                    let theirs: Option<LeaseHolder> = serde_json::from_slice(&current.bytes).ok();
                    match theirs {
                        Some(t) if !t.released && t.expires_at > unix(now) && !stale(&t) => {
                            return Err(Error::Leased {
                                place: dest.display(),
                                key: key.to_owned(),
                                holder: t.holder,
                                expires_in_secs: t.expires_at - unix(now),
                            });
                        }
                        // Expired, released, or not a lease this tool wrote: taken over.
                        _ => dest.replace(key, encode(&holder), &current.version).await,
                    }
                }
            };
            match taken {
                Ok(version) => return Ok(Lease { key: key.to_owned(), ttl, holder, version }),
                Err(Error::Exists { .. } | Error::Changed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Leased {
            place: dest.display(),
            key: key.to_owned(),
            holder: holder_of(dest, key).await,
            expires_in_secs: ttl.as_secs(),
        })
    }

    /// What the lease object says now.
    pub fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    /// Extends the lease by its ttl from `now`. [`Error::LeaseLost`] if it was taken over.
    pub async fn renew(&mut self, dest: &dyn Destination) -> Result<(), Error> {
        self.renew_at(dest, SystemTime::now()).await
    }

    /// [`Lease::renew`] at the time `now`.
    pub async fn renew_at(&mut self, dest: &dyn Destination, now: SystemTime) -> Result<(), Error> {
        let mut next = self.holder.clone();
        next.expires_at = unix(now) + self.ttl.as_secs().max(1);
        match dest.replace(&self.key, encode(&next), &self.version).await {
            Ok(version) => {
                (self.holder, self.version) = (next, version);
                Ok(())
            }
            Err(Error::Changed { .. }) => Err(self.lost(dest).await),
            Err(e) => Err(e),
        }
    }

    /// Lets the lease go, so that the next run takes it at once. A lease already taken over is
    /// left to its new holder.
    pub async fn release(self, dest: &dyn Destination) -> Result<(), Error> {
        let mut next = self.holder.clone();
        next.released = true;
        match dest.replace(&self.key, encode(&next), &self.version).await {
            Ok(_) | Err(Error::Changed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn lost(&self, dest: &dyn Destination) -> Error {
        let holder = holder_of(dest, &self.key).await;
        Error::LeaseLost { place: dest.display(), key: self.key.clone(), holder }
    }
}

/// The holder of the lease object `key` at `now`, if it is live: neither released nor expired.
/// A lease that does not parse is no live lease (a writer replaces it).
pub async fn live_holder(
    dest: &dyn Destination,
    key: &str,
    now: SystemTime,
) -> Result<Option<LeaseHolder>, Error> {
    let Some(object) = dest.read(key).await? else { return Ok(None) };
    Ok(live(&object.bytes, now))
}

/// The holder a lease object's `bytes` name, if the lease is live at `now` (as [`live_holder`],
/// for a caller that has read the object already).
pub fn live(bytes: &[u8], now: SystemTime) -> Option<LeaseHolder> {
    let holder: Option<LeaseHolder> = serde_json::from_slice(bytes).ok();
    holder.filter(|h| !h.released && h.expires_at > unix(now))
}

/// Who the lease object `key` names now, for a message ("another run" if it cannot be read).
async fn holder_of(dest: &dyn Destination, key: &str) -> String {
    match dest.read(key).await {
        Ok(Some(o)) => serde_json::from_slice::<LeaseHolder>(&o.bytes)
            .map_or_else(|_| "another run".into(), |h| h.holder),
        _ => "another run".into(),
    }
}
