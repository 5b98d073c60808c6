//! Exact bytes of each text format, gzip equivalence, and empty tables.

use expect_test::{Expect, expect};
use iptvportal_sink::{Compression, Format, open};

use crate::{sample_rows, spec, text_output, text_path};

fn check(format: Format, expected: &Expect) {
    let dir = tempfile::tempdir().unwrap();
    let plain = spec(dir.path(), format, Compression::None);
    let mut sink = open(&plain, None).unwrap();
    let rows = sample_rows();
    // Two chunks, so that separators across a commit are covered too.
    sink.write_chunk(&rows[..2]).unwrap();
    sink.commit().unwrap();
    sink.write_chunk(&rows[2..]).unwrap();
    sink.commit().unwrap();
    sink.finish().unwrap();
    let bytes = text_output(&plain);
    expected.assert_eq(&String::from_utf8(bytes.clone()).unwrap());

    // The same rows gzipped decompress to the same bytes.
    let gz = spec(dir.path(), format, Compression::gzip());
    let mut sink = open(&gz, None).unwrap();
    sink.write_chunk(&rows[..3]).unwrap();
    sink.commit().unwrap();
    sink.write_chunk(&rows[3..]).unwrap();
    sink.commit().unwrap();
    sink.finish().unwrap();
    assert_eq!(text_output(&gz), bytes);
}

#[test]
fn jsonl_bytes() {
    check(
        Format::Jsonl,
        &expect![[r#"
            {"id":1,"name":"Первый канал","balance":10.5,"active":true,"created":"2023-01-01 10:00:00"}
            {"id":2,"name":"say \"hi\", then\nleave","balance":-0.1,"active":false,"created":"2023-06-30 23:59:59.25"}
            {"id":5,"name":null,"balance":null,"active":null,"created":null}
            {"id":7,"name":"","balance":3,"active":true,"created":"1999-12-31 00:00:00"}
            {"id":8,"name":"tab\there","balance":1e-7,"active":false,"created":"2024-02-29 12:30:00.000001"}
        "#]],
    );
}

#[test]
fn csv_bytes() {
    check(
        Format::Csv,
        &expect![[r#"
            id,name,balance,active,created
            1,Первый канал,10.5,true,2023-01-01 10:00:00
            2,"say ""hi"", then
            leave",-0.1,false,2023-06-30 23:59:59.25
            5,,,,
            7,,3,true,1999-12-31 00:00:00
            8,tab	here,1e-7,false,2024-02-29 12:30:00.000001
        "#]],
    );
}

#[test]
fn json_bytes() {
    check(
        Format::Json,
        &expect![[r#"
            [{"id":1,"name":"Первый канал","balance":10.5,"active":true,"created":"2023-01-01 10:00:00"},
            {"id":2,"name":"say \"hi\", then\nleave","balance":-0.1,"active":false,"created":"2023-06-30 23:59:59.25"},
            {"id":5,"name":null,"balance":null,"active":null,"created":null},
            {"id":7,"name":"","balance":3,"active":true,"created":"1999-12-31 00:00:00"},
            {"id":8,"name":"tab\there","balance":1e-7,"active":false,"created":"2024-02-29 12:30:00.000001"}]
        "#]],
    );
}

#[test]
fn json_output_parses_back_to_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Json, Compression::None);
    let mut sink = open(&s, None).unwrap();
    sink.write_chunk(&sample_rows()).unwrap();
    sink.finish().unwrap();
    // Parsed keeping the key order: the values must come back in column order.
    let parsed: Vec<iptvportal_testkit::Ordered> =
        serde_json::from_slice(&text_output(&s)).unwrap();
    let values: Vec<Vec<serde_json::Value>> =
        parsed.into_iter().map(iptvportal_testkit::Ordered::into_values).collect();
    assert_eq!(values, sample_rows());
}

#[test]
fn empty_tables_are_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    for (format, expected) in [
        (Format::Jsonl, ""),
        (Format::Csv, "id,name,balance,active,created\n"),
        (Format::Json, "[]\n"),
    ] {
        for compression in [Compression::None, Compression::gzip()] {
            let s = spec(dir.path(), format, compression);
            let mut sink = open(&s, None).unwrap();
            sink.write_chunk(&[]).unwrap();
            sink.commit().unwrap();
            let pos = sink.finish().unwrap();
            assert_eq!(pos.rows, 0);
            assert_eq!(
                String::from_utf8(text_output(&s)).unwrap(),
                expected,
                "{format} {compression:?}"
            );
        }
    }
}

#[test]
fn positions_count_committed_bytes_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Csv, Compression::None);
    let mut sink = open(&s, None).unwrap();
    let header = "id,name,balance,active,created\n".len() as u64;
    let pos = sink.commit().unwrap().unwrap();
    assert_eq!((pos.file_index, pos.bytes, pos.rows), (0, header, 0));
    sink.write_chunk(&sample_rows()[..1]).unwrap();
    let pos = sink.commit().unwrap().unwrap();
    let row = "1,Первый канал,10.5,true,2023-01-01 10:00:00\n".len() as u64;
    assert_eq!((pos.bytes, pos.rows), (header + row, 1));
    assert_eq!(sink.finish().unwrap(), pos);
}

#[test]
fn gzip_commits_are_separate_members() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), Format::Jsonl, Compression::gzip());
    let mut sink = open(&s, None).unwrap();
    let mut ends = Vec::new();
    for row in sample_rows() {
        sink.write_chunk(&[row]).unwrap();
        ends.push(sink.commit().unwrap().unwrap().bytes);
    }
    sink.finish().unwrap();
    let raw = std::fs::read(text_path(&s)).unwrap();
    // Every committed prefix is itself a complete gzip stream that decodes to whole rows.
    for (i, end) in ends.iter().enumerate() {
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(&raw[..usize::try_from(*end).unwrap()]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.lines().count(), i + 1);
    }
}
