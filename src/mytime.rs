//! The clock fail2ban reasons with.
//!
//! Everything that needs "now" (year-less dates, find-time windows, the
//! sample-log harness that pins time to a fixed instant) asks this module, so
//! that tests can freeze the clock the way fail2ban's `MyTime.setTime` does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the frozen time as f64, or `u64::MAX` when the real clock is used.
static FROZEN: AtomicU64 = AtomicU64::new(u64::MAX);

/// The current time in seconds since the epoch (frozen or real).
pub fn now() -> f64 {
    let bits = FROZEN.load(Ordering::Relaxed);
    if bits != u64::MAX {
        return f64::from_bits(bits);
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Freezes the clock at `t` (`Some`) or returns to the real clock (`None`).
pub fn set_time(t: Option<f64>) {
    FROZEN.store(t.map_or(u64::MAX, f64::to_bits), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_is_returned_until_released() {
        set_time(Some(1124013600.0));
        assert_eq!(now(), 1124013600.0);
        set_time(None);
        assert!(now() > 1.7e9);
    }
}
