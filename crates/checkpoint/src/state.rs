//! The state of one table's dump, as saved between runs.

use std::time::SystemTime;

use iptvportal_sink::{Compression, Format, Schema, SinkPosition};
use iptvportal_traverse::{Cursor, Strategy};

use serde::{Deserialize, Serialize};

/// The newest state format this build writes and reads. Bump it when a field changes meaning;
/// older files are then refused with a message rather than misread, unless a migration reads them.
///
/// Version 2 adds the manifest (`sink.files`: every output file's rows, bytes, CRC-32 and id
/// range) and the seal (`check`). Version 1 states are still read: they have neither, and a
/// resume computes the manifest once from the files (the sink does).
pub const STATE_VERSION: u32 = 2;

/// The oldest state format this build still reads.
pub const OLDEST_STATE_VERSION: u32 = 1;

/// Everything that shapes a dump's output. Two runs with equal shapes write the same files, so a
/// checkpoint of one can resume the other; chunk size, parallelism, timeouts and retries do not
/// appear here because they change how the output is fetched, never what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputShape {
    /// The table.
    pub table: String,
    /// The requested columns, `None` for every column.
    pub columns: Option<Vec<String>>,
    /// The filter, as its JSONSQL JSON text (`None` for no filter).
    pub filter: Option<String>,
    /// The sort order (OFFSET), as written (`id ASC`).
    pub order_by: Vec<String>,
    /// The output format.
    pub format: Format,
    /// Compression, compared by kind only: gzip levels differ in bytes, never in content.
    pub compression: Compression,
    /// The traversal strategy, which gives the saved cursor its meaning.
    pub strategy: Strategy,
    /// Text formats: the rows per part when the output is in parts, `None` for one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_rows: Option<u64>,
    /// The portal the rows came from (its API URL without credentials, or a name such as
    /// `demo`), when the source tells it. A checkpoint of one portal never resumes against another;
    /// a checkpoint or a source without one (states written before this field) is not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
}

/// One way in which a requested dump differs from a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeDifference {
    /// What differs, in command-line terms (`format`, `filter`, …).
    pub field: &'static str,
    /// The checkpoint's value.
    pub saved: String,
    /// The requested value.
    pub requested: String,
}

impl std::fmt::Display for ShapeDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} was {} and is now {}", self.field, self.saved, self.requested)
    }
}

impl OutputShape {
    /// The ways `requested` differs from `self` (the saved shape); empty when a resume is safe.
    pub fn differences(&self, requested: &OutputShape) -> Vec<ShapeDifference> {
        fn show<T: std::fmt::Debug>(v: Option<&T>) -> String {
            v.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
        }
        let mut out = Vec::new();
        let mut diff = |field, saved: String, requested: String| {
            if saved != requested {
                out.push(ShapeDifference { field, saved, requested });
            }
        };
        diff("table", self.table.clone(), requested.table.clone());
        diff(
            "columns",
            self.columns.as_ref().map_or_else(|| "all".to_owned(), |c| c.join(",")),
            requested.columns.as_ref().map_or_else(|| "all".to_owned(), |c| c.join(",")),
        );
        diff("filter", show(self.filter.as_ref()), show(requested.filter.as_ref()));
        diff("order by", format!("{:?}", self.order_by), format!("{:?}", requested.order_by));
        diff("format", self.format.to_string(), requested.format.to_string());
        diff(
            "compression",
            compression_kind(self.compression),
            compression_kind(requested.compression),
        );
        diff("strategy", self.strategy.to_string(), requested.strategy.to_string());
        let parts = |p: Option<u64>| p.map_or_else(|| "one file".to_owned(), |n| n.to_string());
        diff("part rows", parts(self.part_rows), parts(requested.part_rows));
        if let (Some(saved), Some(now)) = (&self.portal, &requested.portal) {
            diff("portal", saved.clone(), now.clone());
        }
        out
    }
}

fn compression_kind(c: Compression) -> String {
    match c {
        Compression::Gzip { .. } => "gzip".to_owned(),
        _ => "none".to_owned(),
    }
}

