//! The manifest a text sink reports at each commit, and what a resume checks with it.

use iptvportal_sink::{
    ChunkRecord, Compression, Crc32, Depth, Error, Format, IdRange, SinkPosition, open, verify,
};

use crate::{sample_rows, spec, text_path};

#[test]
fn each_commit_reports_the_files_checksum_ids_and_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::None, Compression::gzip()] {
        let s = spec(dir.path(), Format::Jsonl, compression).with_id_column(Some("id"));
        let mut sink = open(&s, None).unwrap();
        sink.write_chunk(&sample_rows()[..2]).unwrap();
        let first = sink.commit().unwrap().unwrap();
        sink.write_chunk(&sample_rows()[2..]).unwrap();
        let second = sink.commit().unwrap().unwrap();
        let bytes = std::fs::read(text_path(&s)).unwrap();
        let record = &second.files[0];
        assert_eq!(record.name, text_path(&s).file_name().unwrap().to_str().unwrap());
        assert_eq!((record.rows, record.bytes), (5, bytes.len() as u64));
        assert_eq!(record.crc32, Crc32::of(&bytes), "{compression:?}");
        assert_eq!(record.ids, Some(IdRange { min: 1, max: 8 }));
        assert_eq!(first.files[0].ids, Some(IdRange { min: 1, max: 2 }));
        let chunk = second.last_chunk.unwrap();
        assert_eq!(chunk.offset, first.bytes);
        assert_eq!(chunk.crc32, Crc32::of(&bytes[usize::try_from(first.bytes).unwrap()..]));
        let end = sink.finish().unwrap();
        assert_eq!(verify(&s, &end, true, Depth::Full).unwrap(), []);
    }
}

#[test]
fn a_resume_continues_the_checksum_without_rereading_and_checks_the_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Csv, Compression::gzip()).with_id_column(Some("id"));
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()[..2]).unwrap();
    let pos = sink.commit().unwrap().unwrap();
    sink.write_chunk(&sample_rows()[2..3]).unwrap();
    drop(sink); // a crash with one chunk uncommitted

    let mut sink = open(&s, Some(&pos)).unwrap();
    sink.write_chunk(&sample_rows()[2..]).unwrap();
    sink.commit().unwrap();
    let resumed = sink.finish().unwrap();

    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()[..2]).unwrap();
    sink.commit().unwrap();
    sink.write_chunk(&sample_rows()[2..]).unwrap();
    sink.commit().unwrap();
    let straight = sink.finish().unwrap();
    assert_eq!(resumed, straight, "the same manifest as an uninterrupted run");

    // A checkpoint whose committed length is moved off its chunk boundary (a hand edit that kept
    // the seal, or a damaged file): the last chunk's bytes no longer match, and nothing is cut.
    let mut moved = straight.clone();
    moved.bytes -= 3;
    moved.files[0].bytes -= 3;
    let len = std::fs::metadata(text_path(&s)).unwrap().len();
    let err = open(&s, Some(&moved)).err().unwrap();
    assert!(matches!(err, Error::ResumeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("are not the chunk committed there"), "{err}");
    assert_eq!(std::fs::metadata(text_path(&s)).unwrap().len(), len, "the file was not cut");

    // A flipped byte inside the last chunk is caught the same way.
    let mut bytes = std::fs::read(text_path(&s)).unwrap();
    let at = usize::try_from(straight.last_chunk.unwrap().offset).unwrap() + 5;
    bytes[at] ^= 1;
    std::fs::write(text_path(&s), &bytes).unwrap();
    let err = open(&s, Some(&straight)).err().unwrap();
    assert!(err.to_string().contains("are not the chunk committed there"), "{err}");
}

#[test]
fn a_position_from_before_the_manifest_is_filled_in_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Jsonl, Compression::None);
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()[..2]).unwrap();
    let pos = sink.commit().unwrap().unwrap();
    drop(sink);
    let old = SinkPosition::bare(pos.file_index, pos.bytes, pos.rows);
    let mut sink = open(&s, Some(&old)).unwrap();
    sink.write_chunk(&sample_rows()[2..]).unwrap();
    let end = sink.commit().unwrap().unwrap();
    let bytes = std::fs::read(text_path(&s)).unwrap();
    assert_eq!(end.files[0].crc32, Crc32::of(&bytes));
    assert_eq!(
        end.last_chunk,
        Some(ChunkRecord {
            offset: pos.bytes,
            crc32: Crc32::of(&bytes[usize::try_from(pos.bytes).unwrap()..])
        })
    );
    // Ids start from what this run saw: an old position knows none.
    assert_eq!(end.files[0].ids, None, "no id column in this spec");
}
