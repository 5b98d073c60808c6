//! Integration tests of the dump orchestrator: against the simulator over real loopback HTTP,
//! writing real files, read back and compared with the simulator's SQLite file; and over the
//! orchestrator's seams alone (an in-memory source and checkpoint store, no HTTP).

mod common;
mod failures;
mod matrix;
mod memory;
mod remote;
mod resume;
mod strategy;
