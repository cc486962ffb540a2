//! Reading the history back: what a dashboard shows again after a restart.

use std::time::Duration;

use redb::ReadableTable;
use wot_events::{EventRecord, PropertyUpdate};

use crate::batch::EVENTS_SERIES;
use crate::codec::{self, HistoryRecord as Record};
use crate::store::{BLOCK_MAX, BLOCKS, SERIES};
use crate::{Error, Store};

/// Default [`RestoreLimits::since`]: the last hour.
pub const DEFAULT_RESTORE_SINCE: Duration = Duration::from_secs(3600);
/// Default [`RestoreLimits::events`]: 1,000 events.
pub const DEFAULT_RESTORE_EVENTS: usize = 1_000;
/// Default [`RestoreLimits::per_property`]: 1,200 values.
pub const DEFAULT_RESTORE_PER_PROPERTY: usize = 1_200;
/// Default [`RestoreLimits::properties`]: 1,000 properties.
pub const DEFAULT_RESTORE_PROPERTIES: usize = 1_000;

/// How much history a restore returns: the newest records within a time window, at most so
/// many. The defaults match the dashboard's buffers (1,000 log entries, 1,200 chart values per
/// property) over the last hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreLimits {
    /// Only records received at most this long before now (default [`DEFAULT_RESTORE_SINCE`],
    /// 1 h). The store's own time window applies too.
    pub since: Duration,
    /// Newest events (default [`DEFAULT_RESTORE_EVENTS`], 1,000).
    pub events: usize,
    /// Newest values of each property (default [`DEFAULT_RESTORE_PER_PROPERTY`], 1,200).
    pub per_property: usize,
    /// Most properties (default [`DEFAULT_RESTORE_PROPERTIES`], 1,000), the most recently
    /// created histories first.
    pub properties: usize,
}

impl Default for RestoreLimits {
    fn default() -> Self {
        RestoreLimits {
            since: DEFAULT_RESTORE_SINCE,
            events: DEFAULT_RESTORE_EVENTS,
            per_property: DEFAULT_RESTORE_PER_PROPERTY,
            properties: DEFAULT_RESTORE_PROPERTIES,
        }
    }
}

impl RestoreLimits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`since`](Self::since).
    #[must_use]
    pub fn since(mut self, since: Duration) -> Self {
        self.since = since;
        self
    }

    /// Sets [`events`](Self::events).
    #[must_use]
    pub fn events(mut self, n: usize) -> Self {
        self.events = n;
        self
    }

    /// Sets [`per_property`](Self::per_property).
    #[must_use]
    pub fn per_property(mut self, n: usize) -> Self {
        self.per_property = n;
        self
    }

    /// Sets [`properties`](Self::properties).
    #[must_use]
    pub fn properties(mut self, n: usize) -> Self {
        self.properties = n;
        self
    }
}

/// The values of one property, oldest first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RestoredProperty {
    /// The Thing's id.
    pub thing_id: String,
    /// The property's name.
    pub property: String,
    /// Its newest values within the limits, oldest first.
    pub updates: Vec<PropertyUpdate>,
}

/// The history a restore found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RestoredHistory {
    /// The newest events within the limits, oldest first.
    pub events: Vec<EventRecord>,
    /// Each property's newest values, ordered by Thing id and property name.
    pub properties: Vec<RestoredProperty>,
    /// Blocks of records that did not decode, or were larger than the store writes (a record
    /// over [`StoreOptions::max_record_bytes`](crate::StoreOptions::max_record_bytes)), and
    /// were skipped: 0 unless the file was damaged in a way its checksums did not catch, or
    /// was written with a larger `max_record_bytes`.
    pub skipped_blocks: usize,
}

impl RestoredHistory {
    /// Number of property values.
    pub fn property_values(&self) -> usize {
        self.properties.iter().map(|p| p.updates.len()).sum()
    }
}

