//! The simulator's integration tests: everything over real loopback HTTP, as a client sees it.

mod auth;
mod binary;
mod dialect;
mod faults;
mod generation;
mod injection;
mod mutate;
mod offset;
mod select;
mod stats;
mod support;
