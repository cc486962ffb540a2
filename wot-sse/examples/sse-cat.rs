//! `sse-cat`: prints the events of an SSE stream as JSON lines (under construction).

fn main() {}
