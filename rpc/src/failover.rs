//! Trying one peer after another under one deadline — the shape of every hop of a
//! cross-datacenter request (a server to its gateways, a gateway to the remote gateways, a
//! gateway to its servers). What may be retried is the caller's to say: a read, or a write
//! carrying a request id, may run again on the next peer after an answer was lost; any
//! other write may not, and its outcome is then unknown.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::TransportError;

/// Why no peer answered.
#[derive(Debug, Clone, Default)]
pub struct Exhausted {
    /// A peer may have acted on the request (sent, no answer).
    pub maybe_sent: bool,
    /// The deadline passed before every peer was tried.
    pub timed_out: bool,
    /// Peers tried.
    pub tried: usize,
    /// The last failure, for messages.
    pub last: Option<String>,
}

/// The time one attempt may take: all that is left for a long (blocking) request, else a
/// fair share of it among the peers not yet tried (at least a second, if there is that
/// much), so one silent peer cannot use up the time of the others.
fn attempt_budget(left: Duration, peers_left: usize, long: bool) -> Duration {
    if long || peers_left <= 1 {
        return left;
    }
    let share = left / u32::try_from(peers_left).unwrap_or(u32::MAX);
    share.max(left.min(Duration::from_secs(1)))
}

/// Calls `attempt(peer, timeout)` on each of `peers` in turn until one answers, `deadline`
/// passes, or (unless `retry_after_send`) a peer may have received the request. `long`
/// marks a request that may legitimately take all the time left (a blocking query).
pub async fn try_in_turn<T, F, Fut>(
    peers: &[String],
    deadline: Instant,
    retry_after_send: bool,
    long: bool,
    mut attempt: F,
) -> Result<T, Exhausted>
where
    F: FnMut(String, Duration) -> Fut,
    Fut: Future<Output = Result<T, TransportError>>,
{
    let mut out = Exhausted::default();
    for (i, peer) in peers.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            out.timed_out = true;
            break;
        }
        out.tried += 1;
        match attempt(peer.clone(), attempt_budget(left, peers.len() - i, long)).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let sent = matches!(e, TransportError::NoAnswer { .. });
                out.maybe_sent |= sent;
                tracing::debug!(peer = %peer, cause = %e, "peer failed; trying the next");
                out.last = Some(e.to_string());
                if sent && !retry_after_send {
                    break;
                }
            }
        }
    }
    if out.tried == 0 && !peers.is_empty() {
        out.timed_out = true;
    }
    Err(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}")).collect()
    }

    fn unreachable(p: &str) -> TransportError {
        TransportError::Unreachable {
            addr: p.into(),
            reason: "refused".into(),
        }
    }

    fn no_answer(p: &str) -> TransportError {
        TransportError::NoAnswer {
            addr: p.into(),
            reason: "timed out".into(),
        }
    }

    #[tokio::test]
    async fn the_next_peer_answers_after_an_unreachable_one() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = try_in_turn(&peers(3), deadline, false, false, |p, _| async move {
            if p == "p0" {
                Err(unreachable(&p))
            } else {
                Ok(p)
            }
        })
        .await
        .expect("answer");
        assert_eq!(got, "p1");
    }

    #[tokio::test]
    async fn a_lost_answer_stops_an_unretryable_request_and_says_so() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = try_in_turn(&peers(3), deadline, false, false, |p, _| async move {
            Err::<(), _>(no_answer(&p))
        })
        .await
        .expect_err("exhausted");
        assert!(err.maybe_sent);
        assert_eq!(err.tried, 1);
        let err = try_in_turn(&peers(3), deadline, true, false, |p, _| async move {
            Err::<(), _>(no_answer(&p))
        })
        .await
        .expect_err("exhausted");
        assert_eq!(err.tried, 3);
    }

    #[test]
    fn budgets_share_the_time_left() {
        let s = Duration::from_secs;
        assert_eq!(attempt_budget(s(6), 3, false), s(2));
        assert_eq!(attempt_budget(s(6), 1, false), s(6));
        assert_eq!(attempt_budget(s(600), 3, true), s(600));
        assert_eq!(attempt_budget(s(2), 4, false), s(1));
        assert_eq!(
            attempt_budget(Duration::from_millis(300), 4, false),
            Duration::from_millis(300)
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_tries_nobody() {
        let err = try_in_turn(&peers(2), Instant::now(), true, false, |p, _| async move {
            Ok::<_, TransportError>(p)
        })
        .await
        .expect_err("late");
        assert!(err.timed_out);
        assert_eq!(err.tried, 0);
    }
}
