//! Waiting on a condition with a deadline: the only way the testbed waits (no fixed sleeps).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::TestbedError;

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(200);

/// Polls `check` every `POLL` until it returns `Some`, or fails after `timeout` with an
/// error naming `what` (and `hint`, e.g. where the logs are).
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    hint: &str,
    mut check: F,
) -> Result<T, TestbedError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TestbedError::Timeout {
                what: what.to_string(),
                after: timeout,
                hint: if hint.is_empty() {
                    String::new()
                } else {
                    format!("; {hint}")
                },
            });
        }
        tokio::time::sleep_until((Instant::now() + POLL).min(deadline)).await;
    }
}
