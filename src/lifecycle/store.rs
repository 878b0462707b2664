//! The per-feed indicator index, on disk: one record per indicator the feed listed and we
//! sent, sorted by the indicator id's UUID, gzip-compressed.
//!
//! A record is a fixed-width head — id (16 bytes), content hash (8), last sent and
//! `valid_until` (unix seconds, 8 each), flags (1), the object's length (4) — followed by the
//! object as last sent (compact JSON), which is what a retirement or a refresh re-sends: the
//! Sentinel upload APIs take whole STIX objects ("Indicators need to be in STIX format",
//! ../seeds' Upload Indicators OpenAPI, `UploadIndicatorsRequest.indicators`), so an id alone
//! could not be retired. Everything here is streamed: the index is read and written one record
//! at a time, and a run's snapshot is sorted in bounded runs spilled to temporary files
//! ([`Sorter`]) and merged back, so memory stays flat whatever the feed's size.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// The first bytes of an index file: the format and its version.
pub const MAGIC: &[u8; 8] = b"TILIFE1\n";

/// `until` of an indicator that never expires (no `valid_until`).
pub const NEVER: i64 = i64::MAX;

/// The record is listed (0) or waiting for its retirement to be accepted.
pub const FLAG_RETIRING: u8 = 1;

/// Bytes of a record's fixed head.
const HEAD: usize = 16 + 8 + 8 + 8 + 1 + 4;

/// The largest object a record holds (the pipeline's frame limit is far below it).
const MAX_OBJECT_BYTES: usize = 16 << 20;

/// One indicator of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The UUID of `indicator--<uuid>`.
    pub key: [u8; 16],
    /// [`super::content_hash`] of the object as listed.
    pub hash: u64,
    /// When it was last sent (unix seconds).
    pub sent: i64,
    /// Its `valid_until` as last sent (unix seconds), [`NEVER`] without one.
    pub until: i64,
    pub flags: u8,
    /// The object as last sent, compact JSON.
    pub object: Vec<u8>,
}

impl Record {
    pub fn retiring(&self) -> bool {
        self.flags & FLAG_RETIRING != 0
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut head = [0u8; HEAD];
        head[..16].copy_from_slice(&self.key);
        head[16..24].copy_from_slice(&self.hash.to_le_bytes());
        head[24..32].copy_from_slice(&self.sent.to_le_bytes());
        head[32..40].copy_from_slice(&self.until.to_le_bytes());
        head[40] = self.flags;
        let len = u32::try_from(self.object.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        head[41..45].copy_from_slice(&len.to_le_bytes());
        w.write_all(&head)?;
        w.write_all(&self.object)
    }

    /// The next record, `None` at a clean end.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Record>> {
        let mut head = [0u8; HEAD];
        // A clean end is an end before the first byte of a head.
        let mut got = 0;
        while got < HEAD {
            let n = r.read(&mut head[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the lifecycle index ends inside a record",
                ));
            }
            got += n;
        }
        let le8 = |at: usize| <[u8; 8]>::try_from(&head[at..at + 8]).expect("8 bytes");
        let len = u32::from_le_bytes(head[41..45].try_into().expect("4 bytes")) as usize;
        if len > MAX_OBJECT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a lifecycle record claims a {len}-byte object"),
            ));
        }
        let mut object = vec![0u8; len];
        r.read_exact(&mut object)?;
        Ok(Some(Record {
            key: head[..16].try_into().expect("16 bytes"),
            hash: u64::from_le_bytes(le8(16)),
            sent: i64::from_le_bytes(le8(24)),
            until: i64::from_le_bytes(le8(32)),
            flags: head[40],
            object,
        }))
    }
}

/// Reads an index file record by record.
pub struct IndexReader {
    inner: Option<MultiGzDecoder<BufReader<File>>>,
}

impl IndexReader {
    /// An index with no records (a feed's first run).
    pub fn empty() -> Self {
        IndexReader { inner: None }
    }

    /// Opens an index written by [`IndexWriter`]; an empty file is an empty index.
    pub fn open(file: File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(IndexReader::empty());
        }
        let mut inner = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
        let mut magic = [0u8; 8];
        inner.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a lifecycle index (unknown format)",
            ));
        }
        Ok(IndexReader { inner: Some(inner) })
    }
}

impl Iterator for IndexReader {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.inner.as_mut()?;
        match Record::read_from(r) {
            Ok(Some(rec)) => Some(Ok(rec)),
            Ok(None) => {
                self.inner = None;
                None
            }
            Err(e) => {
                self.inner = None;
                Some(Err(e))
            }
        }
    }
}

/// Writes an index file; records must come in key order (checked).
pub struct IndexWriter {
    out: GzEncoder<BufWriter<File>>,
    last: Option<[u8; 16]>,
    pub records: u64,
}

