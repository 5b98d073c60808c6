//! The dump state model and where it is kept.
//!
//! A [`DumpState`] is what a dump knows about one table between runs: the seed's progress fields
//! (`dumped_rows`, `current_offset`, `chunks_completed`, timestamps, `is_complete`, …) plus what an
//! exact resume needs: the traversal [`Cursor`](iptvportal_traverse::Cursor), the sink's committed
//! [`SinkPosition`](iptvportal_sink::SinkPosition), the pinned output
//! [`Schema`](iptvportal_sink::Schema), and the [`OutputShape`]: everything that shapes the output, so that resuming
//! with other options is refused instead of producing a file that mixes two dumps.
//!
//! [`CheckpointStore`] is the seam the orchestrator saves through; [`FileStore`] keeps each state in
//! `{output_dir}/.{table}.state.json`, written atomically (temp file in the same directory, fsync,
//! rename, fsync of the directory), so a crash leaves either the old state or the new one, never a
//! torn file.
//!
//! **One writer per table.** [`CheckpointStore::lock`] gives one run the right to write a table
//! for its whole life; [`FileStore`]'s is an advisory lock on `.{table}.lock` that the kernel
//! releases when the process dies, and [`FileStore::holder`] tells who holds it.
//!
//! **Invariant:** a state is saved only after the data it points at is durable (the orchestrator
//! commits the sink first), so a checkpoint never runs ahead of the output.

#![deny(missing_docs)]

mod error;
mod lock;
mod state;
mod store;

pub use error::Error;
pub use lock::{Holder, LockMode, TableLock, lock_file_name};
pub use state::{
    DumpState, OLDEST_STATE_VERSION, OutputShape, STATE_VERSION, ShapeDifference, seal, unseal,
};
pub use store::{
    CheckpointStore, FileStore, Listing, MemoryStore, from_bytes, state_file_name, to_bytes,
};
