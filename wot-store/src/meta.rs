//! App-owned values committed with a batch, each with the history position where that
//! batch's records begin; and reading the history back from such a position.
//!
//! An app that writes something outside the store for each batch (lines to a file, say) can
//! make that output part of the committed state: it sets a meta value describing the output
//! so far (the file's length) on each batch, and after a crash reads it back
//! ([`Store::meta`]), cuts its output back to it and writes again the output of every record
//! committed from the stored position on ([`Store::history_since`]).

use redb::{ReadableTable, TableDefinition};

use crate::batch::{Batch, Op};
use crate::codec::{self, HistoryRecord};
use crate::store::{BLOCK_MAX, BLOCKS, INDEX};
use crate::{Error, Store};

/// Longest meta key: 64 bytes.
pub const MAX_META_KEY_BYTES: usize = 64;
/// Largest meta value: 16 KiB. A value read from the file that is larger is
/// [`Error::Corrupt`], never allocated.
pub const MAX_META_VALUE_BYTES: usize = 16 << 10;

/// Key → history position (u64, little-endian) then the app's value.
pub(crate) const APP_META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("app_meta");

/// Bytes of the position stored before each value.
const POSITION_BYTES: usize = 8;

/// A place in the history's commit order: the records committed from here on are those
/// [`Store::history_since`] returns. Written by the store with each meta value
/// ([`Batch::set_meta`]); opaque to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistoryPosition(pub(crate) u64);

/// A meta value as committed ([`Store::meta`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// The app's value, as given to [`Batch::set_meta`].
    pub value: Vec<u8>,
    /// Where the history stood when the records of the batch that set it began: every
    /// record of that batch, and of the batches committed after it, is at or after it.
    pub history: HistoryPosition,
}

impl Batch {
    /// Sets the app-owned value `key` to `value`, committed with this batch (all or nothing,
    /// like the rest of it). The store keeps with it the history position where this
    /// batch's records begin ([`Meta::history`]); read both back with [`Store::meta`].
    ///
    /// Setting the same key twice in one batch keeps the last value.
    ///
    /// # Errors
    ///
    /// [`Error::MetaTooLarge`] when `key` is longer than [`MAX_META_KEY_BYTES`] or `value`
    /// than [`MAX_META_VALUE_BYTES`]; the batch is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use wot_store::Batch;
    ///
    /// let mut batch = Batch::new();
    /// batch.set_meta("output", &1234u64.to_le_bytes())?;
    /// assert!(batch.set_meta("output", &[0; 100_000]).is_err());
    /// # Ok::<(), wot_store::Error>(())
    /// ```
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<&mut Self, Error> {
        check_key(key)?;
        if value.len() > MAX_META_VALUE_BYTES {
            return Err(too_large(key, "value", value.len(), MAX_META_VALUE_BYTES));
        }
        self.ops.push(Op::Meta {
            key: key.to_owned(),
            value: Some(value.to_vec()),
        });
        Ok(self)
    }

