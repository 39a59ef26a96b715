//! With the `log` feature, statistics given no other destination report through the `log`
//! crate: one `Info` record with target `mvx::stats` at the start, the figures in its
//! message and as key-values — to whatever logger the application installed (here, one
//! that keeps the records for the test).
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::executor::block_on;
use log::kv::{Key, Value, VisitSource};
use log::{Log, Metadata, Record};
use mvx::stats::{REPORT_TARGET, Statistics, StatsConfig};
use watchdog::within_guard;

/// A record as kept: level, target, message, key-values as text.
type Kept = (log::Level, String, String, Vec<(String, String)>);

/// A logger that keeps every record.
struct Keeper(Mutex<Vec<Kept>>);

struct Pairs<'a>(&'a mut Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Pairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

impl Log for Keeper {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let mut pairs = Vec::new();
        record.key_values().visit(&mut Pairs(&mut pairs)).unwrap();
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
            pairs,
        ));
    }

    fn flush(&self) {}
}

fn keeper() -> &'static Keeper {
    static KEEPER: OnceLock<&'static Keeper> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let keeper: &'static Keeper = Box::leak(Box::new(Keeper(Mutex::new(Vec::new()))));
        log::set_logger(keeper).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        keeper
    })
}

#[test]
fn by_default_the_figures_are_reported_through_the_log_crate_at_the_start() {
    within_guard(|| {
        let keeper = keeper();
        let config = StatsConfig::default().log_interval(Duration::from_secs(3600));
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        // The first report is handed over before the start completes.
        let records: Vec<Kept> = keeper
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, target, _, _)| target == REPORT_TARGET)
            .cloned()
            .collect();
        stats.stop().wait().unwrap();
        driver.join().unwrap();

        assert_eq!(records.len(), 1, "{records:?}");
        let (level, _, message, pairs) = &records[0];
        assert_eq!(*level, log::Level::Info);
        assert!(
            message.starts_with(
                "Statistics requests_finished=0 requests_failed=0 retry_histogram=[0] \
                 request_avg_failed_duration=None request_avg_finished_duration=None"
            ),
            "{message}"
        );
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value("requests_total"), Some("0"));
        assert_eq!(value("retry_histogram"), Some("[0]"));
        assert_eq!(value("request_avg_failed_duration"), Some("None"));
        assert_eq!(pairs.len(), 13, "{pairs:?}");
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());
    });
}
