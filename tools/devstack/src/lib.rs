//! Helpers for the local stack and the tests.

pub mod env;
pub mod gateway;
pub mod tables;
