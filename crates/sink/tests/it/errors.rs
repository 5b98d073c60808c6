//! The errors an operator sees: type mismatches, damaged outputs on resume, bad configurations,
//! and what `remove_outputs` removes.

use iptvportal_sink::{
    ColumnSpec, ColumnType, Compression, Error, Format, RowId, Schema, SinkPosition, SinkSpec,
    open, remove_outputs,
};
use serde_json::{Value, json};

use crate::{sample_rows, spec};

#[test]
fn a_type_mismatch_names_table_column_and_row_id_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Jsonl, Format::Csv, Format::Json, Format::Parquet] {
        let s = spec(dir.path(), format, Compression::None);
        let mut sink = open(&s, None).unwrap();
        let mut rows = sample_rows();
        rows[3][2] = json!("3.5");
        let err = sink.write_chunk(&rows).unwrap_err();
        match &err {
            Error::TypeMismatch { table, column, row_id, expected, nullable, value } => {
                assert_eq!((table.as_str(), column.as_str()), ("channel", "balance"));
                assert_eq!(*row_id, RowId::Id("7".into()));
                assert_eq!(
                    (*expected, *nullable, value.as_str()),
                    (ColumnType::Float, true, "\"3.5\"")
                );
            }
            other => panic!("{format}: unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "table channel, column balance, id 7: expected float, got \"3.5\""
        );
        assert!(err.is_data_error());
        assert!(err.to_string().contains("expected float"));
        // The chunk was refused whole: a commit now reports no rows.
        if format != Format::Parquet {
            assert_eq!(sink.commit().unwrap().unwrap().rows, 0);
        }
    }
}

/// Every format refuses the same first bad value, in row order, whatever its column's type: the
/// Parquet sink checks while it builds its columns, the text sinks before they write.
#[test]
fn every_format_names_the_first_value_that_does_not_fit() {
    let cases: [(usize, usize, Value, &str); 6] = [
        (
            0,
            4,
            json!("2023-13-01 10:00:00"),
            "created, id 1: expected timestamp, got \"2023-13-01 10:00:00\"",
        ),
        (1, 4, json!(20_230_101), "created, id 2: expected timestamp, got 20230101"),
        (3, 3, json!("yes"), "active, id 7: expected boolean, got \"yes\""),
        (4, 1, json!(12), "name, id 8: expected text, got 12"),
        (
            2,
            2,
            json!(9_007_199_254_740_993_i64),
            "balance, id 5: expected float, got 9007199254740993",
        ),
        (1, 0, json!(2.5), "id, id 2.5: expected non-null integer, got 2.5"),
    ];
    for format in [Format::Jsonl, Format::Csv, Format::Json, Format::Parquet] {
        for (row, col, value, message) in &cases {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = open(&spec(dir.path(), format, Compression::None), None).unwrap();
            let mut rows = sample_rows();
            rows[*row][*col] = value.clone();
            // A later row's bad value is not the one named.
            rows[4][4] = json!("not a time");
            let err = sink.write_chunk(&rows).unwrap_err();
            assert_eq!(err.to_string(), format!("table channel, column {message}"), "{format}");
        }
        // A row of the wrong width, and a null in a column that allows none.
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(&spec(dir.path(), format, Compression::None), None).unwrap();
        let mut rows = sample_rows();
        rows[2].pop();
        let err = sink.write_chunk(&rows).unwrap_err();
        assert!(matches!(err, Error::RowWidth { expected: 5, found: 4, .. }), "{format}: {err:?}");
        let mut rows = sample_rows();
        rows[1][0] = Value::Null;
        let err = sink.write_chunk(&rows).unwrap_err();
        assert!(
            matches!(err, Error::TypeMismatch { row_id: RowId::Number(2), nullable: false, .. }),
            "{format}: {err:?}"
        );
        // After the refusals the sink takes good rows as if nothing had happened.
        sink.write_chunk(&sample_rows()).unwrap();
        assert_eq!(sink.commit().unwrap().unwrap().rows, 5, "{format}");
    }
}

