//! Unit tests of the queue: each thread's lane and its limit, admission, draining, the
//! flush targets, and the claim on counting.

use super::*;

fn accepted<E: std::fmt::Debug>(pushed: Pushed<E>) -> bool {
    matches!(pushed, Pushed::Accepted)
}

/// Runs `body` on a thread, and returns once that thread has exited — its thread-locals
/// dropped, which marks its lanes as exited (a scoped thread's join returns before).
fn on_a_thread_that_exits(queue: &Arc<Queue<u32>>, body: fn(&Queue<u32>)) {
    let queue = queue.clone();
    std::thread::spawn(move || body(&queue)).join().unwrap();
}

#[test]
fn a_lane_respects_the_limit_and_admission() {
    let queue = Queue::<u32>::new(2).unwrap();
    assert!(accepted(queue.push(1, false)));
    assert!(accepted(queue.push(2, false)));
    assert!(matches!(queue.push(3, false), Pushed::Full(3)));
    assert_eq!(queue.take_one(), Ok(Some(1)));
    // Taken but not finished: still pending.
    assert!(matches!(queue.push(3, false), Pushed::Full(3)));
    assert_eq!(queue.finish(1, 0), Ok(()));
    assert!(accepted(queue.push(3, false)));
    assert!(!queue.drained(), "admission is open");
    queue.close();
    assert!(matches!(queue.push(4, false), Pushed::Closed(4)));
    assert!(!queue.drained(), "two events are pending");
    let stats = queue.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.pending,
            stats.high_watermark
        ),
        (3, 1, 2, 2)
    );
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert_eq!(batch, [2, 3]);
    assert_eq!(queue.finish(2, 0), Ok(()));
    assert!(queue.drained());
}

#[test]
fn each_thread_has_a_lane_of_its_own() {
    let queue = Arc::new(Queue::<u32>::new(1).unwrap());
    assert!(accepted(queue.push(1, false)));
    assert!(matches!(queue.push(2, false), Pushed::Full(2)));
    on_a_thread_that_exits(&queue, |queue| {
        assert!(accepted(queue.push(10, false)));
        assert!(matches!(queue.push(11, false), Pushed::Full(11)));
    });
    // The exited thread's lane is drained, then removed.
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    batch.sort_unstable();
    assert_eq!(batch, [1, 10]);
    assert_eq!(lock(&queue.lanes).len(), 3, "shared lane and two lanes");
    assert_eq!(queue.finish(2, 0), Ok(()));
    batch.clear();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert!(batch.is_empty());
    assert_eq!(
        lock(&queue.lanes).len(),
        2,
        "the exited thread's lane is gone"
    );
    let stats = queue.stats();
    assert_eq!((stats.accepted, stats.delivered, stats.pending), (2, 2, 0));
    assert_eq!(stats.high_watermark, 1);
}

#[test]
fn a_lane_registered_after_the_close_is_closed() {
    let queue = Queue::<u32>::new(4).unwrap();
    queue.close();
    assert!(matches!(queue.push(1, false), Pushed::Closed(1)));
    assert!(!queue.drained(), "the shared lane is not sealed yet");
    // The driver seals the closed lanes when it takes.
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert!(batch.is_empty());
    assert!(queue.drained());
}

#[test]
fn flush_targets_cover_every_lane() {
    let queue = Queue::<u32>::new(4).unwrap();
    assert!(accepted(queue.push(1, false)));
    std::thread::scope(|scope| {
        scope.spawn(|| assert!(accepted(queue.push(2, false))));
    });
    queue.set_flush_targets();
    assert!(!queue.flush_targets_met());
    // An event pushed after the targets were taken is not waited for.
    assert!(accepted(queue.push(3, false)));
    for expected in [1, 3] {
        assert_eq!(queue.take_one(), Ok(Some(expected)));
        assert_eq!(queue.finish(1, 0), Ok(()));
        assert!(
            !queue.flush_targets_met(),
            "the other lane's event is pending"
        );
    }
    assert_eq!(queue.take_one(), Ok(Some(2)));
    assert_eq!(queue.finish(1, 0), Ok(()));
    assert!(queue.flush_targets_met());
}