impl IndexWriter {
    pub fn create(file: File) -> io::Result<Self> {
        let mut out = GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::fast());
        out.write_all(MAGIC)?;
        Ok(IndexWriter {
            out,
            last: None,
            records: 0,
        })
    }

    pub fn push(&mut self, r: &Record) -> io::Result<()> {
        if self.last.is_some_and(|l| l >= r.key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "lifecycle records out of order",
            ));
        }
        self.last = Some(r.key);
        self.records += 1;
        r.write_to(&mut self.out)
    }

    /// Flushes and returns the file, positioned at its start.
    pub fn finish(self) -> io::Result<File> {
        let mut file = self
            .out
            .finish()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        use std::io::Seek;
        file.flush()?;
        file.seek(io::SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// Sorts a run's snapshot (records in feed order) by key with bounded memory: records are
/// kept until about `budget` bytes, then sorted and spilled to a temporary file; [`finish`]
/// merges the spilled runs. For one id listed twice, the record pushed last wins.
///
/// [`finish`]: Sorter::finish
pub struct Sorter {
    budget: usize,
    held: usize,
    buf: Vec<(u64, Record)>,
    seq: u64,
    spilled: Vec<File>,
}

impl Sorter {
    pub fn new(budget: usize) -> Self {
        Sorter {
            budget,
            held: 0,
            buf: Vec::new(),
            seq: 0,
            spilled: Vec::new(),
        }
    }

    pub fn push(&mut self, r: Record) -> io::Result<()> {
        self.held += HEAD + r.object.len() + 32;
        self.buf.push((self.seq, r));
        self.seq += 1;
        if self.held >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_buf(&mut self) {
        // By key, the latest push first, so the merge keeps the first of equal keys.
        self.buf
            .sort_unstable_by(|(sa, a), (sb, b)| a.key.cmp(&b.key).then(sb.cmp(sa)));
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_buf();
        let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for (seq, r) in self.buf.drain(..) {
            w.write_all(&seq.to_le_bytes())?;
            r.write_to(&mut w)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))?;
        self.spilled.push(file);
        self.held = 0;
        Ok(())
    }

    /// The records in key order, one per key (the last pushed).
    pub fn finish(mut self) -> io::Result<Sorted> {
        self.sort_buf();
        let mut sources: Vec<Source> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(1 << 16, f)))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.buf).into_iter()));
        let mut heap = BinaryHeap::new();
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some((seq, r)) = s.next()? {
                heap.push(Head { seq, r, source: i });
            }
        }
        Ok(Sorted {
            sources,
            heap,
            last: None,
        })
    }
}

enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<(u64, Record)>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<(u64, Record)>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(f) => {
                let mut seq = [0u8; 8];
                match f.read_exact(&mut seq) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let r = Record::read_from(f)?.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "a spilled run ends early")
                })?;
                Ok(Some((u64::from_le_bytes(seq), r)))
            }
        }
    }
}

struct Head {
    seq: u64,
    r: Record,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// The heap pops the greatest: the smallest key, and of equal keys the latest push.
    fn cmp(&self, other: &Self) -> Ordering {
        other.r.key.cmp(&self.r.key).then(self.seq.cmp(&other.seq))
    }
}

/// A sorted snapshot, one record per key.
pub struct Sorted {
    sources: Vec<Source>,
    heap: BinaryHeap<Head>,
    last: Option<[u8; 16]>,
}

impl Iterator for Sorted {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Head { r, source, .. } = self.heap.pop()?;
            match self.sources[source].next() {
                Ok(Some((seq, next))) => self.heap.push(Head {
                    seq,
                    r: next,
                    source,
                }),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.last == Some(r.key) {
                // An earlier push of the same id.
                continue;
            }
            self.last = Some(r.key);
            return Some(Ok(r));
        }
    }
}

/// What the merge of the saved index and a run's snapshot says about one indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Listed before and now (`Merged::now` holds the new record).
    Kept,
    /// Listed now only: new, or listed again after it was retired.
    Added,
    /// Listed before, not now (or its retirement is still to be accepted).
    Dropped,
}

/// One step of the merge: the saved record (if any), the snapshot's (if any).
#[derive(Debug)]
pub struct Merged {
    pub change: Change,
    pub saved: Option<Record>,
    pub now: Option<Record>,
}

/// Merges the saved index with a snapshot, both in key order. With `snapshot` `None` (the
/// feed was not re-read: 304), every saved record is `Kept` as it is, except those still
/// retiring.
pub struct Merge<A: Iterator, B: Iterator> {
    saved: std::iter::Peekable<A>,
    snapshot: Option<std::iter::Peekable<B>>,
}

impl<A, B> Merge<A, B>
where
    A: Iterator<Item = io::Result<Record>>,
    B: Iterator<Item = io::Result<Record>>,
{
    pub fn new(saved: A, snapshot: Option<B>) -> Self {
        Merge {
            saved: saved.peekable(),
            snapshot: snapshot.map(Iterator::peekable),
        }
    }
}

fn take<I: Iterator<Item = io::Result<Record>>>(
    it: &mut std::iter::Peekable<I>,
) -> io::Result<Option<Record>> {
    it.next().transpose()
}

