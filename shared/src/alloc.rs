//! The global allocator every herald binary declares:
//!
//! ```text
//! #[global_allocator]
//! static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;
//! ```
//!
//! mimalloc: a render allocates per template node and per JSON value it copies, and
//! with glibc's malloc that was about 45% of its time (FACTS.md, "Rendering speed").
//! Benchmarks declare the same one, so their figures are the binaries'.
pub use mimalloc::MiMalloc as Allocator;
