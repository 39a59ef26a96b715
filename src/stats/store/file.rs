//! `FileStore`: one directory per store name, one JSON file per key, atomic writes.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{KeyValueStore, StoreError, check_name};

/// A [`KeyValueStore`] on the file system: the value of `key` in store `name` is the file
/// `<root>/<name>/<key>.json`.
///
/// A write is atomic: the value goes to a temporary file in the same directory (named
/// `.<key>.json.<pid>.<n>.tmp`), which is synced to disk, renamed over the old file, and
/// the directory is synced, so a crash at any point leaves either the old value or the new
/// one, never a mix. Renames and deletions sync the directory too. File I/O runs on the
/// `blocking` crate's thread pool, not on the executor that polls the future.
///
/// # Temporary files left behind
///
/// A process killed in the middle of a write leaves its temporary file behind. Reading a
/// key ([`get`](KeyValueStore::get), which the statistics do once, when they start and load
/// their state) first removes that key's temporaries whose write cannot be going on any
/// more:
///
/// - those of a writer process that is gone: the `<pid>` in the name is not a live process
///   (read from `/proc`, so on Linux only; a process that exited but was not reaped yet
///   counts as live);
/// - those last modified more than an hour ago, whoever wrote them: no write takes that
///   long, and a pid may have been reused by another process since.
///
/// Only files named exactly as this store names its temporaries, for the key being read,
/// are considered: never another key's (another process may own that key), never any other
/// file. A temporary of this process, or of another live process (a save in flight), is
/// left alone until it is an hour old. Two processes that share a directory across pid
/// namespaces (two containers) each see the other's pids as gone: give them different keys,
/// as two writers of one key overwrite each other anyway. Removal is best effort: a
/// temporary that cannot be removed is left for the next read, and the read goes on.
///
/// Store names and keys must pass [`check_name`](super::check_name): they become file
/// names.
///
/// # Examples
///
/// ```
/// use mvx::stats::{FileStore, KeyValueStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = FileStore::new(dir.path());
/// futures::executor::block_on(store.set("default", "state", &serde_json::json!({"n": 1})))?;
/// let text = std::fs::read_to_string(dir.path().join("default").join("state.json"))?;
/// assert_eq!(serde_json::from_str::<serde_json::Value>(&text)?, serde_json::json!({"n": 1}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileStore {
    root: Arc<Path>,
}

/// Tells apart the temporary files of concurrent writes in one process.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// A temporary file older than this is removed when its key is read, whoever wrote it.
const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(60 * 60);

impl FileStore {
    /// A store under the directory `root`, created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::from(root.into()),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of store `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`] when `name` cannot be a directory name.
    pub fn directory_of(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name("store name", name)?;
        Ok(self.root.join(name))
    }

    /// The file that holds `key` in store `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`] when `name` or `key` cannot be a file name.
    pub fn path_of(&self, name: &str, key: &str) -> Result<PathBuf, StoreError> {
        check_name("key", key)?;
        Ok(self.directory_of(name)?.join(format!("{key}.json")))
    }
}

impl KeyValueStore for FileStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let path = self.path_of(store, key)?;
        blocking::unblock(move || {
            remove_stale_temporaries(&path);
            read(&path)
        })
        .await
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        let path = self.path_of(store, key)?;
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|error| StoreError::InvalidJson(Arc::new(error)))?;
        bytes.push(b'\n');
        blocking::unblock(move || write(&path, &bytes)).await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(store, key)?;
        blocking::unblock(move || match fs::remove_file(&path) {
            Ok(()) => sync_directory_of(&path).map(|()| true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(StoreError::io("removing", path, error)),
        })
        .await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let from_path = self.path_of(store, from)?;
        let to_path = self.path_of(store, to)?;
        let to = to.to_owned();
        blocking::unblock(move || {
            // `fs::rename` replaces its destination: make sure there is none.
            match fs::symlink_metadata(&to_path) {
                Ok(_) => return Err(StoreError::KeyTaken { key: to }),
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io("inspecting", to_path, error)),
            }
            match fs::rename(&from_path, &to_path) {
                Ok(()) => sync_directory_of(&to_path).map(|()| true),
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
                Err(error) => Err(StoreError::io("renaming", from_path, error)),
            }
        })
        .await
    }
}

fn read(path: &Path) -> Result<Option<Value>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::InvalidJson(Arc::new(error))),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::io("reading", path, error)),
    }
}

/// Removes the temporary files of writes to `path` that cannot be going on any more (the
/// rules: [`FileStore`]'s docs, "Temporary files left behind"). Best effort.
fn remove_stale_temporaries(path: &Path) {
    let (Some(directory), Some(file_name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(directory) else {
        // No directory yet (nothing was ever written), or one that cannot be read: the read
        // that follows reports it.
        return;
    };
    let file_name = file_name.to_string_lossy();
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| temporary_writer(name, &file_name))
        else {
            continue;
        };
        let stale = entry
            .metadata()
            .ok()
            .and_then(|metadata| metadata.modified().ok())
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > STALE_TEMPORARY_AGE);
        if stale || process_is_gone(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The pid of the writer of a temporary file named `.<file_name>.<pid>.<n>.tmp`, or `None`
/// when `name` is not such a name.
fn temporary_writer(name: &str, file_name: &str) -> Option<u32> {
    let numbers = name
        .strip_prefix('.')?
        .strip_prefix(file_name)?
        .strip_prefix('.')?
        .strip_suffix(".tmp")?;
    let (pid, write) = numbers.split_once('.')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(write) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is known not to exist. Only Linux can tell (through `/proc`);
/// elsewhere, or without `/proc`, a process is never known to be gone.
fn process_is_gone(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
    } else {
        false
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let directory = path.parent().expect("a store file is in a directory");
    fs::create_dir_all(directory)
        .map_err(|error| StoreError::io("creating the directory", directory, error))?;
    let file_name = path.file_name().expect("a store file has a name");
    let temporary = directory.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::create(&temporary)
            .map_err(|error| StoreError::io("creating", &temporary, error))?;
        file.write_all(bytes)
            .map_err(|error| StoreError::io("writing", &temporary, error))?;
        file.sync_all()
            .map_err(|error| StoreError::io("syncing", &temporary, error))?;
        fs::rename(&temporary, path).map_err(|error| StoreError::io("renaming", &temporary, error))
    })();
    if written.is_err() {
        // The old value is intact; the temporary file is of no use.
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_directory_of(path)
}

/// Makes a rename or removal in `path`'s directory durable.
fn sync_directory_of(path: &Path) -> Result<(), StoreError> {
    let directory = path.parent().expect("a store file is in a directory");
    if cfg!(unix) {
        File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(|error| StoreError::io("syncing the directory", directory, error))?;
    }
    Ok(())
}
