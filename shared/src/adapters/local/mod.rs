//! The embedded default: state in one SQLite file, messages in an outbox folder.
//!
//! SQLite (bundled) rather than redb: several `herald` processes may share one state
//! folder (a `send` while a `flush` runs), and SQLite's file locking plus `BEGIN
//! IMMEDIATE` transactions make admission atomic across processes, not only threads;
//! the file can also be inspected with any `sqlite3` shell.

mod outbox;
mod store;

pub use outbox::Outbox;
pub use store::{DeferredEntry, LocalStore};
