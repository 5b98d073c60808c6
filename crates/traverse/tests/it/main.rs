//! Integration tests of the traversal strategies against an in-memory row source.
//!
//! The source interprets the small JSONSQL subset traversals emit (count/min/max, a column list,
//! `and` of comparisons, `order_by` id, `limit`, `offset`) over a vector of rows and logs every
//! request, so the tests can check both the output and the requests that produced it.

mod strategies;
