//! Unit tests of the queue: reservation against the limit and admission, draining, and
//! the claim on counting.

use super::*;

#[test]
fn reservation_respects_the_limit_and_admission() {
    let queue = Queue::<u32>::new(2).unwrap();
    assert_eq!(queue.try_reserve(), Reserve::Closed);
    queue.open();
    assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 1 });
    queue.push(1, 1).unwrap();
    assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 2 });
    queue.push(2, 2).unwrap();
    assert_eq!(queue.try_reserve(), Reserve::Full);
    assert_eq!(queue.take_one(), Ok(Some(1)));
    // Taken but not finished: still pending.
    assert_eq!(queue.try_reserve(), Reserve::Full);
    assert_eq!(queue.finish(1, 0), Ok(()));
    assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 3 });
    queue.push(3, 3).unwrap();
    assert!(!queue.drained(), "admission is open");
    assert_eq!(queue.close(), 3);
    assert_eq!(queue.try_reserve(), Reserve::Closed);
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
fn a_queue_is_drained_only_once_admission_is_closed() {
    let queue = Queue::<u32>::new(2).unwrap();
    queue.open();
    // Nothing pending, but a producer may still reserve: not drained.
    assert!(queue.all_finished());
    assert!(!queue.drained());
    let Reserve::Reserved { slot } = queue.try_reserve() else {
        panic!("no slot")
    };
    // Closed with a reservation not pushed yet: not drained until it is finished.
    assert_eq!(queue.close(), 1);
    assert!(!queue.drained());
    queue.push(5, slot).unwrap();
    assert_eq!(queue.take_one(), Ok(Some(5)));
    assert!(!queue.drained());
    assert_eq!(queue.finish(1, 0), Ok(()));
    assert!(queue.drained());
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
    assert_eq!(unallocated.try_reserve(), Reserve::Closed);
    assert!(unallocated.drained());
}

#[test]
fn a_slot_is_the_event_beside_a_stamp() {
    assert_eq!(size_of::<RingSlot<u32>>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<RingSlot<u8>>(), 2 * size_of::<usize>());
    assert_eq!(size_of::<RingSlot<[u8; 24]>>(), 24 + size_of::<usize>());
}

#[test]
fn abandoning_revokes_later_pushes() {
    let queue = Queue::<u32>::new(4).unwrap();
    queue.open();
    let Reserve::Reserved { slot } = queue.try_reserve() else {
        panic!("no slot")
    };
    queue.push(7, slot).unwrap();
    let Reserve::Reserved { slot } = queue.try_reserve() else {
        panic!("no slot")
    };
    assert_eq!(queue.abandon_all(), Ok(1));
    assert_eq!(queue.push(8, slot), Err(8));
    let stats = queue.stats();
    assert_eq!((stats.accepted, stats.failed, stats.pending), (1, 1, 0));
    assert!(queue.all_finished());
    assert_eq!(queue.abandon_all(), Err(Ended));
}

#[test]
fn once_counting_ended_the_driver_neither_takes_nor_counts() {
    let queue = Queue::<u32>::new(8).unwrap();
    queue.open();
    for event in 1..=5 {
        let Reserve::Reserved { slot } = queue.try_reserve() else {
            panic!("no slot")
        };
        queue.push(event, slot).unwrap();
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
    queue.drop_abandoned();
    assert!(queue.is_empty());
    let stats = queue.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.failed, stats.pending),
        (5, 0, 5, 0)
    );
    assert_eq!(queue.finished(), 5);
}
