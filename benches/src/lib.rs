//! Shared parts of the wot-live benchmarks: the workloads, the drivers that run each SSE parser
//! over in-memory chunks, the `\n\n`-counting floor, and a loopback HTTP server.
//!
//! The bench binaries under `benches/` are thin: they pick a workload and a driver from here and
//! hand them to criterion. Keeping the drivers here lets `cargo test -p benches` check that every
//! parser sees the same number of events in every workload, so a benchmark never measures a
//! parser that silently drops or merges events.

pub mod drivers;
pub mod interleave;
pub mod server;
pub mod workload;

pub use workload::{Chunks, Workload};

/// Counts blank-line event terminators (`\n\n`) in a byte stream delivered in chunks: the
/// floor every SSE parser is compared with. It only runs `memchr` over the bytes for `\n` and
/// checks whether two are adjacent, also across chunk boundaries.
///
/// ```
/// let mut counter = benches::BlankLineCounter::default();
/// counter.feed(b"data: 1\n");
/// counter.feed(b"\ndata: 2\n\n");
/// assert_eq!(counter.count(), 2);
/// ```
#[derive(Debug, Default, Clone)]
pub struct BlankLineCounter {
    count: u64,
    /// The byte just before the next one is an LF that has not been paired yet.
    after_lf: bool,
}

impl BlankLineCounter {
    /// Scans one chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        // The position at which an LF would directly follow the previous one.
        let mut adjacent_at = 0;
        for i in memchr::memchr_iter(b'\n', chunk) {
            if i == adjacent_at && self.after_lf {
                self.count += 1;
                self.after_lf = false;
            } else {
                self.after_lf = true;
            }
            adjacent_at = i + 1;
        }
        if adjacent_at != chunk.len() {
            self.after_lf = false;
        }
    }

    /// The number of `\n\n` pairs seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_line_counter_is_independent_of_chunking() {
        let body = b"data: a\n\ndata: b\n\n\n\nx\n\n";
        for size in 1..body.len() {
            let mut counter = BlankLineCounter::default();
            body.chunks(size).for_each(|chunk| counter.feed(chunk));
            assert_eq!(counter.count(), 4, "chunk size {size}");
        }
    }
}
