//! Gives the memory a burst of requests freed back to the operating system once the burst
//! is over.
//!
//! glibc's allocator keeps what its per-thread heaps freed: after 256 concurrent 50 KB
//! list pages the server held 61 MB, of which a `malloc_trim` returned 13 MB to the
//! system (bench/README.md, "Memory"). glibc trims only the top of its main heap on its
//! own, and no crate trims when a server goes quiet; allocators that give memory back by
//! themselves were measured slower here (mimalloc) — hence this one call, by hand.
//!
//! Quiet means: no request finished during the last [`QUIET`], after some did since the
//! last trim. Under load nothing is trimmed (what was freed is about to be reused).
// Other allocators than glibc's are left to themselves: nothing here runs for them.
#![cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How long without a finished request counts as the end of a burst.
const QUIET: Duration = Duration::from_secs(1);

static FINISHED: AtomicU64 = AtomicU64::new(0);

/// Counts a finished request (the HTTP layer calls it for every answer).
pub fn request_finished() {
    FINISHED.fetch_add(1, Ordering::Relaxed);
}

/// Trims the allocator's heaps after every burst, for the life of the process. The
/// allocator is the process's: the binary starts this once, not each server it runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_after_bursts() {
    tokio::spawn(async {
        let mut ticks = tokio::time::interval(QUIET);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bursts = Bursts::default();
        loop {
            ticks.tick().await;
            if bursts.ended(FINISHED.load(Ordering::Relaxed)) {
                // It walks every heap: a few milliseconds that belong off the workers.
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_after_bursts() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    let started = std::time::Instant::now();
    // SAFETY: malloc_trim only releases free pages of glibc's heaps; it takes each heap's
    // lock, so it is safe to call while other threads allocate.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released == 1,
        took_ms = started.elapsed().as_secs_f64() * 1e3,
        "freed heap pages returned to the system"
    );
}

/// The count of finished requests at the last tick and at the last trim.
#[derive(Default)]
struct Bursts {
    seen: u64,
    trimmed: u64,
}

impl Bursts {
    /// Whether a burst ended, given the count of finished requests one tick later.
    fn ended(&mut self, finished: u64) -> bool {
        let ended = finished == self.seen && finished != self.trimmed;
        if ended {
            self.trimmed = finished;
        }
        self.seen = finished;
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::Bursts;

    #[test]
    fn a_burst_ends_once_a_tick_passes_without_requests() {
        let mut bursts = Bursts::default();
        assert!(!bursts.ended(0), "nothing happened yet");
        assert!(!bursts.ended(500), "under load");
        assert!(!bursts.ended(900), "still under load");
        assert!(bursts.ended(900), "a quiet tick after the load");
        assert!(!bursts.ended(900), "still quiet: trimmed already");
        assert!(!bursts.ended(901), "one more request");
        assert!(bursts.ended(901), "and quiet again");
    }
}
