//! What the testbed prints for people: progress lines with the time since the command
//! started, and plain lines. The one place that writes to stdout.

use std::io::Write;

use tokio::time::Instant;

/// Writes a line to stdout (a closed stdout is ignored: output is informational).
pub fn line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Progress lines stamped with the time since `start`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    start: Instant,
}

impl Progress {
    /// Starts the clock.
    pub fn start() -> Progress {
        Progress {
            start: Instant::now(),
        }
    }

    /// Seconds since the start.
    pub fn secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// `[  1.23s] text`.
    pub fn say(&self, text: &str) {
        line(&format!("[{:6.2}s] {text}", self.secs()));
    }
}