#[test]
fn capacity_is_at_least_one_and_at_most_the_maximum() {
    assert_eq!(Queue::<u8>::new(0).unwrap().capacity(), 1);
    assert_eq!(Queue::<u8>::new(1).unwrap().capacity(), 1);
    assert_eq!(
        Queue::<u8>::new(MAX_QUEUE_CAPACITY + 1).err(),
        Some(AllocationFailure::AboveMaximum)
    );
    assert_eq!(
        Queue::<u8>::new(usize::MAX).err(),
        Some(AllocationFailure::AboveMaximum)
    );
    let unallocated = Queue::<u8>::unallocated();
    assert_eq!(unallocated.capacity(), 0);
    assert!(matches!(unallocated.push(1, false), Pushed::Closed(1)));
    assert!(unallocated.drained());
}

#[test]
fn abandoning_refuses_later_pushes() {
    let queue = Queue::<u32>::new(4).unwrap();
    assert!(accepted(queue.push(7, false)));
    assert_eq!(queue.abandon_all(), Ok(1));
    assert!(matches!(queue.push(8, false), Pushed::Closed(8)));
    let stats = queue.stats();
    assert_eq!((stats.accepted, stats.failed, stats.pending), (1, 1, 0));
    assert!(queue.drained());
    assert_eq!(queue.abandon_all(), Err(Ended));
}

#[test]
fn once_counting_ended_the_driver_neither_takes_nor_counts() {
    let queue = Queue::<u32>::new(8).unwrap();
    for event in 1..=5 {
        assert!(accepted(queue.push(event, false)));
    }
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 2), Ok(()));
    assert_eq!(batch, [1, 2]);
    // Ended from outside while events 1 and 2 are in dispatch and 3..=5 queued.
    assert_eq!(
        queue.end_counting(),
        Ok(Abandoned {
            in_dispatch: 2,
            queued: 3
        })
    );
    assert_eq!(queue.end_counting(), Err(Ended));
    // The driver comes back from its dispatch: its outcome is not counted again.
    assert_eq!(queue.finish(2, 0), Err(Ended));
    assert_eq!(queue.take(&mut batch, 2), Err(Ended));
    assert_eq!(queue.take_one(), Err(Ended));
    assert_eq!(
        queue.unless_ended(|| panic!("served after the end")),
        Err(Ended)
    );
    let stats = queue.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.failed, stats.pending),
        (5, 0, 5, 0)
    );
    assert!(queue.drained(), "counted, and out of the lanes");
    queue.drop_abandoned();
    assert!(queue.is_empty());
    assert!(queue.drained());
    assert_eq!(queue.stats(), stats);
}

#[test]
fn a_full_lane_drops_into_its_own_count() {
    let queue = Arc::new(Queue::<u32>::new(1).unwrap());
    assert!(accepted(queue.push(1, true)));
    assert!(matches!(queue.push(2, true), Pushed::Dropped));
    assert!(matches!(queue.push(3, false), Pushed::Full(3)));
    on_a_thread_that_exits(&queue, |queue| {
        assert!(accepted(queue.push(10, true)));
        assert!(matches!(queue.push(11, true), Pushed::Dropped));
    });
    assert_eq!(queue.stats().dropped, 2);
    // The exited thread's lane is removed once drained: its drops stay counted.
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert_eq!(queue.finish(2, 0), Ok(()));
    batch.clear();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert_eq!(lock(&queue.lanes).len(), 2);
    assert_eq!(queue.stats().dropped, 2);
    assert_eq!(queue.losses().dropped, 2);
}

/// A zero-sized event takes no memory in a ring, and the lanes count it as any other.
#[test]
fn zero_sized_events_are_limited_and_counted() {
    let queue = Queue::<()>::new(2).unwrap();
    assert!(matches!(queue.push((), false), Pushed::Accepted));
    assert!(matches!(queue.push((), false), Pushed::Accepted));
    assert!(matches!(queue.push((), true), Pushed::Dropped));
    let mut batch = Vec::new();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert_eq!(batch.len(), 2);
    assert_eq!(queue.finish(2, 0), Ok(()));
    queue.close();
    batch.clear();
    assert_eq!(queue.take(&mut batch, 8), Ok(()));
    assert!(batch.is_empty());
    assert!(queue.drained());
    let stats = queue.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.dropped,
            stats.pending
        ),
        (2, 2, 1, 0)
    );
}