/// The saved state of one table's dump: the seed's fields, plus what exact resume needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpState {
    /// The state format version ([`STATE_VERSION`]).
    pub version: u32,
    /// The table.
    pub table: String,
    /// Rows durable in the output.
    pub dumped_rows: u64,
    /// The seed's resume offset: the OFFSET cursor, or for ID_RANGE the rows done (informational).
    pub current_offset: u64,
    /// The last id done (ID_RANGE), if any.
    pub current_id: Option<i64>,
    /// Chunks committed over all runs.
    pub chunks_completed: u64,
    /// Chunks that failed after their retries, over all runs.
    pub chunks_failed: u64,
    /// The rows the table held (under the filter) when counted, if counted.
    pub total_rows: Option<u64>,
    /// When the first run started (RFC 3339, UTC).
    pub started_at: String,
    /// When this state was written (RFC 3339, UTC).
    pub last_updated_at: String,
    /// When the dump completed.
    pub completed_at: Option<String>,
    /// Whether the output is complete.
    pub is_complete: bool,
    /// The last failure's message, kept until the table completes.
    pub last_error: Option<String>,
    /// Where the traversal resumes.
    pub cursor: Cursor,
    /// The sink's committed position: where the output is cut back to on resume.
    pub sink: SinkPosition,
    /// The output schema, pinned at the first chunk.
    pub schema: Schema,
    /// What shaped the output.
    pub shape: OutputShape,
}

impl DumpState {
    /// The state of a dump that has committed nothing yet: its first run started at `started_at`
    /// and resumes from `cursor` (the start, or a requested OFFSET).
    pub fn fresh(
        table: &str,
        cursor: Cursor,
        started_at: SystemTime,
        shape: OutputShape,
    ) -> DumpState {
        DumpState {
            version: STATE_VERSION,
            table: table.to_owned(),
            dumped_rows: 0,
            current_offset: cursor.current_offset(0),
            current_id: None,
            chunks_completed: 0,
            chunks_failed: 0,
            total_rows: None,
            started_at: rfc3339(started_at),
            last_updated_at: rfc3339(SystemTime::now()),
            completed_at: None,
            is_complete: false,
            last_error: None,
            cursor,
            sink: SinkPosition::default(),
            schema: Schema { columns: Vec::new() },
            shape,
        }
    }

    /// Records a commit: the sink made its output durable up to `position`, which holds every
    /// row before `cursor`, in `chunks` chunks over all runs. The one place that moves the cursor,
    /// so the state never points past what the sink reported durable.
    pub fn record_commit(&mut self, position: SinkPosition, cursor: Cursor, chunks: u64) {
        self.dumped_rows = position.rows;
        self.sink = position;
        self.cursor = cursor;
        self.chunks_completed = chunks;
        self.current_offset = cursor.current_offset(self.dumped_rows);
        if let Cursor::Id { after } = cursor {
            self.current_id = after;
        }
        self.last_updated_at = rfc3339(SystemTime::now());
    }

    /// Records the completed output: the sink's final `position`, `chunks` chunks over all runs.
    pub fn record_completion(&mut self, position: SinkPosition, chunks: u64) {
        let now = rfc3339(SystemTime::now());
        self.dumped_rows = position.rows;
        self.sink = position;
        self.chunks_completed = chunks;
        self.is_complete = true;
        self.completed_at = Some(now.clone());
        self.last_updated_at = now;
        self.last_error = None;
    }

    /// Records a run that stopped: with the failure's message, or (`None`) a cancellation, which
    /// is not a failure. Nothing a resume depends on changes.
    pub fn record_stop(&mut self, failure: Option<String>) {
        if let Some(message) = failure {
            self.chunks_failed += 1;
            self.last_error = Some(message);
        }
        self.last_updated_at = rfc3339(SystemTime::now());
    }

