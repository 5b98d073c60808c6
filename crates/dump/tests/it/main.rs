//! Integration tests of the dump orchestrator against the simulator over real loopback HTTP,
//! writing real files, read back and compared with the simulator's SQLite file.

mod common;
mod failures;
mod matrix;
mod resume;
