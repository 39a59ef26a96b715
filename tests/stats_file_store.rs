//! `FileStore`'s temporary files: a process killed in the middle of a save leaves its
//! temporary (`.<key>.json.<pid>.<n>.tmp`) behind; the next read of that key removes it —
//! and only it: never a live writer's temporary, another key's, or a file of the user's.
#![cfg(not(loom))]
#![cfg(unix)]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use futures::executor::block_on;
use mvx::stats::{FileStore, KeyValueStore, Statistics, StatsConfig};
use serde_json::json;
use watchdog::within_guard;

/// A process that has exited (and been reaped): its pid names a writer that is gone.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A process that lives until dropped: its pid names a writer still at work.
struct Live(Child);

impl Live {
    fn spawn() -> Self {
        Self(Command::new("sleep").arg("600").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `text` to `directory/name`, as a killed save would leave it.
fn leave(directory: &Path, name: &str, text: &str) {
    fs::write(directory.join(name), text).unwrap();
}

/// The names in `directory`, sorted.
fn names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_read_removes_the_temporaries_of_its_key_whose_writer_is_gone() {
    let root = tempfile::tempdir().unwrap();
    let store = FileStore::new(root.path());
    block_on(store.set("default", "statistics", &json!({"n": 7}))).unwrap();
    let directory = root.path().join("default");
    let dead = dead_pid();
    let live = Live::spawn();
    let own = std::process::id();

    // Left by a process killed mid-save: half a value.
    let killed = format!(".statistics.json.{dead}.3.tmp");
    leave(&directory, &killed, "{\"version\": 1, \"requ");
    // A save in flight in another process, and one in this process.
    let in_flight = format!(".statistics.json.{}.0.tmp", live.pid());
    leave(&directory, &in_flight, "{");
    let own_in_flight = format!(".statistics.json.{own}.99.tmp");
    leave(&directory, &own_in_flight, "{");
    // A live writer's temporary that is hours old: that save is not going to end.
    let abandoned = format!(".statistics.json.{}.1.tmp", live.pid());
    leave(&directory, &abandoned, "{");
    File::options()
        .write(true)
        .open(directory.join(&abandoned))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3 * 3600))
        .unwrap();
    // Another key's temporary, left by the same dead writer: that key is not read here.
    let other_key = format!(".other.json.{dead}.0.tmp");
    leave(&directory, &other_key, "{");
    // Files of the user's that only look alike.
    let users = [
        "statistics.json.bak".to_owned(),
        ".statistics.json.tmp".to_owned(),
        format!(".statistics.json.{dead}.tmp"),
        format!(".statistics.json.{dead}.x.tmp"),
        format!(".statistics.json.+{dead}.1.tmp"),
        format!("statistics.json.{dead}.1.tmp"),
        "notes.tmp".to_owned(),
    ];
    for name in &users {
        leave(&directory, name, "the user's");
    }

    assert_eq!(
        block_on(store.get("default", "statistics")).unwrap(),
        Some(json!({"n": 7}))
    );

    let mut expected = vec![
        "statistics.json".to_owned(),
        in_flight.clone(),
        own_in_flight,
        other_key,
    ];
    expected.extend(users.iter().cloned());
    expected.sort();
    assert_eq!(names(&directory), expected);
    for name in &users {
        assert_eq!(
            fs::read_to_string(directory.join(name)).unwrap(),
            "the user's"
        );
    }

    // A key with no value yet is cleaned up all the same.
    let fresh = format!(".fresh.json.{dead}.0.tmp");
    leave(&directory, &fresh, "{");
    assert_eq!(block_on(store.get("default", "fresh")).unwrap(), None);
    assert!(!directory.join(&fresh).exists());
    // And a store whose directory does not exist reads as empty.
    assert_eq!(
        block_on(store.get("never-written", "statistics")).unwrap(),
        None
    );
    drop(live);
}

#[test]
fn statistics_that_load_their_state_clean_up_after_a_killed_save() {
    within_guard(|| {
        let root = tempfile::tempdir().unwrap();
        let config = || {
            StatsConfig::default()
                .persist_to(FileStore::new(root.path()))
                .persist_state_key("statistics")
        };

        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        stats.record_request_processing_start(1u64).unwrap();
        stats.record_request_processing_finish(1u64).unwrap();
        stats.stop().wait().unwrap();
        driver.join().unwrap();

        // The next save is killed after its temporary was written, before the rename.
        let directory = root.path().join("default");
        let killed = format!(".statistics.json.{}.0.tmp", dead_pid());
        leave(&directory, &killed, "{\"version\": 1, \"requests_fin");
        assert_eq!(
            names(&directory),
            vec![killed.clone(), "statistics.json".to_owned()]
        );

        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        assert_eq!(names(&directory), vec!["statistics.json".to_owned()]);
        assert_eq!(stats.calculate_blocking().unwrap().requests_finished, 1);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert_eq!(names(&directory), vec!["statistics.json".to_owned()]);
    });
}

#[test]
fn in_crawlee_s_layout_a_read_removes_the_temporaries_of_the_value_and_its_description() {
    let storage = tempfile::tempdir().unwrap();
    let store = FileStore::crawlee(storage.path());
    let key = "__CRAWLER_STATISTICS_0";
    block_on(store.set("default", key, &json!({"requestsFinished": 7}))).unwrap();
    let directory = storage.path().join("key_value_stores").join("default");
    let dead = dead_pid();
    let value_temporary = format!(".{key}.{dead}.3.tmp");
    let description_temporary = format!(".{key}.__metadata__.json.{dead}.4.tmp");
    leave(&directory, &value_temporary, "{\"requestsFin");
    leave(&directory, &description_temporary, "{\"key\"");
    // Another key's temporaries are not this read's to remove.
    let other = format!(".other.{dead}.5.tmp");
    leave(&directory, &other, "{");

    assert_eq!(
        block_on(store.get("default", key)).unwrap(),
        Some(json!({"requestsFinished": 7}))
    );
    assert_eq!(
        names(&directory),
        vec![other, key.to_owned(), format!("{key}.__metadata__.json"),]
    );
}
