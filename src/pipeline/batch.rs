//! Batches: valid records gathered into batches of at most `TI_BATCH_SIZE`, each sent to the
//! sink once full, at most `TI_MAX_CONCURRENCY` requests in flight.

/// A record waiting in a batch.
pub(super) struct Pending {
    pub(super) index: u64,
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) text: String,
}
