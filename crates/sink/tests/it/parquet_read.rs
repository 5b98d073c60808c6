//! Parquet parts read back with the parquet crate's arrow reader: schema, values, parts, empties.

use arrow_schema::{DataType, TimeUnit};
use iptvportal_sink::{Compression, Format, list_outputs, open};
use serde_json::{Value, json};

use crate::{parquet_output, parquet_parts, sample_rows, spec};

#[test]
fn schema_and_values_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Parquet, Compression::None);
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()).unwrap();
    let pos = sink.commit().unwrap().expect("a commit is durable even in a part under its budget");
    assert_eq!((pos.file_index, pos.rows, pos.open_part.map(|p| p.pieces)), (0, 5, Some(1)));
    let pos = sink.finish().unwrap();
    assert_eq!((pos.file_index, pos.rows, pos.open_part), (1, 5, None));

    let (schemas, rows) = parquet_output(&s);
    assert_eq!(schemas.len(), 1);
    let fields: Vec<_> = schemas[0]
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        fields,
        [
            ("id".to_owned(), DataType::Int64, false),
            ("name".to_owned(), DataType::Utf8, true),
            ("balance".to_owned(), DataType::Float64, true),
            ("active".to_owned(), DataType::Boolean, true),
            ("created".to_owned(), DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]
    );
    let expected = vec![
        vec![
            json!(1),
            json!("Первый канал"),
            json!(10.5),
            json!(true),
            json!(1_672_567_200_000_000_i64),
        ],
        vec![
            json!(2),
            json!("say \"hi\", then\nleave"),
            json!(-0.1),
            json!(false),
            json!(1_688_169_599_250_000_i64),
        ],
        vec![json!(5), Value::Null, Value::Null, Value::Null, Value::Null],
        vec![json!(7), json!(""), json!(3.0), json!(true), json!(946_598_400_000_000_i64)],
        vec![
            json!(8),
            json!("tab\there"),
            json!(1e-7),
            json!(false),
            json!(1_709_209_800_000_001_i64),
        ],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn parts_rotate_on_commit_and_row_groups_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), Format::Parquet, Compression::None);
    s.parquet.part_rows = 4;
    s.parquet.row_group_rows = 2;
    let mut sink = open(&s, None).unwrap();
    let rows: Vec<Vec<Value>> = (0..11)
        .map(|i| vec![json!(i), json!(format!("n{i}")), json!(0.5), json!(true), Value::Null])
        .collect();
    let mut closed = Vec::new();
    for chunk in rows.chunks(3) {
        sink.write_chunk(chunk).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        closed.push((pos.file_index, pos.rows, pos.open_part.map(|p| p.rows)));
    }
    // Every commit moves the position; parts close at the first commit with at least 4 rows:
    // after 6 rows, then after 6 more (5).
    assert_eq!(closed, [(0, 3, Some(3)), (1, 6, None), (1, 9, Some(3)), (2, 11, None)]);
    let end = sink.finish().unwrap();
    assert_eq!((end.file_index, end.rows), (2, 11));
    let parts = parquet_parts(&s);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].file_name().unwrap(), "channel-00001.parquet");
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&parts[0]).unwrap(),
        )
        .unwrap(),
    )
    .clone();
    assert!(meta.row_groups().iter().all(|rg| rg.num_rows() <= 2));
    assert_eq!(parquet_output(&s).1, rows);
}

#[test]
fn an_empty_table_yields_one_part_with_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Parquet, Compression::None);
    let sink = open(&s, None).unwrap();
    let pos = sink.finish().unwrap();
    assert_eq!((pos.file_index, pos.rows), (1, 0));
    let (schemas, rows) = parquet_output(&s);
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas[0].fields().len(), 5);
    assert!(rows.is_empty());
}

#[test]
fn resume_deletes_later_parts_and_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), Format::Parquet, Compression::None);
    s.parquet.part_rows = 1;
    let mut sink = open(&s, None).unwrap();
    let mut positions = Vec::new();
    for row in sample_rows() {
        sink.write_chunk(&[row]).unwrap();
        positions.push(sink.commit().unwrap().unwrap());
    }
    drop(sink);
    assert_eq!(parquet_parts(&s).len(), 5);
    std::fs::write(dir.path().join(".channel-00005.parquet.tmp"), b"torn").unwrap();
    let sink = open(&s, Some(&positions[1])).unwrap();
    assert_eq!(parquet_parts(&s).len(), 2);
    assert!(!dir.path().join(".channel-00005.parquet.tmp").exists());
    let end = sink.finish().unwrap();
    assert_eq!(end, positions[1], "nothing new was written, so no new part");
}

#[test]
fn list_outputs_reports_the_closed_parts_with_their_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), Format::Parquet, Compression::None);
    s.parquet.part_rows = 2;
    let mut sink = open(&s, None).unwrap();
    let mut last = None;
    for chunk in sample_rows().chunks(2) {
        sink.write_chunk(chunk).unwrap();
        last = sink.commit().unwrap();
    }
    // The fifth row is durable in a piece of the open part, a hidden file: not an output yet.
    let pos = last.unwrap();
    assert_eq!((pos.file_index, pos.rows, pos.open_rows()), (2, 5, 1));
    assert!(dir.path().join(".channel-00002.parquet.00000.piece").exists());
    let listed = list_outputs(&s).unwrap();
    let paths: Vec<_> = listed.iter().map(|f| f.path.clone()).collect();
    assert_eq!(paths, [s.part_path(0), s.part_path(1)]);
    assert_eq!(listed.iter().map(|f| f.bytes).sum::<u64>(), pos.bytes);
    let end = sink.finish().unwrap();
    let listed = list_outputs(&s).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2].path, s.part_path(2));
    assert_eq!(listed.iter().map(|f| f.bytes).sum::<u64>(), end.bytes);
}

#[test]
fn without_the_journal_no_piece_is_written_and_the_part_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let journaled = spec(&dir.path().join("journaled"), Format::Parquet, Compression::None)
        .with_id_column(Some("id"));
    let mut bare = journaled.clone();
    bare.dir = dir.path().join("bare");
    bare.journal = false;
    let mut with = open(&journaled, None).unwrap();
    let mut without = open(&bare, None).unwrap();
    for chunk in sample_rows().chunks(2) {
        with.write_chunk(chunk).unwrap();
        without.write_chunk(chunk).unwrap();
        with.commit().unwrap();
    }
    let hidden = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "piece"))
            .map(|p| p.display().to_string())
            .collect()
    };
    assert_eq!(hidden(&journaled.dir).len(), 3, "a piece per commit");
    assert_eq!(hidden(&bare.dir), Vec::<String>::new(), "no piece without the journal");
    let err = without.commit().unwrap_err();
    assert!(err.to_string().contains("without its journal commits only at finish"), "{err}");
    let (a, b) = (with.finish().unwrap(), without.finish().unwrap());
    assert_eq!((b.file_index, b.rows, b.open_part), (1, 5, None));
    assert_eq!(a.files[0].rows, b.files[0].rows);
    assert_eq!(a.files[0].ids, b.files[0].ids);
    assert_eq!(parquet_output(&journaled), parquet_output(&bare));
}
