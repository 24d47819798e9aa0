use super::*;
use crate::testutil::{MemSink, MemSource};

fn run(src: &MemSource, gran: u64, compression: Option<Compression>, jobs: usize) -> Vec<u8> {
    let sink = MemSink::new(src.size(), gran, compression);
    let out = sink.out.clone();
    let opts = CopyOptions {
        jobs,
        chunk_size: 256 << 10,
        compression_level: None,
        cancel: None,
    };
    let stats = copy_disk(src, Box::new(sink), &opts, &|_| {}).unwrap();
    assert_eq!(
        stats.bytes_read + stats.bytes_skipped_by_map,
        src.size(),
        "every byte is either read or skipped exactly once"
    );
    let v = out.0.lock().unwrap().clone();
    v
}

#[test]
fn copies_unaligned_extents_and_odd_sizes() {
    let size = (10 << 20) + 3 * 512;
    let src = MemSource::new(
        size,
        vec![(0, 512), (4097, 3), (1 << 20, 70_000), (size - 512, 512)],
    );
    for (gran, jobs) in [(4096, 1), (65536, 2), (2 << 20, 3)] {
        assert_eq!(
            run(&src, gran, None, jobs),
            src.bytes,
            "gran {gran} jobs {jobs}"
        );
    }
}

#[test]
fn compressed_output_round_trips() {
    let size = (3 << 20) + 512;
    let mut src = MemSource::new(size, vec![(0, 200_000), (size - 1000, 1000)]);
    // Make part of it compressible.
    for b in &mut src.bytes[0..100_000] {
        *b = 7;
    }
    assert_eq!(run(&src, 65536, Some(Compression::Zlib), 2), src.bytes);
    assert_eq!(run(&src, 65536, Some(Compression::Zstd), 2), src.bytes);
}

#[test]
fn empty_and_fully_allocated_disks() {
    let src = MemSource::new(1 << 20, vec![]);
    assert_eq!(run(&src, 65536, None, 2), src.bytes);
    let src = MemSource::new(1 << 20, vec![(0, 1 << 20)]);
    assert_eq!(run(&src, 65536, None, 2), src.bytes);
}

#[test]
fn zero_data_is_detected_not_stored() {
    let mut src = MemSource::new(1 << 20, vec![(0, 1 << 20)]);
    src.bytes.fill(0);
    let sink = MemSink::new(src.size(), 65536, None);
    let stats = copy_disk(&src, Box::new(sink), &CopyOptions::default(), &|_| {}).unwrap();
    assert_eq!(stats.bytes_zero_detected, 1 << 20);
    assert_eq!(stats.bytes_stored, 0);
}

struct FailingSource;
impl DiskSource for FailingSource {
    fn size(&self) -> u64 {
        64 << 20
    }
    fn read_exact_at(&self, _buf: &mut [u8], offset: u64) -> Result<()> {
        Err(Error::malformed(
            "bad.img",
            format!("broken at {offset:#x}"),
        ))
    }
    fn extent_at(&self, offset: u64, max_len: u64) -> Result<crate::source::Extent> {
        Ok(crate::source::Extent {
            offset,
            len: max_len.min(1 << 20),
            kind: crate::source::ExtentKind::Data,
        })
    }
    fn layers(&self) -> Vec<crate::source::LayerInfo> {
        Vec::new()
    }
}

#[test]
fn a_read_error_stops_the_copy_without_hanging() {
    let sink = MemSink::new(64 << 20, 65536, None);
    let err = copy_disk(
        &FailingSource,
        Box::new(sink),
        &CopyOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken at"));
}

#[test]
fn is_zero_checks_every_byte() {
    let mut b = vec![0u8; 10_000];
    assert!(is_zero(&b));
    b[9_999] = 1;
    assert!(!is_zero(&b));
    assert!(is_zero(&[]));
}

#[test]
fn several_disks_of_one_vm_copy_at_once() {
    let a = MemSource::new(3 << 20, vec![(0, 100_000)]);
    let b = MemSource::new(5 << 20, vec![(4 << 20, 70_000), ((5 << 20) - 512, 512)]);
    let sink_a = MemSink::new(a.size(), 65536, None);
    let sink_b = MemSink::new(b.size(), 4096, Some(Compression::Zstd));
    let (out_a, out_b) = (sink_a.out.clone(), sink_b.out.clone());
    let results = copy_disks(
        vec![
            (&a as &dyn DiskSource, Box::new(sink_a) as Box<dyn DiskSink>),
            (&b, Box::new(sink_b)),
        ],
        &CopyOptions::default(),
        &|_| {},
    );
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(*out_a.0.lock().unwrap(), a.bytes);
    assert_eq!(*out_b.0.lock().unwrap(), b.bytes);
}

#[test]
fn a_cancelled_copy_stops_with_an_error() {
    let src = MemSource::new(64 << 20, vec![(0, 64 << 20)]);
    let sink = MemSink::new(src.size(), 65536, None);
    let cancel = Arc::new(AtomicBool::new(true));
    let opts = CopyOptions {
        cancel: Some(cancel),
        ..CopyOptions::default()
    };
    let err = copy_disk(&src, Box::new(sink), &opts, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("interrupted"));
}
