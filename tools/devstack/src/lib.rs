//! Helpers for the local stack and the tests.

pub mod demo;
pub mod env;
pub mod fixtures;
pub mod gateway;
pub mod tables;
