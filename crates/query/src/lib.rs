//! The JSONSQL vocabulary of the IPTVPortal admin API.
//!
//! - [`Select`] and its parts ([`Expr`], [`Operand`], [`OrderBy`], [`FromClause`]): the `params` of a
//!   `select` call, serializing to exactly the wire JSON and parsing back from it.
//! - [`Q`]: filters composed with `&`, `|` and `!` from Django-style lookups (`balance__gte`).
//! - [`parse_filter`]: the CLI's `--where 'balance__gte=10'` form.
//!
//! This crate does no I/O and has no async: the client sends what it builds, and the simulator parses
//! requests with the same types, so both ends agree on the protocol by construction.

#![deny(missing_docs)]

mod ast;
mod error;

pub use ast::{
    ColumnRef, CompareOp, Direction, Expr, FromClause, Function, InList, Join, JoinKind, Operand, OrderBy,
    Scalar, Select, TableRef, is_identifier,
};
pub use error::Error;

/// Every lookup suffix a [`Q`] field accepts (`balance__gte`), in documentation order.
pub const LOOKUPS: &[&str] = &[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "like", "ilike", "contains", "icontains", "startswith",
    "endswith", "isnull",
];
