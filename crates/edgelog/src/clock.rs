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
//! a second and rate error cannot accumulate beyond a second's worth.
//!
//! **The rate is measured against the monotonic clock, never the real-time clock.** It is
//! measured over a few milliseconds at `init`, then refined at every re-anchor against an
//! origin that only grows older, so it converges on the true frequency. Measured against the
//! real-time clock, a step (NTP setting a box that booted in 1970 to 2026, say) would enter the
//! rate: a day's step over a few seconds of baseline made it wrong by ×21,600, the times inside
//! every burst ran ahead, and re-anchors came every few microseconds — for the rest of the
//! process. The monotonic clock is not stepped by NTP; where it jumps anyway (a tool such as
//! libfaketime fakes both clocks), the jump is seen the same way as a real-time step, below,
//! and the origin is re-based past it, keeping the last good rate.
//!
//! **Steps are detected.** At each re-anchor the time predicted from the previous anchor (of
//! any thread) is compared with the clocks just read. A real-time difference beyond
//! [`STEP_TOLERANCE_NS`] (plus 100 ppm of the interval, more than any oscillator drifts) is a
//! step: counted, and noted once in the level control block, where `edgelog show log tables`
//! says so. A step backwards is handled alike.
//!
//! **The error is bounded.** Between re-anchors a thread's time is its anchor plus ticks times
//! the rate, so its error is the rate's relative error times at most a second (microseconds)
//! plus the anchor's read (a few hundred nanoseconds): well within 2 ms. Only entries written
//! between a step and a thread's next re-anchor — at most a second — carry the time line from
//! before the step, still evenly spaced and in order.
//!
//! The TSC is used only on x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`); elsewhere every read is the real-time clock.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use edgelog_core::Timestamp;

/// Nanoseconds per tick × 2^32; 0 until calibrated (or when the TSC is not usable).
static RATE_Q32: AtomicU64 = AtomicU64::new(0);
/// Ticks after which a thread re-anchors (about one second).
static REANCHOR_TICKS: AtomicU64 = AtomicU64::new(0);
/// Re-anchors so far (the slow path), and real-time steps seen.
static REANCHORS: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);

/// A difference between predicted and read time beyond this (plus 100 ppm of the interval) is
/// a step of the clock, not drift.
pub(crate) const STEP_TOLERANCE_NS: i64 = 10_000_000;

/// What re-anchors share: where the rate is measured from, and the last pair any thread read.
#[derive(Debug, Clone, Copy)]
struct Shared {
    /// (ticks, monotonic ns): the baseline of the rate.
    origin: (u64, i64),
    last: Pair,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

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

/// The monotonic clock (`CLOCK_MONOTONIC`, through `Instant`), in nanoseconds since the first
/// read in this process.
fn monotonic() -> i64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    i64::try_from(base.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// The TSC and both clocks, read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair {
    ticks: u64,
    real: i64,
    mono: i64,
}

/// A [`Pair`] taken at one instant: the TSC is read on both sides of the clock reads and the
/// tightest of a few tries is kept, at its midpoint. Read back to back without this, a
/// preemption between the reads skews the pair — and every time computed from it — by
/// however long the thread was off the CPU (1 ms was seen under load).
fn paired() -> Pair {
    let mut best = (
        u64::MAX,
        Pair {
            ticks: 0,
            real: 0,
            mono: 0,
        },
    );
    for _ in 0..8 {
        let before = ticks();
        let real = realtime();
        let mono = monotonic();
        let after = ticks();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            let ticks = before.wrapping_add(width / 2);
            best = (width, Pair { ticks, real, mono });
        }
        // A few hundred ticks is a read with nothing in between.
        if width < 1_000 {
            break;
        }
    }
    best.1
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

/// Measures the TSC rate (a few milliseconds of spinning), once per process. A measurement
/// that a clock jump spoiled (the two clocks disagree on the interval) is taken again.
pub(crate) fn calibrate() {
    if RATE_Q32.load(Ordering::Relaxed) != 0 || !invariant_tsc() {
        return;
    }
    for _ in 0..5 {
        let p0 = paired();
        while monotonic() - p0.mono < 5_000_000 {
            std::hint::spin_loop();
        }
        let p1 = paired();
        let (mono, real) = (p1.mono - p0.mono, p1.real - p0.real);
        if (mono - real).abs() > mono / 100 {
            continue;
        }
        let Some(rate) = rate_q32(p1.ticks.wrapping_sub(p0.ticks), mono) else {
            continue;
        };
        *shared() = Some(Shared {
            origin: (p0.ticks, p0.mono),
            last: p1,
        });
        publish_rate(rate);
        return;
    }
}

fn shared() -> std::sync::MutexGuard<'static, Option<Shared>> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

/// ns/tick × 2^32 from a measured interval; `None` for a nonsensical one.
fn rate_q32(ticks: u64, nanos: i64) -> Option<u64> {
    if ticks == 0 || nanos <= 0 {
        return None;
    }
    let rate = ((nanos as u128) << 32) / u128::from(ticks);
    u64::try_from(rate).ok().filter(|&r| r > 0)
}

/// `ticks` at `rate`, in nanoseconds.
#[inline(always)]
fn scale(ticks: u64, rate: u64) -> i64 {
    ((u128::from(ticks) * u128::from(rate)) >> 32) as i64
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
        return an + scale(d, rate);
    }
    reanchor()
}

