//! `FileStore`: one directory per store name, one JSON file per key, atomic writes; in
//! mvx's layout or in Crawlee's.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{KeyValueStore, StoreError, check_name};

/// A [`KeyValueStore`] on the file system, in one of two layouts:
///
/// - [`FileStore::new(root)`](Self::new), mvx's: the value of `key` in store `name` is the
///   file `<root>/<name>/<key>.json`;
/// - [`FileStore::crawlee(storage_dir)`](Self::crawlee), Crawlee's: the layout of Crawlee
///   for Python's file-system storage client (1.x), so that a Rust service and a Python
///   crawler share one store. The value of `key` in store `name` is the file
///   `<storage_dir>/key_value_stores/<name>/<key>` (the key percent-encoded as Python's
///   `urllib.parse.quote(key, safe='')` does: `!'()` become `%21%27%28%29`), described by
///   `<key>.__metadata__.json` (`{"key", "content_type", "size"}`). A write writes the
///   value, then its description, as Crawlee does; a value described as
///   `application/x-none` (what Crawlee's `set_value(key, None)` and its statistics'
///   `reset()` leave) reads as no value; a value without a description (Crawlee ignores
///   those) is read all the same. Keys ending in `__metadata__.json` are refused: they
///   would name Crawlee's descriptions.
///
/// A write is atomic: the value goes to a temporary file in the same directory (named
/// `.<file>.<pid>.<n>.tmp` after the file it replaces, such as `.<key>.json.<pid>.<n>.tmp`;
/// Crawlee lists only files whose names end in `.__metadata__.json`, so it never sees
/// them), which is synced to disk, renamed over the old file, and
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
/// Only files named exactly as this store names its temporaries, for the key being read
/// (and, in Crawlee's layout, its description), are considered: never another key's (another process may own that key), never any other
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
    layout: Layout,
}

/// Where a [`FileStore`] keeps its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `<root>/<name>/<key>.json`.
    Mvx,
    /// `<root>/key_value_stores/<name>/<quoted key>` and `<quoted key>.__metadata__.json`.
    Crawlee,
}

/// What Crawlee names the file that describes a value, after the value's file name.
const METADATA_SUFFIX: &str = ".__metadata__.json";

/// Tells apart the temporary files of concurrent writes in one process.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// A temporary file older than this is removed when its key is read, whoever wrote it.
const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(60 * 60);

impl FileStore {
    /// A store in mvx's layout under the directory `root`, created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::from(root.into()),
            layout: Layout::Mvx,
        }
    }

    /// A store in Crawlee's layout under `storage_dir`: Crawlee's `storage_dir`
    /// (`CRAWLEE_STORAGE_DIR`, `./storage` by default), created on the first write.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::stats::{FileStore, KeyValueStore};
    ///
    /// let storage = tempfile::tempdir()?;
    /// let store = FileStore::crawlee(storage.path());
    /// futures::executor::block_on(store.set("default", "__CRAWLER_STATISTICS_0", &serde_json::json!({"statsId": 0})))?;
    /// let directory = storage.path().join("key_value_stores").join("default");
    /// assert!(directory.join("__CRAWLER_STATISTICS_0").is_file());
    /// let described = std::fs::read_to_string(directory.join("__CRAWLER_STATISTICS_0.__metadata__.json"))?;
    /// assert!(described.contains("\"content_type\": \"application/json\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn crawlee(storage_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::from(storage_dir.into()),
            layout: Layout::Crawlee,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of store `name`: `<root>/<name>`, or in Crawlee's layout
    /// `<root>/key_value_stores/<name>`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`] when `name` cannot be a directory name.
    pub fn directory_of(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name("store name", name)?;
        Ok(match self.layout {
            Layout::Mvx => self.root.join(name),
            Layout::Crawlee => self.root.join("key_value_stores").join(name),
        })
    }

    /// The file that holds `key` in store `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`] when `name` or `key` cannot be a file name.
    pub fn path_of(&self, name: &str, key: &str) -> Result<PathBuf, StoreError> {
        check_name("key", key)?;
        let file = match self.layout {
            Layout::Mvx => format!("{key}.json"),
            Layout::Crawlee => {
                if key.ends_with("__metadata__.json") {
                    return Err(StoreError::InvalidName {
                        what: "key",
                        name: key.to_owned(),
                        problem: "it ends in __metadata__.json, which names Crawlee's descriptions",
                    });
                }
                quote(key)
            }
        };
        Ok(self.directory_of(name)?.join(file))
    }
}