impl Store {
    /// The newest history within `limits` and the store's windows: the event timeline and
    /// each property's values, as a dashboard shows them again after a restart. Reads only
    /// the blocks it returns records from (plus one per series), newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] (or [`Error::Io`]) when the file cannot be read.
    pub fn restore_history(&self, limits: &RestoreLimits) -> Result<RestoredHistory, Error> {
        let inner = &self.inner;
        let now = inner.now();
        let window = limits.since.min(inner.options.history_age);
        let cutoff = now.checked_sub(window).map(codec::millis).unwrap_or(0);
        let txn = inner.begin_read()?;
        let series = txn.open_table(SERIES).map_err(|e| inner.db_error(e))?;
        let blocks = txn.open_table(BLOCKS).map_err(|e| inner.db_error(e))?;
        let mut out = RestoredHistory::default();
        // The writer stores no record over `max_record_bytes` and no block over `BLOCK_MAX`
        // unless one record alone is larger: anything else is damage (or a crafted file) and is
        // not decoded, which bounds what one block costs in memory.
        let max_record = inner.options.max_record_bytes;
        let max_block = usize::try_from(max_record)
            .unwrap_or(usize::MAX)
            .saturating_add(codec::BLOCK_HEADER + 4)
            .max(BLOCK_MAX);

        let mut properties = Vec::new();
        let mut events_id = None;
        for row in series.iter().map_err(|e| inner.db_error(e))? {
            let (k, v) = row.map_err(|e| inner.db_error(e))?;
            let key = k.value();
            let (id, _) = v.value();
            if key == EVENTS_SERIES {
                events_id = Some(id);
            } else if key.first() == Some(&b'p') {
                properties.push(id);
            }
        }
        // Series ids grow: the highest are the histories created most recently.
        properties.sort_unstable_by_key(|id| std::cmp::Reverse(*id));
        properties.truncate(limits.properties);

        let read_series = |id: u32, limit: usize, out: &mut RestoredHistory| {
            let mut newest_first: Vec<Record> = Vec::new();
            if limit == 0 {
                return Ok(newest_first);
            }
            let range = blocks
                .range((id, 0)..=(id, u64::MAX))
                .map_err(|e| inner.db_error(e))?;
            for row in range.rev() {
                let (_, v) = row.map_err(|e| inner.db_error(e))?;
                let block = v.value();
                if block.len() > max_block {
                    out.skipped_blocks += 1;
                    continue;
                }
                match codec::read_header(block) {
                    Ok(h) if h.last_ms < cutoff => break,
                    Ok(_) => {}
                    Err(_) => {
                        out.skipped_blocks += 1;
                        continue;
                    }
                }
                let Ok(records) = codec::decode_block(block, max_record) else {
                    out.skipped_blocks += 1;
                    continue;
                };
                for record in records.into_iter().rev() {
                    let at = match &record {
                        Record::Event(e) => e.received_at,
                        Record::Property(u) => u.timestamp,
                    };
                    if codec::millis(at) >= cutoff {
                        newest_first.push(record);
                        if newest_first.len() == limit {
                            return Ok(newest_first);
                        }
                    }
                }
            }
            Ok::<_, Error>(newest_first)
        };

        if let Some(id) = events_id {
            let records = read_series(id, limits.events, &mut out)?;
            out.events = records
                .into_iter()
                .rev()
                .filter_map(|r| match r {
                    Record::Event(e) => Some(e),
                    Record::Property(_) => None,
                })
                .collect();
        }
        for id in properties {
            let records = read_series(id, limits.per_property, &mut out)?;
            if records.is_empty() {
                continue;
            }
            let updates: Vec<PropertyUpdate> = records
                .into_iter()
                .rev()
                .filter_map(|r| match r {
                    Record::Property(u) => Some(u),
                    Record::Event(_) => None,
                })
                .collect();
            let Some(first) = updates.first() else {
                continue;
            };
            let thing_id = first.thing_id.to_string();
            let property = first.property.to_string();
            out.properties.push(RestoredProperty {
                thing_id,
                property,
                updates,
            });
        }
        out.properties
            .sort_by(|a, b| (&a.thing_id, &a.property).cmp(&(&b.thing_id, &b.property)));
        Ok(out)
    }
}
