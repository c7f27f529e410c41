//! The state layer: where pre-state is read from (the `Storage` trait and its sources), the
//! locations and values the engines exchange, and the block-local overlay written on top.

pub mod carried;
pub mod overlay;
pub mod partial;
pub mod storage;
pub mod value;
pub mod witness;

pub use storage::{InMemoryStorage, Storage, StorageError};