/// `key` as Python's `urllib.parse.quote(key, safe='')` writes it, for the characters
/// [`check_name`] lets through: letters, digits and `-_.` as they are, the rest `%XX`.
fn quote(key: &str) -> String {
    let mut quoted = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            quoted.push(char::from(byte));
        } else {
            quoted.push_str(&format!("%{byte:02X}"));
        }
    }
    quoted
}

/// The file that describes the value in `path`, in Crawlee's layout.
fn metadata_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(METADATA_SUFFIX);
    path.with_file_name(name)
}

/// The description of a value, as Crawlee writes it.
fn metadata(key: &str, content_type: &str, size: usize) -> Vec<u8> {
    let described = serde_json::json!({"key": key, "content_type": content_type, "size": size});
    // A `Value` always serializes.
    serde_json::to_vec_pretty(&described).unwrap_or_default()
}

impl KeyValueStore for FileStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let path = self.path_of(store, key)?;
        let layout = self.layout;
        blocking::unblock(move || {
            remove_stale_temporaries(&path);
            if layout == Layout::Crawlee {
                let metadata = metadata_path(&path);
                remove_stale_temporaries(&metadata);
                if path.is_file() && described_as_none(&metadata) {
                    return Ok(None);
                }
            }
            read(&path)
        })
        .await
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        let path = self.path_of(store, key)?;
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|error| StoreError::InvalidJson(Arc::new(error)))?;
        match self.layout {
            Layout::Mvx => {
                bytes.push(b'\n');
                blocking::unblock(move || write(&path, &bytes)).await
            }
            Layout::Crawlee => {
                let described = metadata(key, "application/json", bytes.len());
                blocking::unblock(move || {
                    write(&path, &bytes)?;
                    write(&metadata_path(&path), &described)
                })
                .await
            }
        }
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(store, key)?;
        let layout = self.layout;
        blocking::unblock(move || {
            let removed = remove(&path)?;
            if layout == Layout::Crawlee {
                remove(&metadata_path(&path))?;
            }
            if removed {
                sync_directory_of(&path)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let from_path = self.path_of(store, from)?;
        let to_path = self.path_of(store, to)?;
        let layout = self.layout;
        let to = to.to_owned();
        blocking::unblock(move || {
            // `fs::rename` replaces its destination: make sure there is none.
            match fs::symlink_metadata(&to_path) {
                Ok(_) => return Err(StoreError::KeyTaken { key: to }),
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io("inspecting", to_path, error)),
            }
            match fs::rename(&from_path, &to_path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
                Err(error) => return Err(StoreError::io("renaming", from_path, error)),
            }
            if layout == Layout::Crawlee {
                // The moved value gets a description of its own, under its new key; the
                // old one goes.
                let old = metadata_path(&from_path);
                let content_type =
                    content_type(&old).unwrap_or_else(|| "application/json".to_owned());
                let size = fs::metadata(&to_path).map_or(0, |file| file.len() as usize);
                write(
                    &metadata_path(&to_path),
                    &metadata(&to, &content_type, size),
                )?;
                remove(&old)?;
            }
            sync_directory_of(&to_path).map(|()| true)
        })
        .await
    }
}

/// Removes `path`; whether it was there.
fn remove(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(error) => Err(StoreError::io("removing", path, error)),
    }
}

/// The content type a Crawlee description gives, if it can be read.
fn content_type(metadata: &Path) -> Option<String> {
    let bytes = fs::read(metadata).ok()?;
    let described: Value = serde_json::from_slice(&bytes).ok()?;
    described.get("content_type")?.as_str().map(str::to_owned)
}

/// Whether the value is described as Crawlee's "no value" (`application/x-none`).
fn described_as_none(metadata: &Path) -> bool {
    content_type(metadata).as_deref() == Some("application/x-none")
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
