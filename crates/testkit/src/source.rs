//! An in-memory `RowSource` for tests of the layers above the client: rows `[id, grp, name]`
//! kept in id order, a request log, and injected failures, hangs, delays and changes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use iptvportal_query::{CompareOp, Expr, Operand, Scalar, Select};
use iptvportal_traverse::{BoxError, RowSource};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The fake table's columns.
pub const COLUMNS: [&str; 3] = ["id", "grp", "name"];

/// A change to the fake's rows.
pub type Change = Box<dyn Fn(&mut Vec<Vec<Value>>) + Send + Sync>;

/// A table of rows `[id, grp, name]` answering the JSONSQL the traversals send: `count(*)`,
/// `min`/`max` of the id, id comparisons joined by and/or/not, `limit` and `offset` in id order.
pub struct FakeSource {
    rows: Mutex<Vec<Vec<Value>>>,
    /// Every request, in the order received.
    pub log: Mutex<Vec<Select>>,
    /// Requests running right now, and the most ever seen at once: all of them, and those that
    /// fetch rows (neither a count nor a scan of the ids alone).
    running: AtomicUsize,
    /// The most requests ever running at once.
    pub max_running: AtomicUsize,
    running_fetches: AtomicUsize,
    /// The most row fetches (neither a count nor an id scan) ever running at once.
    pub max_running_fetches: AtomicUsize,
    /// Fail the request with this (1-based) number.
    pub fail_at: Option<usize>,
    /// Never answer the request with this (1-based) number.
    pub hang_at: Option<usize>,
    /// How long each request takes.
    pub delay: Duration,
    /// Every n-th request (1-based) takes this long instead of `delay`: answers out of order.
    pub slow_every: Option<(usize, Duration)>,
    /// Change the table with this just before answering the request with this (1-based) number:
    /// a table that changes while it is traversed.
    pub change_at: Option<(usize, Change)>,
    /// How many requests have reached the source so far, for tests to wait on.
    sent: watch::Sender<usize>,
}

impl FakeSource {
    /// Rows with the given ascending ids; `grp` is `id % 3`, `name` is `n<id>`.
    pub fn with_ids(ids: impl IntoIterator<Item = i64>) -> FakeSource {
        let rows = ids.into_iter().map(Self::row).collect();
        FakeSource {
            rows: Mutex::new(rows),
            log: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            running_fetches: AtomicUsize::new(0),
            max_running_fetches: AtomicUsize::new(0),
            fail_at: None,
            hang_at: None,
            delay: Duration::ZERO,
            slow_every: None,
            change_at: None,
            sent: watch::Sender::new(0),
        }
    }

    /// The row with this id.
    pub fn row(id: i64) -> Vec<Value> {
        vec![json!(id), json!(id % 3), json!(format!("n{id}"))]
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Select> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `n` requests have reached the source (whoever sent them, in whatever task);
    /// `false` if that does not happen within `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let mut sent = self.sent.subscribe();
        tokio::time::timeout(timeout, sent.wait_for(|&count| count >= n)).await.is_ok()
    }

    fn matches(row: &[Value], expr: &Expr) -> bool {
        match expr {
            Expr::And(items) => items.iter().all(|e| Self::matches(row, e)),
            Expr::Or(items) => items.iter().any(|e| Self::matches(row, e)),
            Expr::Not(e) => !Self::matches(row, e),
            Expr::Compare {
                op,
                left: Operand::Column(c),
                right: Operand::Literal(Scalar::Int(v)),
            } => {
                let i = COLUMNS.iter().position(|n| *n == c.name).expect("known column");
                let x = row[i].as_i64().expect("integer column");
                match op {
                    CompareOp::Eq => x == *v,
                    CompareOp::Neq => x != *v,
                    CompareOp::Gt => x > *v,
                    CompareOp::Gte => x >= *v,
                    CompareOp::Lt => x < *v,
                    CompareOp::Lte => x <= *v,
                    other => panic!("fake source does not support {other:?}"),
                }
            }
            other => panic!("fake source does not support {other:?}"),
        }
    }
}

#[async_trait]
impl RowSource for FakeSource {
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError> {
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(query.clone());
            self.sent.send_replace(log.len());
            log.len()
        };
        if self.hang_at == Some(n) {
            return std::future::pending().await;
        }
        let fetch = !matches!(query.data.as_slice(), [Operand::Function(_), ..])
            && !matches!(query.data.as_slice(), [Operand::Column(c)] if c.name == "id");
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if fetch {
            let now = self.running_fetches.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running_fetches.fetch_max(now, Ordering::SeqCst);
        }
        let delay = match self.slow_every {
            Some((every, slow)) if n % every == 0 => slow,
            _ => self.delay,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if fetch {
            self.running_fetches.fetch_sub(1, Ordering::SeqCst);
        }
        if self.fail_at == Some(n) {
            return Err("injected failure".into());
        }
        let mut rows = self.rows.lock().unwrap();
        if let Some((_, change)) = self.change_at.as_ref().filter(|(at, _)| *at == n) {
            change(&mut rows);
            rows.sort_by_key(|r| r[0].as_i64());
        }
        let matching: Vec<&Vec<Value>> = rows
            .iter()
            .filter(|r| query.where_.as_ref().is_none_or(|w| Self::matches(r, w)))
            .collect();
        // Aggregates: count(*), min(id), max(id).
        if let Some(Operand::Function(_)) = query.data.first() {
            let ids: Vec<i64> = matching.iter().map(|r| r[0].as_i64().unwrap()).collect();
            let row = query
                .data
                .iter()
                .map(|d| match d {
                    Operand::Function(f) if f.name == "count" => json!(ids.len()),
                    Operand::Function(f) if f.name == "min" => {
                        ids.iter().min().map_or(Value::Null, |v| json!(v))
                    }
                    Operand::Function(f) if f.name == "max" => {
                        ids.iter().max().map_or(Value::Null, |v| json!(v))
                    }
                    other => panic!("unsupported {other:?}"),
                })
                .collect();
            return Ok(vec![row]);
        }
        // Rows are stored in id order, which is the only order traversals ask for here.
        let offset = usize::try_from(query.offset.unwrap_or(0)).unwrap();
        let limit = query.limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap());
        Ok(matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|row| {
                query
                    .data
                    .iter()
                    .flat_map(|d| match d {
                        Operand::Star => row.clone(),
                        Operand::Column(c) => {
                            vec![row[COLUMNS.iter().position(|n| *n == c.name).unwrap()].clone()]
                        }
                        other => panic!("unsupported {other:?}"),
                    })
                    .collect()
            })
            .collect())
    }
}
