//! How busy the machine is: the gate every background job checks before working.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// System-wide CPU use in percent (0..=100), smoothed.
pub trait CpuGauge: Send + Sync {
    fn percent(&self) -> f32;
}

/// Samples the whole machine's CPU use every second on a thread of its own and keeps
/// an exponential moving average over about five seconds, so one busy second does not
/// open or close a gate.
pub struct SystemCpu {
    smoothed: Arc<AtomicU32>,
}

impl SystemCpu {
    const SAMPLE_EVERY: Duration = Duration::from_secs(1);
    /// Weight of the newest sample: about a 5-sample (5 s) window.
    const ALPHA: f32 = 0.33;

    /// Starts sampling. Until the first sample is in (a second), the machine counts as
    /// busy (100 %): a long-running job can wait that long.
    pub fn start() -> std::io::Result<Self> {
        Self::spawn(None, sysinfo_sampler())
    }

    /// Takes a first reading (over a second) before returning, then samples as
    /// [`SystemCpu::start`] does: for one-shot commands (`moodwire warm`), which decide
    /// at once and must not read the placeholder as a busy machine.
    pub fn start_measured() -> std::io::Result<Self> {
        let mut sample = sysinfo_sampler();
        let first = sample();
        Self::spawn(Some(first), sample)
    }

    /// Samples with `sample` (blocking a second each time) on a thread of its own,
    /// starting the average at `first` when there is one.
    fn spawn(
        first: Option<f32>,
        mut sample: impl FnMut() -> f32 + Send + 'static,
    ) -> std::io::Result<Self> {
        let smoothed = Arc::new(AtomicU32::new(first.unwrap_or(100.0).to_bits()));
        if let Some(first) = first {
            metrics::gauge!("moodwire_cpu_percent").set(f64::from(first));
        }
        let shared = Arc::downgrade(&smoothed);
        std::thread::Builder::new()
            .name("moodwire-cpu".into())
            .spawn(move || {
                let mut average = first;
                loop {
                    let sample = sample();
                    // The gauge was dropped: stop sampling.
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let next = match average {
                        None => sample,
                        Some(a) => a + Self::ALPHA * (sample - a),
                    };
                    average = Some(next);
                    shared.store(next.to_bits(), Ordering::Relaxed);
                    metrics::gauge!("moodwire_cpu_percent").set(f64::from(next));
                }
            })?;
        Ok(SystemCpu { smoothed })
    }
}

/// The machine's CPU use over the next [`SystemCpu::SAMPLE_EVERY`], each call.
fn sysinfo_sampler() -> impl FnMut() -> f32 + Send + 'static {
    let mut system = sysinfo::System::new();
    system.refresh_cpu_usage();
    move || {
        std::thread::sleep(SystemCpu::SAMPLE_EVERY);
        system.refresh_cpu_usage();
        system.global_cpu_usage().clamp(0.0, 100.0)
    }
}

impl CpuGauge for SystemCpu {
    fn percent(&self) -> f32 {
        f32::from_bits(self.smoothed.load(Ordering::Relaxed))
    }
}

/// Reads the CPU figure from a file (a number such as `12.5`) on every look. For tests
/// and for operators who want to open or close the gates by hand; a missing or
/// unreadable file reads as 100 % (gates closed), with a warning.
pub struct FileCpu {
    path: PathBuf,
}

impl FileCpu {
    pub fn new(path: PathBuf) -> Self {
        FileCpu { path }
    }
}

impl CpuGauge for FileCpu {
    fn percent(&self) -> f32 {
        let reading = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|s| s.trim().parse::<f32>().map_err(|e| e.to_string()));
        match reading {
            Ok(p) if p.is_finite() => p.clamp(0.0, 100.0),
            Ok(p) => {
                tracing::warn!(path = %self.path.display(), reading = p, "not a CPU figure; reading 100 %");
                100.0
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the CPU figure; reading 100 %");
                100.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_the_reading_and_garbage_closes_the_gates() {
        let dir = std::env::temp_dir().join(format!("moodwire-cpu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cpu");
        let gauge = FileCpu::new(path.clone());
        assert_eq!(gauge.percent(), 100.0, "missing file");
        std::fs::write(&path, "12.5\n").unwrap();
        assert_eq!(gauge.percent(), 12.5);
        std::fs::write(&path, "busy").unwrap();
        assert_eq!(gauge.percent(), 100.0);
        std::fs::write(&path, "250").unwrap();
        assert_eq!(gauge.percent(), 100.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What `moodwire warm` depends on: a measured gauge answers its first reading at
    /// once, never the busy placeholder; a started one answers the placeholder until
    /// its first sample.
    #[test]
    fn a_measured_gauge_answers_a_real_reading_at_once() {
        let quiet = || {
            std::thread::sleep(Duration::from_millis(200));
            7.5
        };
        let measured = SystemCpu::spawn(Some(7.5), quiet).unwrap();
        assert_eq!(measured.percent(), 7.5);
        let started = SystemCpu::spawn(None, quiet).unwrap();
        assert_eq!(started.percent(), 100.0);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(started.percent(), 7.5);
        let real = SystemCpu::start_measured().unwrap();
        assert!((0.0..=100.0).contains(&real.percent()));
    }

    #[test]
    fn the_system_gauge_reads_a_percentage() {
        let gauge = SystemCpu::start().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let p = gauge.percent();
        assert!((0.0..=100.0).contains(&p), "{p}");
    }
}
