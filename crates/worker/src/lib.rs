//! moodwire's background jobs, each gated on an idle CPU so analytics never slow a
//! live request: the idle sync (event log -> store), missing-data recovery and the
//! hot-keyword warmer.

pub mod cpu;
pub mod recovery;
pub mod sync;
pub mod warmer;

pub use cpu::{CpuGauge, FileCpu, SystemCpu};
pub use recovery::{Recovery, RecoveryError, RecoveryReport};
pub use sync::{save_isolating, IdleSync, PassReport, Saved, SyncConfig, SyncError};
pub use warmer::{parse_seeds, WarmConfig, WarmReport, Warmer};
