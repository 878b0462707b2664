//! `ti_core::frame::Framer` on arbitrary bytes with any bounds and any chunking.
//!
//! Asserts its contract (frame.rs): indexes 0, 1, 2, …; a kept record is at most
//! `max_record_bytes` and appears verbatim in the input, after the previous one; an oversize
//! record really is over the bound; chunking changes nothing (items and error); errors are
//! sticky.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ti_core::frame::{FrameError, FrameItem, FrameLimits, Framer};
use ti_core::input::InputFormat;
use ti_core_fuzz::{chunks, first_difference, header, limits};

fn frame(
    limits: FrameLimits,
    pieces: &[&[u8]],
) -> (Vec<FrameItem>, Result<InputFormat, FrameError>) {
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(e) = f.push(piece, &mut out) {
            let n = out.len();
            assert_eq!(f.push(b"[", &mut out), Err(e.clone()), "errors are sticky");
            assert_eq!(f.finish(&mut out), Err(e.clone()), "errors are sticky");
            assert_eq!(out.len(), n, "nothing is emitted after an error");
            return (out, Err(e));
        }
    }
    let r = f.finish(&mut out);
    assert_eq!(f.finish(&mut out), r, "finish is idempotent");
    (out, r)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from);
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fuzz_target!(|data: &[u8]| {
    let Some(([_, limits_sel, split], input)) = header(data) else {
        return;
    };
    let limits = limits(limits_sel);
    let (items, result) = frame(limits, &[input]);
    let (split_items, split_result) = frame(limits, &chunks(input, split));
    if let Some(i) = first_difference(&items, &split_items) {
        panic!(
            "chunking changed item {i}:\nwhole: {:?}\nsplit: {:?}",
            items.get(i),
            split_items.get(i)
        );
    }
    assert_eq!(result, split_result, "chunking changed the outcome");

    let mut at = 0;
    for (i, item) in items.iter().enumerate() {
        match item {
            FrameItem::Record(r) | FrameItem::TooDeep(r) => {
                assert_eq!(r.index, i as u64, "record indexes are consecutive from 0");
                assert!(r.line >= 1);
                assert!(
                    r.text.len() <= limits.max_record_bytes,
                    "record {i} is {} bytes, over the {}-byte bound",
                    r.text.len(),
                    limits.max_record_bytes
                );
                let pos = find(input, r.text.as_bytes(), at).unwrap_or_else(|| {
                    panic!(
                        "record {i} is not in the input after byte {at}: {:?}",
                        r.text
                    )
                });
                at = pos + r.text.len();
            }
            FrameItem::Oversize { index, line, bytes } => {
                assert_eq!(*index, i as u64, "record indexes are consecutive from 0");
                assert!(*line >= 1);
                assert!(
                    *bytes > limits.max_record_bytes as u64,
                    "an oversize record of {bytes} bytes is within the {}-byte bound",
                    limits.max_record_bytes
                );
            }
        }
    }
});
