//! How verify finds a key: one module per strategy.
//!
//! - [`exclusive`]: exclusive mode's in-memory index.
//! - [`shared`]: shared mode's index file, mapped by every process, and the
//!   read-through path it falls back to.

pub(super) mod exclusive;
pub(super) mod shared;
