//! The wot-live dashboard example (under construction).
fn main() {}
