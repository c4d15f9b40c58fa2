//! Retry delays: exponential from the base, capped, with jitter so that jobs failing
//! together (an outage) do not all come back together.

use std::time::Duration;

use rand::Rng;

/// The wait before the run after `attempt` (1-based) failed: base·2^(attempt-1), times a
/// random factor in [0.75, 1.25), never above `cap`.
pub fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let nominal = base.saturating_mul(1u32 << exponent).min(cap);
    let factor = rand::rng().random_range(0.75..1.25);
    nominal.mul_f64(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(2);
    const CAP: Duration = Duration::from_secs(600);

    #[test]
    fn starts_near_the_base_and_doubles() {
        for _ in 0..100 {
            let first = delay(1, BASE, CAP);
            assert!(first >= Duration::from_millis(1500) && first < Duration::from_millis(2500));
            let third = delay(3, BASE, CAP);
            assert!(third >= Duration::from_secs(6) && third < Duration::from_secs(10));
        }
    }

    #[test]
    fn never_exceeds_the_cap() {
        for attempt in [10, 20, 31, 1000, u32::MAX] {
            assert!(delay(attempt, BASE, CAP) <= CAP);
        }
        assert!(delay(10, BASE, CAP) >= CAP.mul_f64(0.75));
    }

    #[test]
    fn jitters() {
        let samples: std::collections::HashSet<_> = (0..20).map(|_| delay(2, BASE, CAP)).collect();
        assert!(samples.len() > 1);
    }
}
