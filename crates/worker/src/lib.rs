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

/// Registers the help text of the metrics this crate records, and of the dead letters
/// the Kafka forwarder counts too (call once, after the recorder is installed).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!("moodwire_cpu_percent", "System-wide CPU use in percent, smoothed over about 5 s: what the background jobs' gates read.");
    describe_gauge!(
        "moodwire_sync_backlog_events",
        "Events in the event log not yet stored (the consumer group's lag on Kafka)."
    );
    describe_gauge!(
        "moodwire_sync_gate_open",
        "1 while the CPU is idle enough for the sync, else 0."
    );
    describe_gauge!(
        "moodwire_sync_last_success_timestamp_seconds",
        "Unix time of the last batch the sync stored."
    );
    describe_gauge!(
        "moodwire_sync_oldest_event_age_seconds",
        "Seconds the oldest event waiting to be stored has waited (0: none waits)."
    );
    describe_counter!("moodwire_sync_events_total", "Events the sync handled, by result: inserted, already_stored (a redelivery), dead_lettered.");
    describe_counter!(
        "moodwire_sync_errors_total",
        "Sync passes that failed (the store or broker away); retried with backoff."
    );
    describe_counter!("moodwire_dead_letters_total", "Events set aside as dead letters: refused by the store for good, unreadable, or refused by the broker and not splittable.");
    describe_counter!(
        "moodwire_recovery_backfilled_total",
        "Analyses the store lacked and recovery rebuilt from the cache."
    );
    describe_counter!(
        "moodwire_recovery_errors_total",
        "Recovery passes that failed."
    );
    describe_counter!(
        "moodwire_warm_refreshes_total",
        "Cache entries the warmer refreshed."
    );
    describe_counter!(
        "moodwire_warm_aborted_total",
        "Warmer cycles stopped because the CPU got busy."
    );
}
