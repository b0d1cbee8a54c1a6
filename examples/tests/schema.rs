//! The bank's stored event shapes are locked in `examples/cqrs-schema.lock`:
//! changing an event without a new version and an upcaster fails here,
//! before it reaches a log full of the old shape.

#[test]
fn the_bank_event_shapes_are_locked() {
    // The bank's events register themselves when its module is linked in.
    assert_eq!(cqrs_examples::bank::money(1), "0.01");
    cqrs_core::schema::assert_locked!();
}