fn peek_key<I: Iterator<Item = io::Result<Record>>>(
    it: &mut std::iter::Peekable<I>,
) -> io::Result<Option<[u8; 16]>> {
    match it.peek() {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r.key)),
        Some(Err(_)) => Err(it.next().expect("peeked").expect_err("peeked an error")),
    }
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = io::Result<Record>>,
    B: Iterator<Item = io::Result<Record>>,
{
    type Item = io::Result<Merged>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut step = || -> io::Result<Option<Merged>> {
            let a = peek_key(&mut self.saved)?;
            let Some(snapshot) = self.snapshot.as_mut() else {
                let Some(saved) = take(&mut self.saved)? else {
                    return Ok(None);
                };
                let change = if saved.retiring() {
                    Change::Dropped
                } else {
                    Change::Kept
                };
                return Ok(Some(Merged {
                    change,
                    saved: Some(saved),
                    now: None,
                }));
            };
            let b = peek_key(snapshot)?;
            let m = match (a, b) {
                (None, None) => return Ok(None),
                (Some(_), None) => Merged {
                    change: Change::Dropped,
                    saved: take(&mut self.saved)?,
                    now: None,
                },
                (None, Some(_)) => Merged {
                    change: Change::Added,
                    saved: None,
                    now: take(snapshot)?,
                },
                (Some(a), Some(b)) => match a.cmp(&b) {
                    Ordering::Less => Merged {
                        change: Change::Dropped,
                        saved: take(&mut self.saved)?,
                        now: None,
                    },
                    Ordering::Greater => Merged {
                        change: Change::Added,
                        saved: None,
                        now: take(snapshot)?,
                    },
                    Ordering::Equal => {
                        let saved = take(&mut self.saved)?;
                        let retiring = saved.as_ref().is_some_and(Record::retiring);
                        Merged {
                            // One being retired and listed again is re-sent as listed.
                            change: if retiring {
                                Change::Added
                            } else {
                                Change::Kept
                            },
                            saved,
                            now: take(snapshot)?,
                        }
                    }
                },
            };
            Ok(Some(m))
        };
        step().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: u8, hash: u64) -> Record {
        let mut key = [0u8; 16];
        key[15] = k;
        Record {
            key,
            hash,
            sent: 100,
            until: NEVER,
            flags: 0,
            object: format!("{{\"k\":{k}}}").into_bytes(),
        }
    }

    #[test]
    fn an_index_reads_back_what_was_written_and_refuses_disorder() {
        let mut w = IndexWriter::create(tempfile::tempfile().unwrap()).unwrap();
        for k in [1, 2, 5] {
            w.push(&rec(k, k as u64)).unwrap();
        }
        assert_eq!(
            w.push(&rec(4, 0)).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let file = w.finish().unwrap();
        let back: Vec<Record> = IndexReader::open(file)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(back, vec![rec(1, 1), rec(2, 2), rec(5, 5)]);
        let empty: Vec<_> = IndexReader::open(tempfile::tempfile().unwrap())
            .unwrap()
            .collect();
        assert_eq!(empty.len(), 0);
    }

    #[test]
    fn the_sorter_spills_and_keeps_the_last_of_an_id() {
        // A budget of about two records: several spilled runs.
        let mut s = Sorter::new(2 * (HEAD + 40));
        for (k, h) in [(9, 1), (3, 1), (7, 1), (3, 2), (1, 1), (9, 2), (5, 1)] {
            s.push(rec(k, h)).unwrap();
        }
        assert!(s.spilled.len() >= 2, "{}", s.spilled.len());
        let out: Vec<(u8, u64)> = s
            .finish()
            .unwrap()
            .map(|r| r.map(|r| (r.key[15], r.hash)))
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(out, vec![(1, 1), (3, 2), (5, 1), (7, 1), (9, 2)]);
    }

    #[test]
    fn the_merge_names_kept_added_and_dropped() {
        let mut retiring = rec(4, 4);
        retiring.flags = FLAG_RETIRING;
        let saved = vec![rec(1, 1), rec(2, 2), retiring.clone(), rec(6, 6)];
        let now = vec![rec(2, 2), rec(3, 3), retiring.clone(), rec(7, 7)];
        let got: Vec<(Change, u8)> = Merge::new(
            saved.clone().into_iter().map(Ok),
            Some(now.into_iter().map(Ok)),
        )
        .map(|m| {
            let m = m.unwrap();
            let k = m.saved.as_ref().or(m.now.as_ref()).unwrap().key[15];
            (m.change, k)
        })
        .collect();
        assert_eq!(
            got,
            vec![
                (Change::Dropped, 1),
                (Change::Kept, 2),
                (Change::Added, 3),
                (Change::Added, 4),
                (Change::Dropped, 6),
                (Change::Added, 7)
            ]
        );
        // Not re-read: listed ones kept, a retiring one still dropped.
        let got: Vec<(Change, u8)> = Merge::new(
            saved.into_iter().map(Ok),
            None::<std::vec::IntoIter<io::Result<Record>>>,
        )
        .map(|m| {
            let m = m.unwrap();
            (m.change, m.saved.unwrap().key[15])
        })
        .collect();
        assert_eq!(
            got,
            vec![
                (Change::Kept, 1),
                (Change::Kept, 2),
                (Change::Dropped, 4),
                (Change::Kept, 6)
            ]
        );
    }
}