    /// Removes the app-owned value `key` with this batch (nothing happens when there is
    /// none).
    ///
    /// # Errors
    ///
    /// [`Error::MetaTooLarge`] when `key` is longer than [`MAX_META_KEY_BYTES`].
    pub fn remove_meta(&mut self, key: &str) -> Result<&mut Self, Error> {
        check_key(key)?;
        self.ops.push(Op::Meta {
            key: key.to_owned(),
            value: None,
        });
        Ok(self)
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_META_KEY_BYTES {
        return Err(too_large(key, "key", key.len(), MAX_META_KEY_BYTES));
    }
    Ok(())
}

fn too_large(key: &str, what: &'static str, bytes: usize, max: usize) -> Error {
    let mut end = key.len().min(MAX_META_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    Error::MetaTooLarge {
        key: key[..end].to_owned(),
        what,
        bytes,
        max,
    }
}

/// The stored form of a meta value.
pub(crate) fn encode(position: u64, value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(POSITION_BYTES + value.len());
    stored.extend_from_slice(&position.to_le_bytes());
    stored.extend_from_slice(value);
    stored
}

impl Store {
    /// The app-owned value `key` as last committed ([`Batch::set_meta`]), with the history
    /// position of the batch that set it; `None` when it was never set or was removed.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] (naming the key) when the stored value is shorter than its
    /// position or larger than [`MAX_META_VALUE_BYTES`]; [`Error::Database`] (or
    /// [`Error::Io`]) when the file cannot be read; [`Error::Closed`] after the store closed.
    pub fn meta(&self, key: &str) -> Result<Option<Meta>, Error> {
        let inner = &self.inner;
        if key.len() > MAX_META_KEY_BYTES {
            return Ok(None); // never stored
        }
        let txn = inner.begin_read()?;
        let table = txn.open_table(APP_META).map_err(|e| inner.db_error(e))?;
        let Some(stored) = table.get(key).map_err(|e| inner.db_error(e))? else {
            return Ok(None);
        };
        let stored = stored.value();
        let corrupt = |detail: String| Error::Corrupt {
            path: inner.path.clone(),
            detail: format!("meta value {key:?}: {detail}"),
        };
        if stored.len() < POSITION_BYTES {
            return Err(corrupt(format!(
                "{} bytes, shorter than its history position",
                stored.len()
            )));
        }
        let (position, value) = stored.split_at(POSITION_BYTES);
        if value.len() > MAX_META_VALUE_BYTES {
            return Err(corrupt(format!(
                "{} bytes, over the limit of {MAX_META_VALUE_BYTES}",
                value.len()
            )));
        }
        let mut bytes = [0; POSITION_BYTES];
        bytes.copy_from_slice(position);
        Ok(Some(Meta {
            value: value.to_vec(),
            history: HistoryPosition(u64::from_le_bytes(bytes)),
        }))
    }

    /// Hands `each` every history record committed from `from` on (events and property
    /// values, not filtered by the restore windows), in commit order for each series (the
    /// event timeline, each property): the records of the batch whose meta value gave `from`
    /// and of every batch committed after it. Records of different series within one commit
    /// come series by series, not interleaved as they were pushed. Records the store
    /// dropped (over [`StoreOptions::max_record_bytes`](crate::StoreOptions::max_record_bytes),
    /// nested too deep) or has pruned are not there.
    ///
    /// Reads one block (at most 60 KiB, or one record) at a time: memory stays bounded
    /// whatever the file says. Returns the number of blocks skipped because they did not
    /// decode or were larger than the store writes (0 unless the file was damaged).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] (or [`Error::Io`]) when the file cannot be read; [`Error::Closed`]
    /// after the store closed.
    pub fn history_since(
        &self,
        from: HistoryPosition,
        mut each: impl FnMut(HistoryRecord),
    ) -> Result<usize, Error> {
        let inner = &self.inner;
        let max_record = inner.options.max_record_bytes;
        let max_block = usize::try_from(max_record)
            .unwrap_or(usize::MAX)
            .saturating_add(codec::BLOCK_HEADER + 4)
            .max(BLOCK_MAX);
        let txn = inner.begin_read()?;
        let index = txn.open_table(INDEX).map_err(|e| inner.db_error(e))?;
        let blocks = txn.open_table(BLOCKS).map_err(|e| inner.db_error(e))?;
        let mut skipped = 0;
        for row in index.range(from.0..).map_err(|e| inner.db_error(e))? {
            let (seq, v) = row.map_err(|e| inner.db_error(e))?;
            let (seq, (id, ..)) = (seq.value(), v.value());
            let Some(block) = blocks.get((id, seq)).map_err(|e| inner.db_error(e))? else {
                skipped += 1;
                continue;
            };
            let block = block.value();
            if block.len() > max_block {
                skipped += 1;
                continue;
            }
            match codec::decode_block(block, max_record) {
                Ok(records) => records.into_iter().for_each(&mut each),
                Err(_) => skipped += 1,
            }
        }
        Ok(skipped)
    }
}

/// Creates the table (at open), so that readers never meet a missing one.
pub(crate) fn create_table(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(APP_META).map(drop)
}