/// What the library's clock did in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStats {
    /// Times a thread took a new anchor from the real-time clock (the slow path): about one
    /// per second per logging thread.
    pub reanchors: u64,
    /// Steps of the real-time clock seen.
    pub steps: u64,
}

/// What the library's clock did in this process so far.
pub fn clock_stats() -> ClockStats {
    ClockStats {
        reanchors: REANCHORS.load(Ordering::Relaxed),
        steps: STEPS.load(Ordering::Relaxed),
    }
}

#[cold]
#[inline(never)]
fn reanchor() -> i64 {
    REANCHORS.fetch_add(1, Ordering::Relaxed);
    let p = paired();
    let step = {
        let mut guard = shared();
        let rate = RATE_Q32.load(Ordering::Relaxed);
        match guard.as_mut() {
            Some(s) => {
                let (step, rate) = follow(s, p, rate);
                if let Some(rate) = rate {
                    publish_rate(rate);
                }
                step
            }
            None => None,
        }
    };
    if let Some(by) = step {
        STEPS.fetch_add(1, Ordering::Relaxed);
        crate::runtime::note_clock_step(p.real, by);
    }
    ANCHOR.set((p.ticks, p.real));
    p.real
}

/// Moves the shared state on to `p`: the real-time step seen since the last pair, if any,
/// and a refined rate, if the baseline allows one. A monotonic jump re-bases the origin.
fn follow(s: &mut Shared, p: Pair, rate: u64) -> (Option<i64>, Option<u64>) {
    let elapsed = scale(p.ticks.wrapping_sub(s.last.ticks), rate);
    let tolerance = STEP_TOLERANCE_NS + elapsed / 10_000;
    let off = |now: i64, then: i64| now - (then + elapsed);
    let real_off = off(p.real, s.last.real);
    let step = (real_off.abs() > tolerance).then_some(real_off);
    let refined = if off(p.mono, s.last.mono).abs() > tolerance {
        s.origin = (p.ticks, p.mono);
        None
    } else {
        let base = p.mono - s.origin.1;
        rate_q32(p.ticks.wrapping_sub(s.origin.0), base).filter(|_| base > 1_000_000_000)
    };
    s.last = p;
    (step, refined)
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

    const ONE_NS_PER_TICK: u64 = 1 << 32;
    const DAY: i64 = 86_400_000_000_000;

    fn pair(ticks: u64, real: i64, mono: i64) -> Pair {
        Pair { ticks, real, mono }
    }

    #[test]
    fn a_real_time_step_is_seen_once_and_never_enters_the_rate() {
        let start = pair(1_000, 5 * DAY, 1_000);
        let mut s = Shared {
            origin: (start.ticks, start.mono),
            last: start,
        };
        // Two seconds on, the real-time clock was set a day forward; the TSC ran 0.1% fast
        // against the monotonic clock all along.
        let p = pair(
            1_000 + 2_002_000_000,
            5 * DAY + 2_000_000_000 + DAY,
            1_000 + 2_000_000_000,
        );
        let (step, rate) = follow(&mut s, p, ONE_NS_PER_TICK);
        assert!(
            step.is_some_and(|by| (by - DAY).abs() < 20_000_000),
            "{step:?}"
        );
        let rate = rate.expect("two seconds of baseline refine the rate");
        assert!((rate as f64 / ONE_NS_PER_TICK as f64 - 1.0 / 1.001).abs() < 1e-6);
        // A second later, on the new time line: no step, and the rate keeps its baseline.
        let q = pair(
            p.ticks + 1_001_000_000,
            p.real + 1_000_000_000,
            p.mono + 1_000_000_000,
        );
        let (step, _) = follow(&mut s, q, rate);
        assert_eq!(step, None);
        assert_eq!(s.origin, (start.ticks, start.mono));
        // Backwards by an hour: a step too.
        let r = pair(
            q.ticks + 1_001_000_000,
            q.real + 1_000_000_000 - DAY / 24,
            q.mono + 1_000_000_000,
        );
        let (step, _) = follow(&mut s, r, rate);
        assert!(
            step.is_some_and(|by| (by + DAY / 24).abs() < 20_000_000),
            "{step:?}"
        );
    }

    #[test]
    fn a_monotonic_jump_rebases_the_origin_and_keeps_the_rate() {
        let start = pair(0, 0, 0);
        let mut s = Shared {
            origin: (0, 0),
            last: start,
        };
        let p = pair(3_000_000_000, 3_000_000_000 + DAY, 3_000_000_000 + DAY);
        let (step, rate) = follow(&mut s, p, ONE_NS_PER_TICK);
        assert!(step.is_some());
        assert_eq!(rate, None, "a jump's interval is no measurement");
        assert_eq!(s.origin, (p.ticks, p.mono));
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
