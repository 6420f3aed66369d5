//! The process's Prometheus recorder, with the help text of every metric.

use metrics_exporter_prometheus::PrometheusHandle;

/// Installs the recorder (once) and registers each crate's metric descriptions, which
/// need the recorder in place: call it before anything is measured.
pub fn install_metrics() -> PrometheusHandle {
    let handle = moodwire_server::observability::prometheus();
    moodwire_core::describe_metrics();
    moodwire_model::describe_metrics();
    moodwire_sources::describe_metrics();
    moodwire_storage::describe_metrics();
    moodwire_worker::describe_metrics();
    moodwire_server::observability::describe_metrics();
    handle
}
