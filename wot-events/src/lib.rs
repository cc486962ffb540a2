//! `wot-events`: subscribe to events and observe properties of W3C Web of Things devices,
//! from their Thing Descriptions.
//!
//! The pure parts (filters, ring buffers, the [`EventLog`] timeline, problem details) do no
//! I/O and take the clock as an argument.

mod filter;
mod log;
mod problem;
mod record;

pub use filter::{
    Compare, ExistsTest, Filter, FilterError, FilterExpr, MAX_FILTER_DEPTH, MAX_REGEX_LEN,
    RegexTest,
};
pub use log::{DEFAULT_LOG_CAPACITY, DEFAULT_RATE_WINDOW, EventLog, LogQuery, LogStats};
pub use problem::ProblemDetails;
pub use record::{EventRecord, PropertyHistory, PropertyUpdate, RingBuffer};
