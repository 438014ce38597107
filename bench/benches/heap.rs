//! Heap the exporter's store keeps per machine, counted by a global allocator
//! (bytes live after seeding the load test's fleet, minus before, over the
//! machines). Its own binary, so the counting does not slow the timed benches.
//!
//! Prints `statescope-record alloc.ours {...}`, which bench/run.sh adds to
//! the run's results. Resident memory of the real process (allocator
//! overhead and all) is measured separately over HTTP.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counter
// only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    // The fleet of the load test, unless STATESCOPE_BENCH_SIZES says otherwise.
    let machines = statescope_bench::bench_sizes(&[10_000])[0];
    let before = LIVE.load(Ordering::Relaxed);
    let store = common::seeded_store(machines);
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(store.machines().len(), machines);
    let per_machine = after.saturating_sub(before) as f64 / machines as f64;
    drop(store);
    println!(
        "statescope-record alloc.ours {}",
        serde_json::json!({"machines": machines, "bytes_per_machine": per_machine})
    );
    eprintln!("heap: {per_machine:.0} bytes per machine ({machines} machines in the exporter's store)");
}
