//! The one integration-test binary of `iptvportal-query`: the public API seen from outside.

mod errors;
mod filter;
mod props;
mod q;
mod wire;
