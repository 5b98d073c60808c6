//! Text output in parts (`SinkSpec::text_part_rows`): where parts are cut, that each part is a
//! file of its own, the manifest of them, and `verify` of them.

use iptvportal_sink::{
    Compression, Depth, Format, SinkPosition, SinkSpec, list_outputs, open, read_rows, verify,
};
use serde_json::{Value, json};

use crate::{sample_rows, spec};

/// 20 rows: the sample rows four times, with ids 1 to 20.
fn rows() -> Vec<Vec<Value>> {
    (0..4)
        .flat_map(|_| sample_rows())
        .enumerate()
        .map(|(i, mut row)| {
            row[0] = json!(i + 1);
            row
        })
        .collect()
}

fn parted(dir: &std::path::Path, format: Format, compression: Compression) -> SinkSpec {
    let mut s = spec(dir, format, compression).with_id_column(Some("id"));
    s.text_part_rows = Some(5);
    s
}

/// Writes `rows` in chunks of 3, committing each; the positions reported, and the last one.
fn dump(s: &SinkSpec, rows: &[Vec<Value>]) -> (Vec<SinkPosition>, SinkPosition) {
    let mut sink = open(s, None).unwrap();
    let mut positions = Vec::new();
    for chunk in rows.chunks(3) {
        sink.write_chunk(chunk).unwrap();
        positions.push(sink.commit().unwrap().unwrap());
    }
    (positions, sink.finish().unwrap())
}

fn names(s: &SinkSpec) -> Vec<String> {
    list_outputs(s)
        .unwrap()
        .into_iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn parts_close_at_the_first_commit_past_their_rows_and_each_reads_alone() {
    let dir = tempfile::tempdir().unwrap();
    let all = rows();
    for format in [Format::Jsonl, Format::Csv, Format::Json] {
        for compression in [Compression::None, Compression::gzip()] {
            let s =
                parted(&dir.path().join(format!("{format}-{compression:?}")), format, compression);
            let (positions, last) = dump(&s, &all);
            let ext = match compression {
                Compression::None => format.to_string(),
                _ => format!("{format}.gz"),
            };
            // Chunks of 3 into parts of 5: a part closes at its second chunk (6 rows).
            let expected: Vec<String> = (0..4).map(|i| format!("channel-{i:05}.{ext}")).collect();
            assert_eq!(names(&s), expected, "{format} {compression:?}");
            let rows: Vec<u64> = last.files.iter().map(|f| f.rows).collect();
            assert_eq!(rows, [6, 6, 6, 2]);
            assert_eq!(last.file_index, 4, "every part closed");
            assert_eq!(last.rows, 20);
            assert_eq!(last.bytes, last.files.iter().map(|f| f.bytes).sum::<u64>());
            assert_eq!(last.last_chunk, None);
            // A commit that closed a part points at the next one, not begun yet.
            assert_eq!(positions[1].file_index, 1);
            assert_eq!(positions[1].files.len(), 1);
            assert_eq!(positions[2].file_index, 1);
            assert_eq!(positions[2].files.len(), 2);
            assert!(positions[2].last_chunk.is_some());
            let mut back = Vec::new();
            for (i, record) in (0..).zip(&last.files) {
                let path = s.part_path(i);
                assert_eq!(std::fs::metadata(&path).unwrap().len(), record.bytes);
                let first = i64::from(i) * 6 + 1;
                let ids = record.ids.unwrap();
                assert_eq!((ids.min, ids.max), (first, (first + 5).min(20)));
                let mut part = Vec::new();
                read_rows(&path, &s, Some(record.bytes), &mut |row| {
                    part.push(row);
                    Ok(())
                })
                .unwrap();
                assert_eq!(part.len() as u64, record.rows);
                back.extend(part);
            }
            if format != Format::Csv {
                // CSV cannot tell null from the empty string; the other formats give back all.
                assert_eq!(back, all, "{format} {compression:?}");
            }
            assert_eq!(verify(&s, &last, true, Depth::Full).unwrap(), []);
        }
    }
}

#[test]
fn every_part_is_a_whole_file_of_its_format() {
    let dir = tempfile::tempdir().unwrap();
    let s = parted(&dir.path().join("csv"), Format::Csv, Compression::None);
    dump(&s, &rows());
    for i in 0..4 {
        let text = std::fs::read_to_string(s.part_path(i)).unwrap();
        assert!(text.starts_with("id,name,balance,active,created\n"), "part {i}: {text}");
    }
    let s = parted(&dir.path().join("json"), Format::Json, Compression::gzip());
    dump(&s, &rows());
    for (i, expected) in [6, 6, 6, 2].into_iter().enumerate() {
        let raw = std::fs::read(s.part_path(u32::try_from(i).unwrap())).unwrap();
        let decoded = flate2::read::MultiGzDecoder::new(raw.as_slice());
        let parsed: Vec<Value> = serde_json::from_reader(decoded).unwrap();
        assert_eq!(parsed.len(), expected, "part {i}");
    }
}

#[test]
fn an_empty_table_is_one_part_and_an_exact_multiple_leaves_no_empty_part() {
    let dir = tempfile::tempdir().unwrap();
    let s = parted(&dir.path().join("empty"), Format::Csv, Compression::gzip());
    let last = open(&s, None).unwrap().finish().unwrap();
    assert_eq!(names(&s), ["channel-00000.csv.gz"]);
    assert_eq!((last.file_index, last.files.len(), last.rows), (1, 1, 0));
    let mut header = String::new();
    let raw = std::fs::read(s.part_path(0)).unwrap();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(raw.as_slice()),
        &mut header,
    )
    .unwrap();
    assert_eq!(header, "id,name,balance,active,created\n");

    // 18 rows in chunks of 3: the last commit closes the third part, and finish adds none,
    // even after an empty chunk (a traversal's last, empty page) and its commit.
    let s = parted(&dir.path().join("exact"), Format::Json, Compression::None);
    let mut sink = open(&s, None).unwrap();
    for chunk in rows()[..18].chunks(3) {
        sink.write_chunk(chunk).unwrap();
        sink.commit().unwrap();
    }
    sink.write_chunk(&[]).unwrap();
    let after_empty = sink.commit().unwrap().unwrap();
    assert_eq!((after_empty.file_index, after_empty.files.len()), (3, 3));
    let last = sink.finish().unwrap();
    assert_eq!(names(&s).len(), 3);
    assert_eq!(last.files.len(), 3);
}

