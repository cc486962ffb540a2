//! Shared helpers for the wot-live benchmarks (under construction).
