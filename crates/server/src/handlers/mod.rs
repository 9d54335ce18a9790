//! HTTP handlers, one module per surface.

pub mod account;
pub mod catalog;
pub mod inference;
pub mod ops;
