//! Crash and resume, as a property: for every format, plain and gzip, a random table cut into
//! random chunks, a crash at a random chunk (mid-chunk, with torn bytes after the committed
//! length), and a resume from the last committed position must give the uninterrupted output.

use std::io::Write;

use iptvportal_sink::{Compression, Format, OutputFile, SinkPosition, SinkSpec, open};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{parquet_output, spec, text_output};

/// A random row of the sample schema, with the given id.
fn row(id: i64) -> impl Strategy<Value = Vec<Value>> {
    let text = prop_oneof![Just(Value::Null), "[a-zа-я ,\"\n\r\t]{0,12}".prop_map(Value::from),];
    let float = prop_oneof![
        Just(Value::Null),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        (-1000i64..1000).prop_map(|i| json!(i)),
    ];
    let boolean = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from)];
    let stamp = prop_oneof![
        Just(Value::Null),
        (
            1990u32..2030,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
            proptest::option::of(0u32..1_000_000)
        )
            .prop_map(|(y, mo, d, h, mi, s, frac)| {
                let base = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                Value::from(match frac {
                    Some(f) => format!("{base}.{f:06}"),
                    None => base,
                })
            }),
    ];
    (text, float, boolean, stamp).prop_map(move |(t, f, b, s)| vec![json!(id), t, f, b, s])
}

/// Rows with ascending, gappy ids, cut into chunks of 1 to 6 rows (some empty).
fn chunks() -> impl Strategy<Value = Vec<Vec<Vec<Value>>>> {
    proptest::collection::vec((0usize..6, 1i64..4), 0..10).prop_flat_map(|shape| {
        let mut id = 0;
        let chunks: Vec<_> = shape
            .into_iter()
            .map(|(len, gap)| {
                let ids: Vec<i64> = (0..len)
                    .map(|_| {
                        id += gap;
                        id
                    })
                    .collect();
                ids.into_iter().map(row).collect::<Vec<_>>()
            })
            .collect();
        chunks
    })
}

/// Every configuration the property runs over. Parquet uses tiny parts and row groups so that
/// parts rotate, and crashes land both inside and between parts.
fn configs(dir: &std::path::Path) -> Vec<SinkSpec> {
    let mut out = Vec::new();
    for format in [Format::Jsonl, Format::Csv, Format::Json] {
        out.push(spec(&dir.join(format!("{format}-plain")), format, Compression::None));
        out.push(spec(&dir.join(format!("{format}-gz")), format, Compression::gzip()));
    }
    // Text in parts of 4 rows: parts close at commits, crashes land in and between them.
    for format in [Format::Jsonl, Format::Csv, Format::Json] {
        for (name, compression) in [("plain", Compression::None), ("gz", Compression::gzip())] {
            let mut s = spec(&dir.join(format!("{format}-{name}-parts")), format, compression);
            s.text_part_rows = Some(4);
            out.push(s);
        }
    }
    let mut p = spec(&dir.join("parquet"), Format::Parquet, Compression::None);
    p.parquet.part_rows = 5;
    p.parquet.row_group_rows = 3;
    out.push(p);
    out
}

#[derive(Debug, PartialEq)]
enum Output {
    Text(Vec<u8>),
    Parquet(Vec<arrow_schema::SchemaRef>, Vec<Vec<Value>>),
    /// Text parts: each file's name and exact bytes, in order.
    Parts(Vec<(String, Vec<u8>)>),
}

fn output(spec: &SinkSpec) -> Output {
    if spec.format == Format::Parquet {
        let (schemas, rows) = parquet_output(spec);
        Output::Parquet(schemas, rows)
    } else if spec.text_part_rows.is_some() {
        let files = iptvportal_sink::list_outputs(spec).unwrap().into_iter().map(|f| {
            let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&f.path).unwrap())
        });
        Output::Parts(files.collect())
    } else {
        Output::Text(text_output(spec))
    }
}

fn uninterrupted(spec: &SinkSpec, chunks: &[Vec<Vec<Value>>]) -> Output {
    let mut sink = open(spec, None).unwrap();
    for chunk in chunks {
        sink.write_chunk(chunk).unwrap();
        sink.commit().unwrap();
    }
    sink.finish().unwrap();
    output(spec)
}

/// Writes and commits chunks up to `crash_at`, writes one more without committing, tears the
/// file, then resumes from the last reported position as the orchestrator would.
fn crashed(spec: &SinkSpec, chunks: &[Vec<Vec<Value>>], crash_at: usize, torn: &[u8]) -> Output {
    // The orchestrator's checkpoint: the last position reported, and the chunk to refetch from.
    let mut checkpoint: Option<(SinkPosition, usize)> = None;
    let mut sink = open(spec, None).unwrap();
    for (i, chunk) in chunks[..crash_at].iter().enumerate() {
        sink.write_chunk(chunk).unwrap();
        if let Some(pos) = sink.commit().unwrap() {
            checkpoint = Some((pos, i + 1));
        }
    }
    if let Some(chunk) = chunks.get(crash_at) {
        sink.write_chunk(chunk).unwrap();
    }
    drop(sink);
    // A torn write: bytes past the committed length that no commit covered.
    let torn_path = match spec.files().remove(0) {
        OutputFile::Path(p) => p,
        // The part being written: the one the last commit left open or pointed to next (a
        // closed part is never written again). A crash right after a part closed tears nothing.
        _ if spec.format != Format::Parquet => {
            spec.part_path(checkpoint.as_ref().map_or(0, |(pos, _)| pos.file_index))
        }
        _ => spec.dir.join(".channel-00099.parquet.tmp"),
    };
    if spec.text_part_rows.is_none() || torn_path.exists() {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&torn_path)
            .unwrap()
            .write_all(torn)
            .unwrap();
    }

    let (mut sink, from) = match &checkpoint {
        Some((pos, next)) => (open(spec, Some(pos)).unwrap(), *next),
        None => (open(spec, None).unwrap(), 0),
    };
    for chunk in &chunks[from..] {
        sink.write_chunk(chunk).unwrap();
        sink.commit().unwrap();
    }
    sink.finish().unwrap();
    output(spec)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_crash_at_any_chunk_then_resume_gives_the_uninterrupted_output(
        chunks in chunks(),
        crash in any::<proptest::sample::Index>(),
        torn in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let crash_at = crash.index(chunks.len() + 1);
        for config in configs(dir.path()) {
            let expected = uninterrupted(&config, &chunks);
            let mut again = config.clone();
            again.dir = config.dir.with_extension("crash");
            let got = crashed(&again, &chunks, crash_at, &torn);
            prop_assert_eq!(&got, &expected, "{} {:?}", config.format, config.compression);
        }
    }
}
