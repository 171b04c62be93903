//! herald: the channel delivery layer of a customer-journey platform.
//!
//! A delivery request comes in; guard rails decide; a template renders; a provider
//! sends; a receipt goes out. Domain modules decide, `adapters` do the I/O, and
//! `ports` is the line between them.

pub mod adapters;
pub mod alloc;
pub mod authoring;
pub mod config;
pub mod pipeline;
pub mod policy;
pub mod ports;
pub mod push;
pub mod receipt;
pub mod render;
pub mod request;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
