//! Helpers shared by the store's integration tests.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::json;
use wot_events::EventRecord;
use wot_store::FILE_NAME;

/// A fresh directory under the system's temp dir, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "wot-store-test-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The store's file in this directory.
    #[allow(dead_code)] // not every test file opens the file itself
    pub(crate) fn file(&self) -> PathBuf {
        self.0.join(FILE_NAME)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Event `i` of a boiler, received `at`, with `i` as its id and data.
pub(crate) fn event(i: u64, at: SystemTime) -> EventRecord {
    EventRecord {
        thing_id: "urn:dev:boiler".into(),
        thing_title: "Boiler".into(),
        event: "overheat".into(),
        data: json!({"n": i}).into(),
        event_id: Some(i.to_string().into()),
        received_at: at,
    }
}
