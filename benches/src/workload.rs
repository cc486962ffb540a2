//! The benchmark workloads: pre-encoded `text/event-stream` bodies and how they are chunked.
//!
//! | case | body | chunks |
//! | --- | --- | --- |
//! | (a) | 100,000 WoT Profile notifications (`event`, ~70 bytes of JSON `data`, `id`) | 64 KiB |
//! | (b) | 1,000 events with 64 KiB of `data` each | 64 KiB |
//! | (c) | one 8 MiB single-line event | 1 KiB, and one chunk |
//! | (d) | the body of (a) | 1 byte |

use std::fmt::Write as _;

use bytes::Bytes;

/// 1 KiB.
pub const KIB: usize = 1024;

/// A body together with the chunk size it is delivered in and the number of events it holds.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short name used as the criterion benchmark id, e.g. `a-small-64KiB`.
    pub name: &'static str,
    /// The whole pre-encoded body.
    pub body: Bytes,
    /// Size of each chunk (the last one may be shorter).
    pub chunk_size: usize,
    /// How many events the body dispatches.
    pub events: u64,
}

impl Workload {
    /// The body cut into chunks of [`chunk_size`](Self::chunk_size) bytes, without copying.
    pub fn chunks(&self) -> Chunks {
        Chunks {
            body: self.body.clone(),
            size: self.chunk_size.max(1),
        }
    }

    /// The number of chunks the body is delivered in.
    pub fn chunk_count(&self) -> usize {
        self.body.len().div_ceil(self.chunk_size.max(1))
    }
}

/// An iterator over zero-copy slices of a body (each [`Bytes`] shares the body's buffer).
#[derive(Debug, Clone)]
pub struct Chunks {
    body: Bytes,
    size: usize,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.body.is_empty() {
            return None;
        }
        let take = self.size.min(self.body.len());
        Some(self.body.split_to(take))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.body.len().div_ceil(self.size);
        (n, Some(n))
    }
}

/// `count` WoT Profile property notifications: `event: temperature`, a JSON `data` line of
/// about 70 bytes, and an increasing `id`.
pub fn small_notifications(count: usize) -> Bytes {
    let mut body = String::with_capacity(count * 120);
    for i in 0..count {
        // Values vary so that no parser can benefit from identical lines.
        let value = 18.0 + (i % 700) as f64 / 100.0;
        let _ = write!(
            body,
            "event: temperature\n\
             data: {{\"value\":{value:.2},\"unit\":\"cel\",\"ts\":\"2026-11-27T01:{:02}:{:02}.{:03}Z\",\"ok\":true}}\n\
             id: {i}\n\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
        );
    }
    Bytes::from(body)
}

/// `count` events whose single `data` line is `data_len` bytes of JSON (a string of digits and
/// letters), each with an `id`.
pub fn large_events(count: usize, data_len: usize) -> Bytes {
    let mut body = String::with_capacity(count * (data_len + 32));
    for i in 0..count {
        body.push_str("data: ");
        push_json_payload(&mut body, data_len, i);
        let _ = write!(body, "\nid: {i}\n\n");
    }
    Bytes::from(body)
}

/// One event whose single `data` line is `data_len` bytes.
pub fn single_line_event(data_len: usize) -> Bytes {
    let mut body = String::with_capacity(data_len + 16);
    body.push_str("data: ");
    push_json_payload(&mut body, data_len, 0);
    body.push_str("\n\n");
    Bytes::from(body)
}

/// Appends a JSON string of exactly `len` bytes (`len >= 2`).
fn push_json_payload(out: &mut String, len: usize, seed: usize) {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    out.push('"');
    out.extend(
        (0..len.saturating_sub(2)).map(|k| char::from(ALPHABET[(k * 7 + seed) % ALPHABET.len()])),
    );
    out.push('"');
}

/// Case (a): 100,000 small notifications in 64 KiB chunks.
pub fn case_a() -> Workload {
    Workload {
        name: "a-small-64KiB",
        body: small_notifications(100_000),
        chunk_size: 64 * KIB,
        events: 100_000,
    }
}

/// Case (b): 1,000 events of 64 KiB data in 64 KiB chunks.
pub fn case_b() -> Workload {
    Workload {
        name: "b-64KiB-events",
        body: large_events(1_000, 64 * KIB),
        chunk_size: 64 * KIB,
        events: 1_000,
    }
}

/// Case (c), chunked: one 8 MiB single-line event in 1 KiB chunks.
pub fn case_c_chunked() -> Workload {
    Workload {
        name: "c-8MiB-1KiB-chunks",
        body: single_line_event(8 * KIB * KIB),
        chunk_size: KIB,
        events: 1,
    }
}

/// Case (c), whole: the same 8 MiB event in one chunk.
pub fn case_c_one_chunk() -> Workload {
    let chunked = case_c_chunked();
    Workload {
        name: "c-8MiB-one-chunk",
        chunk_size: chunked.body.len(),
        ..chunked
    }
}

/// Case (d): the body of case (a) in 1-byte chunks.
pub fn case_d() -> Workload {
    Workload {
        name: "d-small-1B-chunks",
        chunk_size: 1,
        ..case_a()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_notifications_have_about_70_bytes_of_data() {
        let body = small_notifications(1_000);
        let text = std::str::from_utf8(&body).expect("ASCII");
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.len(), 1_000);
        for line in data {
            assert!(
                (60..=80).contains(&line.len()),
                "{line} is {} bytes",
                line.len()
            );
            serde_json::from_str::<serde_json::Value>(line).expect("data is JSON");
        }
    }

    #[test]
    fn chunks_cover_the_body_exactly() {
        let w = Workload {
            chunk_size: 7,
            ..case_a()
        };
        let mut joined = Vec::with_capacity(w.body.len());
        let mut count = 0;
        for chunk in w.chunks() {
            assert!(chunk.len() <= 7 && !chunk.is_empty());
            joined.extend_from_slice(&chunk);
            count += 1;
        }
        assert_eq!(joined, w.body);
        assert_eq!(count, w.chunk_count());
    }

    #[test]
    fn large_payloads_have_the_requested_size() {
        let body = single_line_event(8 * KIB * KIB);
        assert_eq!(body.len(), 8 * KIB * KIB + "data: \n\n".len());
        let body = large_events(3, 64 * KIB);
        let first = body.split(|&b| b == b'\n').next().expect("a line");
        assert_eq!(first.len(), "data: ".len() + 64 * KIB);
    }
}
