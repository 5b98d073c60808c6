//! The JSONSQL vocabulary of the IPTVPortal admin API.
//!
//! - [`Select`] and its parts ([`Expr`], [`Operand`], [`OrderBy`], [`FromClause`]): the `params` of a
//!   `select` call, serializing to exactly the wire JSON and parsing back from it.
//! - [`Q`]: filters composed with `&`, `|` and `!` from Django-style lookups (`balance__gte`, see
//!   [`Lookup`]); a newtype over [`Expr`], so it is written and read as the `where` JSON.
//! - [`parse_filter`] and [`parse_filters`]: the CLI's `--where 'balance__gte=10'` form;
//!   [`parse_where_json`]: its `--where-json` form. [`parse_filter_typed`] reads each value as its
//!   column's [`ValueType`] where the caller knows it (from the catalog), and
//!   [`check_value_types`] checks a condition's literals against those types.
//!
//! This crate does no I/O and has no async: the client sends what it builds, and the simulator parses
//! requests with the same types, so both ends agree on the protocol by construction.

#![deny(missing_docs)]

mod ast;
mod error;
mod filter;
mod q;
mod typed;

pub use ast::{
    ColumnRef, CompareOp, Direction, Expr, FromClause, Function, InList, Join, JoinKind, Operand,
    OrderBy, Scalar, Select, TableRef, is_identifier,
};
pub use error::Error;
pub use filter::{
    parse_filter, parse_filter_typed, parse_filters, parse_filters_typed, parse_where_json,
};
pub use q::{Lookup, Q};
pub use typed::{ValueType, check_value_types};

/// Every lookup suffix a [`Q`] field accepts (`balance__gte`), in documentation order; the names of
/// [`Lookup::ALL`] (a test keeps the two in step).
pub const LOOKUPS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "like",
    "ilike",
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "isnull",
];
