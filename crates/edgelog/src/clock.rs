//! The hot path's wall clock: the CPU's time-stamp counter, anchored to `CLOCK_REALTIME`.
//!
//! Reading the real-time clock costs ~28 ns on a virtual machine (a vDSO call reading the
//! paravirtual clock); reading the TSC costs ~8 ns. Entries still store UTC nanoseconds — the
//! tables and their readers know nothing of this — computed as
//!
//! ```text
//! ns = anchor_ns + (tsc - anchor_tsc) * rate        rate in ns per tick, 32.32 fixed point
//! ```
//!
//! Each thread keeps its own anchor (no shared line on the hot path) and takes a new one from
//! the real-time clock once it is about a second old, so clock steps (NTP) are followed within
//! a second and rate error cannot accumulate beyond a second's worth. The rate is measured over
//! a few milliseconds at `init` and then refined at every re-anchor over the whole life of the
//! process, so it converges on the true frequency. A re-anchor may move a thread's time back by
//! the error of the previous anchor (microseconds at first, nanoseconds later); entries are
//! ordered by sequence number, not time.
//!
//! The TSC is used only on x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`); elsewhere every read is the real-time clock.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use edgelog_core::Timestamp;

/// Nanoseconds per tick × 2^32; 0 until calibrated (or when the TSC is not usable).
static RATE_Q32: AtomicU64 = AtomicU64::new(0);
/// Ticks after which a thread re-anchors (about one second).
static REANCHOR_TICKS: AtomicU64 = AtomicU64::new(0);
/// The first calibration pair, the baseline the rate is refined against.
static ORIGIN: OnceLock<(u64, i64)> = OnceLock::new();

thread_local! {
    /// This thread's anchor: (tsc, ns); tsc 0 means none yet.
    static ANCHOR: Cell<(u64, i64)> = const { Cell::new((0, 0)) };
}

#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions; it is available on every x86-64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

fn realtime() -> i64 {
    Timestamp::now().as_unix_nanos()
}

/// A (TSC, real time) pair taken at one instant: the TSC is read on both sides of the
/// real-time read and the tightest of a few tries is kept, at its midpoint. Read back to back
/// without this, a preemption between the two reads skews the pair — and every time computed
/// from it — by however long the thread was off the CPU (1 ms was seen under load).
fn paired() -> (u64, i64) {
    let mut best = (u64::MAX, 0u64, 0i64);
    for _ in 0..8 {
        let before = ticks();
        let ns = realtime();
        let after = ticks();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            best = (width, before.wrapping_add(width / 2), ns);
        }
        // A few hundred ticks is a read with nothing in between.
        if width < 1_000 {
            break;
        }
    }
    (best.1, best.2)
}

/// Whether the TSC ticks at a constant rate through power states and across cores.
fn invariant_tsc() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
            let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
            let has = |f: &str| flags.split_whitespace().any(|w| w == f);
            has("constant_tsc") && has("nonstop_tsc")
        })
}

/// Measures the TSC rate (a few milliseconds of spinning), once per process.
pub(crate) fn calibrate() {
    if RATE_Q32.load(Ordering::Relaxed) != 0 || !invariant_tsc() {
        return;
    }
    let (t0, n0) = paired();
    while realtime() - n0 < 5_000_000 {
        std::hint::spin_loop();
    }
    let (t1, n1) = paired();
    let Some(rate) = rate_q32(t1.wrapping_sub(t0), n1 - n0) else {
        return;
    };
    let _ = ORIGIN.set((t0, n0));
    publish_rate(rate);
}

/// ns/tick × 2^32 from a measured interval; `None` for a nonsensical one.
fn rate_q32(ticks: u64, nanos: i64) -> Option<u64> {
    if ticks == 0 || nanos <= 0 {
        return None;
    }
    let rate = ((nanos as u128) << 32) / u128::from(ticks);
    u64::try_from(rate).ok().filter(|&r| r > 0)
}

fn publish_rate(rate: u64) {
    RATE_Q32.store(rate, Ordering::Relaxed);
    let ticks_per_second = (1_000_000_000u128 << 32) / u128::from(rate);
    REANCHOR_TICKS.store(
        u64::try_from(ticks_per_second).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Now, in nanoseconds since the epoch. One TSC read, a thread-local anchor and a multiply.
#[inline(always)]
pub(crate) fn now_ns() -> i64 {
    let rate = RATE_Q32.load(Ordering::Relaxed);
    if rate == 0 {
        return realtime();
    }
    let t = ticks();
    let (at, an) = ANCHOR.get();
    let d = t.wrapping_sub(at);
    if at != 0 && d < REANCHOR_TICKS.load(Ordering::Relaxed) {
        return an + ((u128::from(d) * u128::from(rate)) >> 32) as i64;
    }
    reanchor()
}

#[cold]
#[inline(never)]
fn reanchor() -> i64 {
    let (t, ns) = paired();
    if let Some(&(t0, n0)) = ORIGIN.get() {
        // Refine over the whole life of the process: the longer the baseline, the better.
        if let Some(rate) =
            rate_q32(t.wrapping_sub(t0), ns - n0).filter(|_| ns - n0 > 1_000_000_000)
        {
            publish_rate(rate);
        }
    }
    ANCHOR.set((t, ns));
    ns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_against_realtime(rounds: usize) {
        for _ in 0..rounds {
            let before = realtime();
            let ours = now_ns();
            let after = realtime();
            // Within 1 ms of the real-time clock read around it.
            assert!(
                ours >= before - 1_000_000 && ours <= after + 1_000_000,
                "{before} {ours} {after}"
            );
        }
    }

    #[test]
    fn the_tsc_clock_follows_the_real_time_clock_across_reanchors() {
        calibrate();
        check_against_realtime(10_000);
        std::thread::sleep(std::time::Duration::from_millis(1_200));
        check_against_realtime(10_000);
        // Another thread anchors on its own.
        std::thread::spawn(|| check_against_realtime(10_000))
            .join()
            .unwrap();
    }
}
