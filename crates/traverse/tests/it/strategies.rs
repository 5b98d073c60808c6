//! The strategies' output, requests, resume and errors.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iptvportal_query::{ColumnRef, CompareOp, Expr, Operand, OrderBy, Scalar};
use iptvportal_traverse::{
    Chunk, Cursor, Error, Invalid, RowSource, Strategy, Traversal, TraversalSpec,
};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use serde_json::{Value, json};

use iptvportal_testkit::source::FakeSource;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

async fn collect(
    source: Arc<FakeSource>,
    spec: TraversalSpec,
    from: Cursor,
) -> Result<Vec<Chunk>, Error> {
    let source: Arc<dyn RowSource> = source;
    let mut traversal = Traversal::start(source, spec, from).await?;
    let mut chunks = Vec::new();
    while let Some(chunk) = traversal.next_chunk().await? {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// The whole traversal of `source` from the start, with every chunk.
fn walk(source: &Arc<FakeSource>, spec: TraversalSpec) -> Vec<Chunk> {
    let from = Cursor::start(spec.strategy);
    runtime().block_on(collect(source.clone(), spec, from)).unwrap()
}

fn rows(chunks: &[Chunk]) -> Vec<Vec<Value>> {
    chunks.iter().flat_map(|c| c.rows.clone()).collect()
}

fn ids(chunks: &[Chunk]) -> Vec<i64> {
    rows(chunks).iter().map(|r| r[0].as_i64().unwrap()).collect()
}

fn spec(strategy: Strategy, chunk: u64, parallel: usize) -> TraversalSpec {
    TraversalSpec::new("t").strategy(strategy).chunk_size(chunk).max_parallel(parallel)
}

fn grp_eq(v: i64) -> Expr {
    Expr::Compare {
        op: CompareOp::Eq,
        left: Operand::Column(ColumnRef::new("grp").unwrap()),
        right: Operand::Literal(Scalar::Int(v)),
    }
}

#[test]
fn offset_pages_in_id_order_and_stops_on_a_short_page() {
    let source = Arc::new(FakeSource::with_ids(1..=25));
    let chunks = walk(&source, spec(Strategy::Offset, 10, 1));
    assert_eq!(ids(&chunks), (1..=25).collect::<Vec<_>>());
    assert_eq!(
        chunks.iter().map(|c| c.cursor).collect::<Vec<_>>(),
        [10, 20, 25].map(|offset| Cursor::Offset { offset })
    );
    let requests = source.requests();
    // One count, then three pages: the short third page ends it without an extra empty request.
    assert_eq!(requests.len(), 4);
    let pages: Vec<_> = requests[1..].iter().map(|q| (q.offset, q.limit)).collect();
    assert_eq!(pages, [(Some(0), Some(10)), (Some(10), Some(10)), (Some(20), Some(10))]);
    assert!(requests[1..].iter().all(|q| q.order_by == [OrderBy::asc("id").unwrap()]));
}

#[test]
fn keyset_never_uses_offset_and_bounds_each_page_by_the_last_id() {
    let ids_in: Vec<i64> = (1..=30).filter(|i| i % 4 != 0).collect();
    let source = Arc::new(FakeSource::with_ids(ids_in.clone()));
    let chunks = walk(&source, spec(Strategy::IdRange, 7, 1));
    assert_eq!(ids(&chunks), ids_in);
    let requests = source.requests();
    assert!(
        requests.iter().all(|q| q.offset.is_none()),
        "keyset traversal must not page by offset"
    );
    let second = requests[2].where_.as_ref().unwrap().to_json().unwrap();
    assert_eq!(second, json!({"gt": ["id", 9]}));
}

#[test]
fn the_filter_is_anded_into_every_request() {
    for (strategy, parallel) in
        [(Strategy::Offset, 1), (Strategy::IdRange, 1), (Strategy::IdRange, 3)]
    {
        let source = Arc::new(FakeSource::with_ids(1..=40));
        let spec = spec(strategy, 4, parallel).filter(Some(grp_eq(1)));
        let chunks =
            runtime().block_on(collect(source.clone(), spec, Cursor::start(strategy))).unwrap();
        assert_eq!(
            ids(&chunks),
            (1..=40).filter(|i| i % 3 == 1).collect::<Vec<_>>(),
            "{strategy} x{parallel}"
        );
        for q in source.requests() {
            let w = q.where_.unwrap().to_json().unwrap().to_string();
            assert!(w.contains(r#"{"eq":["grp",1]}"#), "{w}");
        }
    }
}

#[test]
fn an_id_not_among_the_columns_is_fetched_and_stripped() {
    let source = Arc::new(FakeSource::with_ids([3, 5, 8, 13]));
    for parallel in [1, 2] {
        let spec = spec(Strategy::IdRange, 2, parallel).columns(Some(vec!["name".to_owned()]));
        let chunks = runtime()
            .block_on(collect(source.clone(), spec, Cursor::start(Strategy::IdRange)))
            .unwrap();
        assert_eq!(rows(&chunks), [["n3"], ["n5"], ["n8"], ["n13"]].map(|r| vec![json!(r[0])]));
        assert_eq!(chunks.last().unwrap().cursor, Cursor::Id { after: Some(13) });
    }
}

#[test]
fn parallel_keeps_at_most_max_parallel_row_fetches_in_flight() {
    let mut fake = FakeSource::with_ids(1..=200);
    fake.delay = Duration::from_millis(2);
    let source = Arc::new(fake);
    let chunks = walk(&source, spec(Strategy::IdRange, 10, 3));
    assert_eq!(ids(&chunks), (1..=200).collect::<Vec<_>>());
    assert_eq!(
        source.max_running_fetches.load(Ordering::SeqCst),
        3,
        "row fetches should overlap up to the window, no more"
    );
    // Plus at most one page of the id scan.
    assert!(source.max_running.load(Ordering::SeqCst) <= 4);
}

/// The kinds of request a parallel traversal sends: (counts, id scan pages, range fetches).
fn request_kinds(source: &FakeSource) -> (usize, usize, usize) {
    let requests = source.requests();
    let counts = requests.iter().filter(|q| matches!(q.data[0], Operand::Function(_))).count();
    let scans = requests
        .iter()
        .filter(|q| matches!(q.data.as_slice(), [Operand::Column(c)] if c.name == "id"))
        .count();
    (counts, scans, requests.len() - counts - scans)
}

#[test]
fn parallel_ranges_hold_one_chunk_each_however_unevenly_the_ids_are_spread() {
    // 1,000 ids in clusters: runs of 1 to 40 consecutive ids separated by gaps of 1 to 5,000.
    let mut table = Vec::new();
    let mut id = 0i64;
    for i in 0..1000i64 {
        id += if i % 37 == 0 { 1 + (i * 7919) % 5000 } else { 1 };
        table.push(id);
    }
    let source = Arc::new(FakeSource::with_ids(table.clone()));
    let chunks = walk(&source, spec(Strategy::IdRange, 10, 3));
    assert_eq!(ids(&chunks), table);
    assert!(chunks.iter().all(|c| c.rows.len() == 10), "every chunk is a full one");
    // One count; scan pages of 4 chunks (40 ids): 25 full and an empty one; one request per range
    // and one for the (empty) tail.
    assert_eq!(request_kinds(&source), (1, 26, 101));
    let scans = source.requests().into_iter().filter(|q| q.data.len() == 1).skip(1);
    assert!(scans.into_iter().all(|q| q.limit == Some(40) && q.offset.is_none()));
}

#[test]
fn parallel_keeps_at_most_max_parallel_chunks_ahead_of_the_caller() {
    // Ranges hold one chunk each here, so row fetches sent minus chunks delivered is what is
    // waiting or on its way. Every seventh request is slow, so later ranges finish before the head
    // and wait. A fetch starts only while waiting + in flight <= 3, so once a chunk is handed on
    // at most 3 remain (no range grows here, so the head never needs the extra page the bound of
    // 3 + 2 allows for). The earlier bound (3 waiting on top of 3 in flight) reached 4 here.
    runtime().block_on(async {
        let mut fake = FakeSource::with_ids(1..=600);
        fake.delay = Duration::from_millis(1);
        fake.slow_every = Some((7, Duration::from_millis(30)));
        let source = Arc::new(fake);
        let mut t = start_with(&source, spec(Strategy::IdRange, 10, 3)).await;
        let (mut delivered, mut most_ahead) = (0, 0);
        while let Some(chunk) = t.next_chunk().await.unwrap() {
            assert_eq!(chunk.rows.len(), 10);
            delivered += 1;
            // Every request spawned by now reaches the source (it logs on first poll).
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let (_, _, fetches) = request_kinds(&source);
            most_ahead = most_ahead.max(fetches - delivered);
        }
        assert_eq!(delivered, 60);
        assert_eq!(most_ahead, 3, "the window fills, and no further");
    });
}

#[test]
fn rows_inserted_into_a_scanned_range_are_fetched_and_deleted_ones_are_not_waited_for() {
    // Chunks of 10 over ids 10, 20, …, 1000. When the third request (the first range fetch; the
    // count and the first scan page, whose 40 ids planned the first 4 ranges, come before it)
    // arrives, 15 and 25 appear in the first range and 305 in the fourth; 150 and 160 vanish
    // from the second.
    let mut fake = FakeSource::with_ids((1..=100).map(|i| i * 10));
    fake.change_at = Some((
        3,
        Box::new(|rows: &mut Vec<Vec<Value>>| {
            rows.extend([15, 25, 305].map(FakeSource::row));
            rows.retain(|r| ![150, 160].contains(&r[0].as_i64().unwrap()));
        }),
    ));
    let source = Arc::new(fake);
    let chunks = walk(&source, spec(Strategy::IdRange, 10, 2));
    let mut expected: Vec<i64> = (1..=100)
        .map(|i| i * 10)
        .chain([15, 25, 305])
        .filter(|i| ![150, 160].contains(i))
        .collect();
    expected.sort_unstable();
    assert_eq!(ids(&chunks), expected);
    // Ten ranges and the tail; the two that grew took one more request each, the one that shrank
    // did not. Scan pages: 40 ids, 40 and 20 (short: the end).
    assert_eq!(request_kinds(&source), (1, 3, 10 + 1 + 2));
}

#[test]
fn an_empty_table_yields_nothing() {
    for (strategy, parallel) in
        [(Strategy::Offset, 1), (Strategy::IdRange, 1), (Strategy::IdRange, 3)]
    {
        let source = Arc::new(FakeSource::with_ids([]));
        let chunks = runtime()
            .block_on(collect(source, spec(strategy, 5, parallel), Cursor::start(strategy)))
            .unwrap();
        assert!(chunks.is_empty());
    }
}

#[test]
fn next_in_flight_sends_no_new_request() {
    runtime().block_on(async {
        let mut fake = FakeSource::with_ids(1..=100);
        fake.delay = Duration::from_millis(1);
        let source = Arc::new(fake);
        let mut t = start_with(&source, spec(Strategy::IdRange, 10, 3)).await;
        let first = t.next_chunk().await.unwrap().unwrap();
        // Let every spawned request reach the source (it logs on first poll), then count.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let sent = source.requests().len();
        let mut drained = vec![first];
        while let Some(chunk) = t.next_in_flight().await.unwrap() {
            drained.push(chunk);
        }
        assert_eq!(source.requests().len(), sent, "draining must not issue requests");
        // What was in flight is delivered, contiguous and in order; the rest follows on demand.
        while let Some(chunk) = t.next_chunk().await.unwrap() {
            drained.push(chunk);
        }
        assert_eq!(ids(&drained), (1..=100).collect::<Vec<_>>());
    });
}

/// How long a test waits for a request it expects.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure a request it does not expect is not coming: a spawned request
/// reaches the source at the first yield of the single-threaded test runtime.
const SETTLE: Duration = Duration::from_millis(50);

const SEQUENTIAL: [Strategy; 2] = [Strategy::Offset, Strategy::IdRange];

async fn start(source: &Arc<FakeSource>, strategy: Strategy, chunk: u64) -> Traversal {
    start_with(source, spec(strategy, chunk, 1)).await
}

/// A traversal of `source` by `spec` from the start.
async fn start_with(source: &Arc<FakeSource>, spec: TraversalSpec) -> Traversal {
    let dyn_source: Arc<dyn RowSource> = source.clone();
    let from = Cursor::start(spec.strategy);
    Traversal::start(dyn_source, spec, from).await.unwrap()
}

/// The page a request asks for, in a form both sequential strategies can be compared on:
/// `(offset, where)`.
type Page = (Option<u64>, Option<Value>);

fn page(q: &iptvportal_query::Select) -> Page {
    (q.offset, q.where_.as_ref().map(|w| w.to_json().unwrap()))
}

#[test]
fn sequential_strategies_fetch_the_next_chunk_while_the_caller_holds_this_one() {
    for strategy in SEQUENTIAL {
        runtime().block_on(async {
            let source = Arc::new(FakeSource::with_ids(1..=25));
            let mut t = start(&source, strategy, 10).await;
            let first = t.next_chunk().await.unwrap().unwrap();
            assert_eq!(ids(std::slice::from_ref(&first)), (1..=10).collect::<Vec<_>>());
            // The count and the first page, then the second page without another call.
            assert!(
                source.wait_for_requests(3, WAIT).await,
                "{strategy}: the next page was not requested while the caller held the first"
            );
            let expected = match strategy {
                Strategy::Offset => (Some(10), None),
                _ => (None, Some(json!({"gt": ["id", 10]}))),
            };
            assert_eq!(page(&source.requests()[2]), expected, "{strategy}");
            assert_eq!(source.requests()[2].limit, Some(10));
            // It is the chunk the next call hands on, without a request of its own.
            let second = t.next_chunk().await.unwrap().unwrap();
            assert_eq!(ids(std::slice::from_ref(&second)), (11..=20).collect::<Vec<_>>());
            assert!(source.wait_for_requests(4, WAIT).await, "{strategy}");
            assert_eq!(source.requests().len(), 4, "{strategy}");
        });
    }
}

/// An uninterrupted sequential walk over ids `1..=n` in chunks of 10: its chunks and the page of
/// each request, what an interrupted walk must reproduce.
fn uninterrupted(strategy: Strategy, n: i64) -> (Vec<Chunk>, Vec<Page>) {
    let source = Arc::new(FakeSource::with_ids(1..=n));
    let chunks = runtime()
        .block_on(collect(source.clone(), spec(strategy, 10, 1), Cursor::start(strategy)))
        .unwrap();
    let pages = source.requests().iter().map(page).collect();
    (chunks, pages)
}

#[test]
fn next_in_flight_delivers_the_read_ahead_then_nothing_and_next_chunk_resumes() {
    for strategy in SEQUENTIAL {
        let (reference, reference_pages) = uninterrupted(strategy, 45);
        runtime().block_on(async {
            let source = Arc::new(FakeSource::with_ids(1..=45));
            let mut t = start(&source, strategy, 10).await;
            // Nothing is in flight before the first chunk is asked for.
            assert_eq!(t.next_in_flight().await.unwrap(), None, "{strategy}");
            assert!(
                !source.wait_for_requests(2, SETTLE).await,
                "{strategy}: a pause sent a request"
            );
            let mut chunks = vec![t.next_chunk().await.unwrap().unwrap()];
            assert!(source.wait_for_requests(3, WAIT).await, "{strategy}");
            // A pause: the read-ahead is delivered, then nothing, and nothing new is sent.
            let drained = t.next_in_flight().await.unwrap();
            assert_eq!(drained.as_ref(), Some(&reference[1]), "{strategy}");
            chunks.extend(drained);
            assert_eq!(t.next_in_flight().await.unwrap(), None, "{strategy}");
            assert!(
                !source.wait_for_requests(4, SETTLE).await,
                "{strategy}: a pause sent a request"
            );
            assert_eq!(source.requests().len(), 3, "{strategy}");
            // Resumed: the next page is requested again and the walk goes on where it stopped.
            while let Some(chunk) = t.next_chunk().await.unwrap() {
                chunks.push(chunk);
            }
            assert_eq!(chunks, reference, "{strategy}");
            let pages: Vec<_> = source.requests().iter().map(page).collect();
            assert_eq!(pages, reference_pages, "{strategy}: the requests changed");
        });
    }
}

#[test]
fn no_request_follows_the_last_short_page() {
    // 25 rows end on a short page; 20 rows on a full one, then an empty page, as without read-ahead.
    for (rows, chunks) in [(25, 3), (20, 2)] {
        for strategy in SEQUENTIAL {
            runtime().block_on(async {
                let source = Arc::new(FakeSource::with_ids(1..=rows));
                let mut t = start(&source, strategy, 10).await;
                for _ in 0..chunks {
                    t.next_chunk().await.unwrap().unwrap();
                }
                // The count and three pages, the last one short or empty.
                assert!(source.wait_for_requests(4, WAIT).await, "{strategy} {rows}");
                assert_eq!(t.next_chunk().await.unwrap(), None, "{strategy} {rows}");
                assert_eq!(t.next_chunk().await.unwrap(), None, "{strategy} {rows}");
                assert_eq!(t.next_in_flight().await.unwrap(), None, "{strategy} {rows}");
                assert!(
                    !source.wait_for_requests(5, SETTLE).await,
                    "{strategy} {rows}: a request followed the last page"
                );
            });
        }
    }
}

#[test]
fn a_failed_read_ahead_surfaces_from_the_next_call_and_names_its_request() {
    let cases = [
        (Strategy::Offset, 2, "fetching rows of t at offset 0"),
        (Strategy::Offset, 3, "fetching rows of t at offset 10"),
        (Strategy::Offset, 4, "fetching rows of t at offset 20"),
        (Strategy::IdRange, 2, "fetching the first rows of t"),
        (Strategy::IdRange, 3, "fetching rows of t after id 10"),
        (Strategy::IdRange, 4, "fetching rows of t after id 20"),
    ];
    for (strategy, fail_at, expected) in cases {
        runtime().block_on(async {
            let mut fake = FakeSource::with_ids(1..=50);
            fake.fail_at = Some(fail_at);
            let source = Arc::new(fake);
            let mut t = start(&source, strategy, 10).await;
            // Request 1 is the count; each chunk before the failing page arrives intact.
            for k in 2..fail_at {
                let chunk = t.next_chunk().await.unwrap().unwrap();
                assert_eq!(chunk.rows.len(), 10, "{strategy} chunk {k}");
            }
            if fail_at > 2 {
                // The failing read-ahead has already run, in the background.
                assert!(source.wait_for_requests(fail_at, WAIT).await, "{strategy}");
            }
            let err = t.next_chunk().await.unwrap_err();
            let Error::Source { what, source: cause } = &err else { panic!("{err:?}") };
            assert_eq!(what, expected);
            assert_eq!(cause.to_string(), "injected failure");
        });
    }
}

#[test]
fn dropping_a_traversal_aborts_its_read_ahead() {
    for strategy in SEQUENTIAL {
        runtime().block_on(async {
            let mut fake = FakeSource::with_ids(1..=50);
            fake.hang_at = Some(3);
            let source = Arc::new(fake);
            let mut t = start(&source, strategy, 10).await;
            t.next_chunk().await.unwrap().unwrap();
            assert!(source.wait_for_requests(3, WAIT).await, "{strategy}");
            // The hanging read-ahead holds the source until it is aborted.
            assert!(Arc::strong_count(&source) > 1);
            drop(t);
            let deadline = tokio::time::Instant::now() + WAIT;
            while Arc::strong_count(&source) > 1 {
                assert!(tokio::time::Instant::now() < deadline, "{strategy}: still in flight");
                tokio::task::yield_now().await;
            }
        });
    }
}

#[test]
fn a_next_chunk_dropped_while_waiting_loses_and_repeats_nothing() {
    for strategy in SEQUENTIAL {
        let (reference, reference_pages) = uninterrupted(strategy, 35);
        runtime().block_on(async {
            let mut fake = FakeSource::with_ids(1..=35);
            fake.delay = Duration::from_millis(20);
            let source = Arc::new(fake);
            let mut t = start(&source, strategy, 10).await;
            let (mut chunks, mut gave_up) = (Vec::new(), 0);
            loop {
                // Give up on every call once, as a `select!` on cancellation would, then retry.
                let first = tokio::time::timeout(Duration::from_millis(1), t.next_chunk()).await;
                let next = if let Ok(next) = first {
                    next
                } else {
                    gave_up += 1;
                    t.next_chunk().await
                };
                let Some(chunk) = next.unwrap() else { break };
                chunks.push(chunk);
            }
            assert_eq!(gave_up, reference.len(), "{strategy}: every chunk should be waited for");
            assert_eq!(chunks, reference, "{strategy}");
            let pages: Vec<_> = source.requests().iter().map(page).collect();
            assert_eq!(pages, reference_pages, "{strategy}: a request was lost or repeated");
        });
    }
}

#[test]
fn invalid_specs_are_refused_before_any_request() {
    let cases = [
        spec(Strategy::Offset, 0, 1),
        spec(Strategy::IdRange, 10, 0),
        spec(Strategy::IdRange, 10, 1).order_by(vec![OrderBy::parse("id DESC").unwrap()]),
        spec(Strategy::IdRange, 10, 1).order_by(vec![OrderBy::parse("name").unwrap()]),
        TraversalSpec::new("bad table"),
        TraversalSpec::new("t").columns(Some(vec!["id; drop".to_owned()])),
    ];
    for case in cases {
        let source = Arc::new(FakeSource::with_ids(1..=3));
        let strategy = case.strategy;
        let err =
            runtime().block_on(collect(source.clone(), case, Cursor::start(strategy))).unwrap_err();
        assert!(matches!(err, Error::Config(_) | Error::Query(_)), "{err:?}");
        assert!(source.requests().is_empty());
    }
    let source = Arc::new(FakeSource::with_ids(1..=3));
    let err = runtime()
        .block_on(collect(source, spec(Strategy::Offset, 1, 1), Cursor::Id { after: None }))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config(Invalid::CursorMismatch {
                cursor: Strategy::IdRange,
                strategy: Strategy::Offset
            })
        ),
        "{err:?}"
    );
}

#[test]
fn a_source_failure_names_the_request() {
    // The third request: a page for the sequential strategies (after the count and the first
    // page); for parallel ID_RANGE (after the count and the first scan page, whose 40 ids leave
    // it few enough bounds to scan on at once), the second scan page; then the first range.
    for (strategy, parallel, fail_at, expected) in [
        (Strategy::Offset, 1, 3, "fetching rows of t"),
        (Strategy::IdRange, 1, 3, "fetching rows of t"),
        (Strategy::IdRange, 2, 3, "scanning the ids of t after 40"),
        (Strategy::IdRange, 2, 4, "fetching rows of t with ids up to 10"),
    ] {
        let mut fake = FakeSource::with_ids(1..=50);
        fake.fail_at = Some(fail_at);
        let err = runtime()
            .block_on(collect(
                Arc::new(fake),
                spec(strategy, 10, parallel),
                Cursor::start(strategy),
            ))
            .unwrap_err();
        let Error::Source { what, source } = &err else { panic!("{err:?}") };
        assert!(what.starts_with(expected), "{what}");
        assert_eq!(source.to_string(), "injected failure");
    }
}

#[test]
fn ids_out_of_order_are_an_error_not_a_silent_skip() {
    // A source that ignores the keyset bound (returns everything from the start each time).
    struct Broken;
    #[async_trait::async_trait]
    impl RowSource for Broken {
        async fn select(
            &self,
            q: &iptvportal_query::Select,
        ) -> Result<Vec<Vec<Value>>, iptvportal_traverse::BoxError> {
            if matches!(q.data.first(), Some(Operand::Function(_))) {
                return Ok(vec![vec![json!(4)]]);
            }
            Ok(vec![vec![json!(1)], vec![json!(2)]])
        }
    }
    let spec = spec(Strategy::IdRange, 2, 1).columns(Some(vec!["id".to_owned()]));
    let err = runtime()
        .block_on(async {
            let mut t =
                Traversal::start(Arc::new(Broken), spec, Cursor::start(Strategy::IdRange)).await?;
            while t.next_chunk().await?.is_some() {}
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Unexpected { .. }), "{err:?}");
}

/// A table of 4 rows as far as counts go, whose id scan answers `scan` and whose row fetches all
/// answer `rows`.
struct Scripted {
    scan: Vec<Vec<Value>>,
    rows: Vec<Vec<Value>>,
}

#[async_trait::async_trait]
impl RowSource for Scripted {
    async fn select(
        &self,
        q: &iptvportal_query::Select,
    ) -> Result<Vec<Vec<Value>>, iptvportal_traverse::BoxError> {
        Ok(match q.data.as_slice() {
            [Operand::Function(_)] => vec![vec![json!(4)]],
            [Operand::Column(_)] => self.scan.clone(),
            _ => self.rows.clone(),
        })
    }
}

/// The error a parallel ID_RANGE traversal of `source` ends with, as the user reads it.
fn parallel_error(source: Scripted, chunk: u64, after: Option<i64>) -> String {
    runtime()
        .block_on(async {
            let spec = spec(Strategy::IdRange, chunk, 2);
            let mut t = Traversal::start(Arc::new(source), spec, Cursor::Id { after }).await?;
            while t.next_chunk().await?.is_some() {}
            Ok::<_, Error>(())
        })
        .unwrap_err()
        .to_string()
}

#[test]
fn an_id_scan_that_does_not_ascend_or_is_not_integers_is_an_error() {
    let run = |scan| parallel_error(Scripted { scan, rows: Vec::new() }, 1, Some(2));
    assert_eq!(
        run(vec![vec![json!(5)], vec![json!(5)]]),
        "unexpected response while scanning the ids of t after 2: ids must be unique and ascending, got 5 after 5"
    );
    assert_eq!(
        run(vec![vec![json!(1)]]),
        "unexpected response while scanning the ids of t after 2: ids must be unique and ascending, got 1 after 2"
    );
    let err = run(vec![vec![json!("x")]]);
    assert!(err.starts_with("scanning the ids of t after 2: "), "{err}");
    assert!(err.contains(r#"expected rows of one integer, got ["x"]"#), "{err}");
}

#[test]
fn a_range_answered_with_bad_ids_is_an_error_naming_the_range() {
    // The scan finds ids 1..=4: ranges up to 2, (2, 4] and the tail after 4. Each row fetch
    // answers `rows` (each row only the id the traversal adds to the columns).
    let run = |rows| {
        let scan = (1..=4).map(|id| vec![json!(id)]).collect();
        parallel_error(Scripted { scan, rows }, 2, None)
    };
    // Which range answers first is up to the scheduler; each names itself exactly.
    let prefix = "unexpected response while fetching rows of t";
    let err = run(vec![vec![json!(3)], vec![json!(99)]]);
    let expected = [
        format!("{prefix} with ids up to 2: id 99 is beyond the requested bound 2"),
        format!("{prefix} with ids in (2, 4]: id 99 is beyond the requested bound 4"),
        format!("{prefix} after id 4: ids must be unique and ascending, got 3 after 4"),
    ];
    assert!(expected.contains(&err), "{err}");
    let err = run(vec![vec![json!(2)], vec![json!(1)]]);
    let expected = [
        format!("{prefix} with ids up to 2: ids must be unique and ascending, got 1 after 2"),
        format!("{prefix} with ids in (2, 4]: ids must be unique and ascending, got 2 after 2"),
        format!("{prefix} after id 4: ids must be unique and ascending, got 2 after 4"),
    ];
    assert!(expected.contains(&err), "{err}");
}

fn id_sets() -> impl proptest::strategy::Strategy<Value = Vec<i64>> {
    // Ascending ids with gaps of every size, including large jumps.
    proptest::collection::vec(
        prop_oneof![4 => 1i64..3, 1 => 3i64..50, 1 => 1000i64..100_000],
        0..120,
    )
    .prop_map(|gaps| {
        let mut id = -5;
        gaps.into_iter()
            .map(|g| {
                id += g;
                id
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every strategy yields exactly the table in id order, and resuming from any chunk's cursor
    /// yields exactly the rest: the traversal half of exact resume.
    #[test]
    fn every_strategy_yields_the_table_and_resumes_exactly(
        table in id_sets(),
        chunk in 1u64..9,
        parallel in 1usize..5,
        cut in any::<proptest::sample::Index>(),
    ) {
        let rt = runtime();
        for strategy in [Strategy::Offset, Strategy::IdRange] {
            let source = Arc::new(FakeSource::with_ids(table.clone()));
            let spec = spec(strategy, chunk, parallel);
            let chunks = rt.block_on(collect(source.clone(), spec.clone(), Cursor::start(strategy))).unwrap();
            prop_assert_eq!(ids(&chunks), table.clone());
            prop_assert!(chunks.iter().all(|c| !c.rows.is_empty() && c.rows.len() as u64 <= chunk));
            if strategy == Strategy::IdRange {
                prop_assert!(source.requests().iter().all(|q| q.offset.is_none()));
            }
            if chunks.is_empty() {
                continue;
            }
            let at = cut.index(chunks.len());
            let resumed = rt.block_on(collect(source.clone(), spec, chunks[at].cursor)).unwrap();
            let expected: Vec<i64> = chunks[at + 1..].iter().flat_map(|c| ids(std::slice::from_ref(c))).collect();
            prop_assert_eq!(ids(&resumed), expected);
        }
    }

    /// Pausing before any chunk (draining what is in flight, then resuming) changes neither the
    /// output nor, for the sequential strategies, the requests sent.
    #[test]
    fn pausing_anywhere_changes_neither_output_nor_requests(
        table in id_sets(),
        chunk in 1u64..9,
        parallel in 1usize..4,
        pauses in proptest::collection::vec(any::<bool>(), 0..40),
    ) {
        let rt = runtime();
        for strategy in SEQUENTIAL {
            let reference_source = Arc::new(FakeSource::with_ids(table.clone()));
            let spec = spec(strategy, chunk, parallel);
            let reference = rt
                .block_on(collect(reference_source.clone(), spec.clone(), Cursor::start(strategy)))
                .unwrap();
            let source = Arc::new(FakeSource::with_ids(table.clone()));
            let dyn_source: Arc<dyn RowSource> = source.clone();
            let chunks = rt.block_on(async {
                let mut t = Traversal::start(dyn_source, spec, Cursor::start(strategy)).await?;
                let mut chunks = Vec::new();
                let mut pauses = pauses.iter();
                loop {
                    if pauses.next() == Some(&true) {
                        while let Some(chunk) = t.next_in_flight().await? {
                            chunks.push(chunk);
                        }
                    }
                    let Some(chunk) = t.next_chunk().await? else { break };
                    chunks.push(chunk);
                }
                Ok::<_, Error>(chunks)
            }).unwrap();
            prop_assert_eq!(ids(&chunks), ids(&reference));
            // Parallel ID_RANGE may send its requests in another order; OFFSET is always sequential.
            if strategy == Strategy::Offset || parallel == 1 {
                prop_assert_eq!(&chunks, &reference);
                let pages: Vec<_> = source.requests().iter().map(page).collect();
                let reference_pages: Vec<_> = reference_source.requests().iter().map(page).collect();
                prop_assert_eq!(pages, reference_pages);
            }
        }
    }
}