#[test]
fn a_resume_removes_a_part_begun_after_the_last_commit_and_verify_names_parts() {
    let dir = tempfile::tempdir().unwrap();
    let s = parted(dir.path(), Format::Jsonl, Compression::None);
    let all = rows();
    let mut sink = open(&s, None).unwrap();
    let mut at = None;
    for chunk in all.chunks(3).take(2) {
        sink.write_chunk(chunk).unwrap();
        at = sink.commit().unwrap();
    }
    let at = at.unwrap();
    assert_eq!((at.file_index, at.files.len()), (1, 1), "part 0 closed");
    // An uncommitted chunk begins part 1; a crash leaves it.
    sink.write_chunk(&all[6..9]).unwrap();
    drop(sink);
    assert_eq!(names(&s), ["channel-00000.jsonl", "channel-00001.jsonl"]);
    // Resumable: the begun part is no problem, a complete output may not have it.
    assert_eq!(verify(&s, &at, false, Depth::Full).unwrap(), []);
    let problems = verify(&s, &at, true, Depth::Full).unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!("{}: the manifest lists no such file", s.part_path(1).display())
    );
    let sink = open(&s, Some(&at)).unwrap();
    assert_eq!(names(&s), ["channel-00000.jsonl"], "the begun part is gone");
    drop(sink);

    // A closed part changed: verify names it, a resume refuses it.
    let mut bytes = std::fs::read(s.part_path(0)).unwrap();
    bytes.push(b'\n');
    std::fs::write(s.part_path(0), &bytes).unwrap();
    let problems = verify(&s, &at, false, Depth::Sizes).unwrap();
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}: it is {} bytes, the manifest says {}",
            s.part_path(0).display(),
            bytes.len(),
            bytes.len() - 1
        )]
    );
    let Err(err) = open(&s, Some(&at)) else { panic!("resumed over a changed part") };
    assert!(err.to_string().contains("channel-00000.jsonl"), "{err}");
    bytes.pop();
    bytes[3] ^= 1;
    std::fs::write(s.part_path(0), &bytes).unwrap();
    assert_eq!(verify(&s, &at, false, Depth::Sizes).unwrap(), []);
    let problems = verify(&s, &at, false, Depth::Full).unwrap();
    assert!(problems[0].to_string().contains("its contents changed"), "{problems:?}");
    std::fs::remove_file(s.part_path(0)).unwrap();
    let problems = verify(&s, &at, false, Depth::Sizes).unwrap();
    assert_eq!(problems[0].to_string(), format!("{}: it is missing", s.part_path(0).display()));
}

#[test]
fn a_position_of_one_file_does_not_resume_parts() {
    let dir = tempfile::tempdir().unwrap();
    let one = spec(dir.path(), Format::Jsonl, Compression::None);
    let mut sink = open(&one, None).unwrap();
    sink.write_chunk(&rows()[..3]).unwrap();
    let at = sink.commit().unwrap().unwrap();
    drop(sink);
    let s = parted(dir.path(), Format::Jsonl, Compression::None);
    let Err(err) = open(&s, Some(&at)) else { panic!("a one-file position resumed parts") };
    assert!(err.to_string().contains("\"channel.jsonl\", not a part of this output"), "{err}");
}
