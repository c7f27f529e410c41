//! Which engine produced a result.

/// Which engine ran a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    Sequential,
    Parallel,
}

/// The engine that produced a block's result (`Stats::engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Engine {
    /// One transaction after the other (auto mode's choice, or a fallback).
    Sequential,
    /// Block-STM (`parallel`).
    BlockStm,
    /// Plain transfers in groups that share no account (`transfers`).
    TransferGroups,
    /// Token transfers in guessed groups, checked after the run (`predicted`).
    GuessedGroups,
}