#[test]
fn without_an_id_column_rows_are_named_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema { columns: vec![ColumnSpec::new("n", ColumnType::Integer, false)] };
    let s = SinkSpec::new(dir.path(), "t", Format::Jsonl, Compression::None, schema);
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&[vec![json!(1)], vec![json!(2)]]).unwrap();
    let err = sink.write_chunk(&[vec![json!(3)], vec![Value::Null]]).unwrap_err();
    assert!(matches!(
        err,
        Error::TypeMismatch {
            row_id: RowId::Number(4),
            expected: ColumnType::Integer,
            nullable: false,
            ..
        }
    ));
}

#[test]
fn resuming_a_missing_or_short_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Jsonl, Compression::None);
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()).unwrap();
    let pos = sink.commit().unwrap().unwrap();
    drop(sink);

    let beyond = SinkPosition { bytes: pos.bytes + 1, ..pos.clone() };
    let err = open(&s, Some(&beyond)).err().unwrap();
    assert!(matches!(err, Error::ResumeMismatch { .. }), "{err}");
    // What to do (the CLI's `--reset`) is the caller's to say: crates/cli/src/failure.rs.
    assert!(err.to_string().contains("the output was damaged or removed"), "{err}");
    assert!(!err.to_string().contains("--"), "{err}");

    remove_outputs(&s).unwrap();
    let err = open(&s, Some(&pos)).err().unwrap();
    assert!(
        matches!(err, Error::ResumeMismatch { ref path, .. } if path.ends_with("channel.jsonl")),
        "{err}"
    );

    // A Parquet checkpoint whose closed part is gone.
    let p = spec(dir.path(), Format::Parquet, Compression::None);
    let err = open(&p, Some(&SinkPosition::bare(1, 10, 5))).err().unwrap();
    assert!(
        matches!(err, Error::ResumeMismatch { ref path, .. } if path.ends_with("channel-00000.parquet")),
        "{err}"
    );
}

#[test]
fn remove_outputs_removes_parts_and_temps_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), Format::Parquet, Compression::None);
    s.parquet.part_rows = 2;
    let mut sink = open(&s, None).unwrap();
    for chunk in sample_rows().chunks(2) {
        sink.write_chunk(chunk).unwrap();
        sink.commit().unwrap();
    }
    sink.write_chunk(&sample_rows()[..1]).unwrap();
    drop(sink);
    let keep = [
        "channel.jsonl",
        "channel-00000-00000.parquet",
        ".channel-00000-00000.parquet.00000.piece",
        "other-00000.parquet",
        ".channel.state.json",
    ];
    for name in keep {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // The committed piece of the open part and the uncommitted one after it.
    for piece in [".channel-00002.parquet.00000.piece", ".channel-00002.parquet.00001.piece"] {
        assert!(names().contains(&piece.to_owned()), "{:?}", names());
    }
    std::fs::write(dir.path().join(".channel-00003.parquet.tmp"), b"x").unwrap();
    remove_outputs(&s).unwrap();
    let mut expected: Vec<String> = keep.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(names(), expected);
    // Removing again, or from a missing directory, is fine.
    remove_outputs(&s).unwrap();
    let gone = spec(&dir.path().join("nope"), Format::Csv, Compression::gzip());
    remove_outputs(&gone).unwrap();
}

#[test]
fn gzip_parquet_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Parquet, Compression::gzip());
    assert!(matches!(open(&s, None).err().unwrap(), Error::Config { .. }));
}

#[test]
fn a_fresh_open_discards_stale_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Csv, Compression::None);
    std::fs::write(dir.path().join("channel.csv"), b"stale,stuff\n").unwrap();
    let sink = open(&s, None).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("channel.csv")).unwrap(),
        "id,name,balance,active,created\n"
    );
}