    /// When the first run started, if the saved time parses.
    pub fn started(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.started_at)
    }

    /// When the dump completed, if it did and the saved time parses.
    pub fn completed(&self) -> Option<SystemTime> {
        self.completed_at.as_deref().and_then(parse_rfc3339)
    }

    /// Checks that the state's fields agree with each other, as every state this tool writes
    /// does: the first way they do not, in words. A state that fails here was edited by hand (or
    /// written by a bug) and is never followed.
    pub fn inconsistency(&self) -> Option<String> {
        let sink = &self.sink;
        if self.dumped_rows != sink.rows {
            return Some(format!(
                "it counts {} rows dumped but its output position holds {}",
                self.dumped_rows, sink.rows
            ));
        }
        if self.current_offset != self.cursor.current_offset(self.dumped_rows) {
            return Some(format!(
                "its offset {} does not follow from its cursor and its {} rows",
                self.current_offset, self.dumped_rows
            ));
        }
        if let Cursor::Id { after } = self.cursor
            && after != self.current_id
        {
            return Some("its last id and its cursor differ".to_owned());
        }
        if self.is_complete != self.completed_at.is_some() {
            return Some("it is complete without a completion time, or the reverse".to_owned());
        }
        if let Cursor::Offset { offset } = self.cursor
            && offset < self.dumped_rows
        {
            return Some(format!("its offset {offset} is below its {} rows", self.dumped_rows));
        }
        if sink.files.is_empty() && sink.open_part.is_none() && sink.last_chunk.is_none() {
            // Nothing committed yet, or a version 1 state: no manifest to compare with.
            return None;
        }
        let (rows, bytes) = sink.files.iter().fold((0, 0), |(r, b), f| (r + f.rows, b + f.bytes));
        if rows + sink.open_rows() != sink.rows || bytes != sink.bytes {
            return Some(format!(
                "its manifest lists {} rows in {bytes} bytes but its position says {} rows in {} \
                 bytes",
                rows + sink.open_rows(),
                sink.rows,
                sink.bytes
            ));
        }
        if self.shape.format == iptvportal_sink::Format::Parquet {
            if sink.files.len() != sink.file_index as usize {
                return Some(format!(
                    "its manifest lists {} parts but its position says {}",
                    sink.files.len(),
                    sink.file_index
                ));
            }
        } else if self.shape.part_rows.is_some() {
            let (listed, at) = (sink.files.len(), sink.file_index as usize);
            if (listed != at && listed != at + 1) || sink.open_part.is_some() {
                return Some(format!(
                    "its manifest lists {listed} parts but its position is at part {at}"
                ));
            }
        } else if sink.files.len() != 1 || sink.file_index != 0 || sink.open_part.is_some() {
            return Some("a text output is one file".to_owned());
        }
        match sink.last_chunk {
            Some(chunk) if chunk.offset > sink.bytes => {
                Some(format!("its last chunk starts past its end, at byte {}", chunk.offset))
            }
            _ => None,
        }
    }
}

/// The name of the seal in a saved state: the CRC-32 of the rest of the state.
const SEAL: &str = "check";

/// `state` as the JSON a store saves: its fields plus `check`, the CRC-32 of the compact JSON of
/// the others (keys sorted, so the same state always gives the same text). The seal catches a
/// state changed by anything but this tool, a hand edit above all, before it is followed.
///
/// # Panics
///
/// Never: a state always serializes to JSON (its maps have string keys).
pub fn seal(state: &DumpState) -> serde_json::Value {
    let mut value = serde_json::to_value(state).expect("a state always serializes");
    let crc = seal_of(&value);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(SEAL.to_owned(), serde_json::Value::String(crc.to_string()));
    }
    value
}

/// Reads a saved state, checking its seal (version 2 on; a version 1 state has none) and its
/// consistency. The error says, in words, why the state is not to be followed.
pub fn unseal(mut value: serde_json::Value) -> Result<DumpState, String> {
    let saved = value.as_object_mut().and_then(|map| map.remove(SEAL));
    let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    match saved {
        Some(serde_json::Value::String(text)) => {
            let crc = seal_of(&value);
            if text.parse::<iptvportal_sink::Crc32>() != Ok(crc) {
                return Err("it was edited or damaged: its check value does not match its \
                            contents"
                    .to_owned());
            }
        }
        Some(_) => return Err("its check value is not a checksum".to_owned()),
        None if version >= 2 => return Err("it has no check value".to_owned()),
        None => {}
    }
    let state: DumpState = serde_json::from_value(value).map_err(|e| e.to_string())?;
    match state.inconsistency() {
        Some(why) => Err(format!("it is inconsistent: {why}")),
        None => Ok(state),
    }
}

/// The text a store saves: [`seal`]'s JSON, pretty-printed with the fields in their declared
/// order (the seed's first) and the seal last, which is easier to read than sorted keys.
pub(crate) fn sealed_text(state: &DumpState) -> Vec<u8> {
    #[derive(Serialize)]
    struct Sealed<'a> {
        #[serde(flatten)]
        state: &'a DumpState,
        check: String,
    }
    let check = seal_of(&serde_json::to_value(state).expect("a state always serializes"));
    serde_json::to_vec_pretty(&Sealed { state, check: check.to_string() })
        .expect("a state always serializes")
}

fn seal_of(value: &serde_json::Value) -> iptvportal_sink::Crc32 {
    let text = serde_json::to_vec(value).expect("a JSON value always serializes");
    iptvportal_sink::Crc32::of(&text)
}

/// The state's time format: RFC 3339 in UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}
