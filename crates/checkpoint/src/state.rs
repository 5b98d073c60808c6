//! The state of one table's dump, as saved between runs.

use std::time::SystemTime;

use iptvportal_sink::{Compression, Format, Schema, SinkPosition};
use iptvportal_traverse::{Cursor, Strategy};

use serde::{Deserialize, Serialize};

/// The newest state format this build writes and reads. Bump it when a field changes meaning;
/// older files are then refused with a message rather than misread.
pub const STATE_VERSION: u32 = 1;

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
}

/// The state's time format: RFC 3339 in UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}
