//! The crate's error type.

use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong opening, writing or reading a store. Every variant that concerns the file
/// names its path.
///
/// Errors are cheap to clone (sources are shared), because one failed group commit fails
/// every batch in it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file was written by another format version of this crate, and this build neither
    /// reads nor migrates it. Nothing was read or changed.
    #[error(
        "{}: the store is in format version {found}, this build of wot-store reads version \
         {supported} only; open it with a build that reads version {found}, or move the \
         directory away to start empty",
        path.display()
    )]
    Version {
        /// The database file.
        path: PathBuf,
        /// The version the file says it is in.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },
    /// The file is not a store this crate can read: damaged, truncated, another program's
    /// file, or a record in it does not decode.
    #[error("{}: the store is corrupt: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was found wrong, and where.
        detail: String,
    },
    /// Another process (or another [`Store`](crate::Store) in this one) has the file open.
    #[error("{}: the store is open in another process or handle", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The operating system refused a file operation.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The database engine failed (for a commit: the disk is full, or a write failed). The
    /// batches of the failed transaction were not written.
    #[error("{}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: Arc<redb::Error>,
    },
    /// A setting is out of its range.
    #[error("invalid store setting: {0}")]
    Setting(String),
    /// A meta key or value ([`Batch::set_meta`](crate::Batch::set_meta)) is over its limit
    /// ([`MAX_META_KEY_BYTES`](crate::MAX_META_KEY_BYTES),
    /// [`MAX_META_VALUE_BYTES`](crate::MAX_META_VALUE_BYTES)); nothing was added to the batch.
    #[error("meta {what} of {key:?} is {bytes} bytes, over the limit of {max}")]
    MetaTooLarge {
        /// The key (its first 64 bytes).
        key: String,
        /// `"key"` or `"value"`.
        what: &'static str,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The store was closed (or its writer thread stopped) before the batch was written.
    #[error("{}: the store is closed", path.display())]
    Closed {
        /// The database file.
        path: PathBuf,
    },
}

impl Error {
    /// Whether the file is in another format version ([`Error::Version`]).
    pub fn is_version(&self) -> bool {
        matches!(self, Error::Version { .. })
    }

    /// Whether the file is damaged or not a store ([`Error::Corrupt`]).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// Whether the store was closed before the operation ([`Error::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }

    pub(crate) fn closed(path: &std::path::Path) -> Error {
        Error::Closed {
            path: path.to_owned(),
        }
    }

    /// Sorts an engine error: corruption, a held lock, or the engine's own failure.
    pub(crate) fn database(path: &std::path::Path, error: impl Into<redb::Error>) -> Error {
        let path = path.to_owned();
        match error.into() {
            redb::Error::Corrupted(detail) => Error::Corrupt { path, detail },
            redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                Error::Locked { path }
            }
            redb::Error::UpgradeRequired(v) => Error::Corrupt {
                path,
                detail: format!(
                    "the database engine's file format {v} is not readable by this build"
                ),
            },
            // The engine's word for a file that is not one of its databases.
            redb::Error::Io(source) if source.kind() == std::io::ErrorKind::InvalidData => {
                Error::Corrupt {
                    path,
                    detail: source.to_string(),
                }
            }
            redb::Error::Io(source) => Error::Io {
                path,
                source: Arc::new(source),
            },
            other => Error::Database {
                path,
                source: Arc::new(other),
            },
        }
    }
}
