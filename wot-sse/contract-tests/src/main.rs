//! Contract-test service for `wot-sse` (under construction).
fn main() {}
