//! Work that needs no speculation: groups of transactions that share no account (plain
//! transfers, and token transfers and pair swaps whose accounts are guessed from call data),
//! and lazy updates of hot balances and token slots, kept as deltas instead of versions.

pub mod groups;
pub mod guessed_groups;
pub mod lazy_balance;
pub mod lazy_storage;
pub mod transfer_groups;
