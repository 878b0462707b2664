//! Batches: valid records gathered into batches of at most `TI_BATCH_SIZE`, each sent to the
//! sink once full, with at most `TI_MAX_CONCURRENCY` requests in flight. A record whose id a
//! later record repeats is taken out of its open batch, or, once sent, marked so its outcome is
//! reported as the duplicate it is; the batch holding the later record then waits until the
//! earlier one's request has finished, or the service could end up with the earlier version.

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use serde_json::{Map, Value};

use super::report::Collector;
use super::sink::Sink;
use crate::upload::BatchOutcome;

/// A record waiting in a batch.
pub(super) struct Pending {
    pub(super) index: u64,
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) text: String,
}

/// Where the earlier record of a repeated id was.
pub(super) enum Earlier {
    /// In the open batch: taken out, not to be sent.
    Removed(Pending),
    /// In a request not yet settled: it will be reported a duplicate when it is.
    InFlight,
    /// Settled already (uploaded or rejected), or never batched.
    Settled,
}

pub(super) struct Batches {
    sink: Sink,
    size: usize,
    concurrency: usize,
    open: Vec<(Pending, Map<String, Value>)>,
    in_flight: FuturesUnordered<BoxFuture<'static, (Vec<Pending>, BatchOutcome)>>,
    /// Indexes of the records in requests not yet settled.
    sent: HashSet<u64>,
    /// Records already sent whose id a later record of the input repeats: `earlier index →
    /// (later index, later line)`.
    superseded: HashMap<u64, (u64, u64)>,
    /// Set when a record repeats the id of one in flight: the next batch is not sent before
    /// every request in flight has finished.
    barrier: bool,
}

impl Batches {
    pub(super) fn new(sink: Sink, size: usize, concurrency: usize) -> Self {
        Batches {
            sink,
            size,
            concurrency,
            open: Vec::with_capacity(size),
            in_flight: FuturesUnordered::new(),
            sent: HashSet::new(),
            superseded: HashMap::new(),
            barrier: false,
        }
    }

    /// A later record (`later`: its index and line) repeats the id of record `earlier`.
    pub(super) fn supersede(&mut self, earlier: u64, later: (u64, u64)) -> Earlier {
        if let Some(pos) = self.open.iter().position(|(p, _)| p.index == earlier) {
            return Earlier::Removed(self.open.remove(pos).0);
        }
        if self.sent.contains(&earlier) {
            self.superseded.insert(earlier, later);
            self.barrier = true;
            return Earlier::InFlight;
        }
        Earlier::Settled
    }

    /// Adds a record; a full batch is sent, after waiting (and settling into `report`) for a
    /// free request slot, or for every request in flight when the barrier is up.
    pub(super) async fn push(
        &mut self,
        record: Pending,
        object: Map<String, Value>,
        report: &mut Collector,
    ) {
        self.open.push((record, object));
        if self.open.len() < self.size {
            return;
        }
        while self.in_flight.len() >= self.concurrency
            || (self.barrier && !self.in_flight.is_empty())
        {
            self.settle_next(report).await;
        }
        self.barrier = false;
        self.send();
    }

    /// Sends the last batch (after the requests in flight when the barrier is up) and settles
    /// every request; `settled` runs after each.
    pub(super) async fn finish(
        mut self,
        report: &mut Collector,
        mut settled: impl FnMut(&Collector),
    ) {
        if !self.open.is_empty() {
            if self.barrier {
                while self.settle_next(report).await {}
            }
            self.send();
        }
        while self.settle_next(report).await {
            settled(report);
        }
    }

    fn send(&mut self) {
        let batch = std::mem::take(&mut self.open);
        self.sent.extend(batch.iter().map(|(p, _)| p.index));
        let (pending, objects): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let sent = self.sink.send(objects);
        self.in_flight
            .push(async move { (pending, sent.await) }.boxed());
    }

    /// Waits for the next request to finish and settles its records; `false` when none was in
    /// flight.
    async fn settle_next(&mut self, report: &mut Collector) -> bool {
        let Some((batch, outcome)) = self.in_flight.next().await else {
            return false;
        };
        debug_assert_eq!(batch.len(), outcome.len());
        for (p, o) in batch.into_iter().zip(outcome) {
            self.sent.remove(&p.index);
            let later = self.superseded.remove(&p.index);
            report.settled(p, o, later);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Env;
    use crate::upload::UploadSettings;
    use crate::upload::Uploader;
    use ti_core::report::Code;

    /// A sink that sends nothing (a validate-only run): every record of a sent batch is uploaded.
    fn batches(size: usize) -> Batches {
        let settings =
            UploadSettings::from_env(&Env::from_pairs([("TI_TARGET", "dry-run")])).unwrap();
        let uploader = Uploader::new(settings, None).unwrap();
        Batches::new(Sink::new(uploader, None, true, None), size, 2)
    }

    fn pending(index: u64) -> Pending {
        Pending {
            index,
            line: index + 1,
            id: format!("indicator--{index}"),
            text: format!("line {index}"),
        }
    }

    #[tokio::test]
    async fn full_batches_are_sent_and_the_last_one_at_the_end() {
        let mut b = batches(2);
        let mut report = Collector::default();
        for i in 0..5 {
            b.push(pending(i), Map::new(), &mut report).await;
        }
        // Two full batches sent, one record still in the open batch.
        assert_eq!(b.sent.len() + report.summary.uploaded as usize, 4);
        assert_eq!(b.open.len(), 1);
        let mut calls = 0;
        b.finish(&mut report, |_| calls += 1).await;
        assert_eq!(report.summary.uploaded, 5);
        assert_eq!(report.summary.rejected, 0);
        assert!((1..=3).contains(&calls), "{calls}");
    }

    #[tokio::test]
    async fn an_earlier_record_in_the_open_batch_is_taken_out() {
        let mut b = batches(10);
        let mut report = Collector::default();
        b.push(pending(0), Map::new(), &mut report).await;
        b.push(pending(1), Map::new(), &mut report).await;
        match b.supersede(0, (2, 3)) {
            Earlier::Removed(p) => assert_eq!((p.index, p.line), (0, 1)),
            _ => panic!("record 0 was in the open batch"),
        }
        assert!(matches!(b.supersede(7, (8, 9)), Earlier::Settled));
        b.finish(&mut report, |_| {}).await;
        assert_eq!(report.summary.uploaded, 1);
    }

    #[tokio::test]
    async fn an_earlier_record_in_flight_is_reported_a_duplicate_when_it_settles() {
        let mut b = batches(1);
        let mut report = Collector::default();
        b.push(pending(0), Map::new(), &mut report).await;
        assert!(matches!(b.supersede(0, (5, 6)), Earlier::InFlight));
        assert!(b.barrier);
        b.push(pending(5), Map::new(), &mut report).await;
        // The barrier made the second batch wait for the first request.
        assert!(!b.sent.contains(&0));
        b.finish(&mut report, |_| {}).await;
        assert_eq!(report.summary.uploaded, 1);
        assert_eq!(report.summary.rejected, 1);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].record_index, 0);
        assert_eq!(report.errors[0].code, Code::Duplicate);
        assert_eq!(report.rejected, vec![(0, "line 0".to_string())]);
    }
}
