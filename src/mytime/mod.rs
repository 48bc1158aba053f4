//! The clock fail2ban reasons with.
//!
//! Everything that needs "now" (year-less dates, find-time windows, the
//! sample-log harness that pins time to a fixed instant) asks this module, so
//! that tests can freeze the clock the way fail2ban's `MyTime.setTime` does.

mod str2sec;

pub use str2sec::str2seconds;

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

/// Formats `t` in local time with a C `strftime` format (the process's
/// time zone, as Python's `time.strftime(fmt, time.localtime(t))`).
pub fn format_local(t: f64, fmt: &str) -> String {
    let secs = t.floor() as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to fill in.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: pointers to a live time_t and tm; localtime_r is thread-safe.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return String::new();
    }
    let cfmt = match std::ffi::CString::new(fmt) {
        Ok(c) => c,
        Err(_) => return String::new(),
    };
    let mut buf = vec![0u8; 256];
    // SAFETY: buf has the length passed; strftime writes at most that many bytes.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            cfmt.as_ptr(),
            &tm,
        )
    };
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A number as Python's `str()` prints an int or float that holds it:
/// integral values without a fraction.
pub fn num_str(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{}", v as i64)
    } else {
        crate::pyvalue::float_repr(v)
    }
}

/// fail2ban's `seconds2str`: a duration in at most three rounded units
/// (`1y 3w 4d`, `2d 7h 15m`, `59m 50s`, `0`).
pub fn seconds2str(sec: f64) -> String {
    let mut r = String::new();
    let mut push = |v: i64, unit: &str| {
        r.push_str(&format!("{v}{unit} "));
    };
    if sec >= 31536000.0 {
        let mut s = (sec / 86400.0).round_ties_even() as i64;
        push(s / 365, "y");
        s %= 365;
        if s >= 7 {
            push(s / 7, "w");
            s %= 7;
        }
        if s != 0 {
            push(s, "d");
        }
    } else if sec >= 604800.0 {
        let mut s = (sec / 3600.0).round_ties_even() as i64;
        push(s / 168, "w");
        s %= 168;
        if s >= 24 {
            push(s / 24, "d");
            s %= 24;
        }
        if s != 0 {
            push(s, "h");
        }
    } else if sec >= 86400.0 {
        let mut s = (sec / 60.0).round_ties_even() as i64;
        push(s / 1440, "d");
        s %= 1440;
        if s >= 60 {
            push(s / 60, "h");
            s %= 60;
        }
        if s != 0 {
            push(s, "m");
        }
    } else if sec >= 3595.0 {
        let mut s = (sec / 10.0).round_ties_even() as i64;
        push(s / 360, "h");
        s %= 360;
        if s >= 6 {
            push(s / 6, "m");
        }
    } else {
        let mut s = sec as i64;
        if s >= 60 {
            push(s / 60, "m");
            s %= 60;
        }
        if s != 0 {
            push(s, "s");
        } else if sec == 0.0 {
            r.push_str("0 ");
        }
    }
    r.pop();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_fail2ban() {
        assert_eq!(seconds2str(86400.0 * 390.0), "1y 3w 4d");
        assert_eq!(seconds2str(86400.0 * 368.0), "1y 3d");
        // Python rounds 365.5 days half to even: 366 (its docstring says "1y")
        assert_eq!(seconds2str(86400.0 * 365.5), "1y 1d");
        assert_eq!(
            seconds2str(86400.0 * 2.0 + 3600.0 * 7.0 + 900.0),
            "2d 7h 15m"
        );
        assert_eq!(seconds2str(86400.0 * 2.0 + 3599.0), "2d 1h");
        assert_eq!(seconds2str(3595.0), "1h");
        assert_eq!(seconds2str(3590.0), "59m 50s");
        assert_eq!(seconds2str(59.0), "59s");
        assert_eq!(seconds2str(0.0), "0");
        assert_eq!(num_str(600.0), "600");
        assert_eq!(num_str(1.5), "1.5");
    }

    #[test]
    fn frozen_clock_is_returned_until_released() {
        set_time(Some(1124013600.0));
        assert_eq!(now(), 1124013600.0);
        set_time(None);
        assert!(now() > 1.7e9);
    }
}
