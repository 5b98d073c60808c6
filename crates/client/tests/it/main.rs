//! The client against the simulator, over real loopback HTTP: operators, aggregates, sessions,
//! faults and retries, and what never leaks.

use std::collections::BTreeSet;
use std::time::Duration;

use iptvportal_client::{Client, ClientConfig, Error, RetryPolicy};
use iptvportal_query::{CompareOp, Expr, Operand, OrderBy, Q, Scalar, Select};
use iptvportal_sim::{Sim, SimConfig};
use serde_json::Value;

const PASSWORD: &str = "s3cr3t-Pa55word";

async fn start(config: SimConfig) -> Sim {
    Sim::start(config.credentials("admin", PASSWORD)).await.expect("simulator starts")
}

/// Retries quick enough for tests: 10 ms, 15 ms, … capped at 200 ms, no jitter.
fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(max_retries)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(200))
        .jitter(false)
}

fn config(sim: &Sim) -> ClientConfig {
    ClientConfig::new(sim.url()).unwrap().credentials("admin", PASSWORD).retry(fast_retry(3))
}

fn client(sim: &Sim) -> Client {
    Client::new(config(sim)).unwrap()
}

/// `(id, username, disabled, email, max_terminal)`.
type Subscriber = (i64, String, bool, Option<String>, i64);
type Pred = Box<dyn Fn(&Subscriber) -> bool>;

fn ids(rows: &[Vec<Value>]) -> BTreeSet<i64> {
    rows.iter().map(|r| r[0].as_i64().expect("integer id")).collect()
}

/// Every `subscriber` row as a [`Subscriber`] tuple.
async fn subscribers(client: &Client) -> Vec<Subscriber> {
    let select = Select::from("subscriber")
        .unwrap()
        .columns(["id", "username", "disabled", "email", "max_terminal"])
        .unwrap()
        .order_by(OrderBy::asc("id").unwrap());
    client
        .select(&select)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap(),
                r[1].as_str().unwrap().to_owned(),
                r[2].as_bool().unwrap(),
                r[3].as_str().map(str::to_owned),
                r[4].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn select_returns_arrays_in_data_order() {
    let sim = start(SimConfig::default().rows("terminal", 50).seed(7)).await;
    let client = client(&sim);
    let select = Select::from("terminal")
        .unwrap()
        .columns(["mac_addr", "id"])
        .unwrap()
        .order_by(OrderBy::parse("id DESC").unwrap())
        .limit(5)
        .offset(1);
    let rows = client.select(&select).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == 2 && r[0].is_string() && r[1].is_i64()));
    let got: Vec<i64> = rows.iter().map(|r| r[1].as_i64().unwrap()).collect();
    let mut sorted = got.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted, "descending order");
    let raw = client.select_value(&select).await.unwrap();
    assert_eq!(raw.as_array().map(Vec::len), Some(5));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_operator_and_lookup_filters_like_the_rows_say() {
    let sim = start(SimConfig::default().rows("subscriber", 300).seed(11)).await;
    let client = client(&sim);
    let all = subscribers(&client).await;
    assert_eq!(all.len(), 300);
    let mid = all[all.len() / 2].0;
    let quarter = all[all.len() / 4].0;
    let some_ids: Vec<i64> = all.iter().step_by(37).map(|s| s.0).collect();
    let name = all.iter().map(|s| &s.1).find(|n| n.chars().count() >= 3).unwrap().clone();
    let prefix: String = name.chars().take(2).collect();
    let middle: String = name.chars().skip(1).take(2).collect();
    let max_terminal = all[0].4;

    let cases: Vec<(&str, Q, Pred)> = vec![
        ("eq", Q::lookup("disabled", true).unwrap(), Box::new(|s| s.2)),
        ("eq explicit", Q::lookup("id__eq", mid).unwrap(), Box::new(move |s| s.0 == mid)),
        (
            "ne",
            Q::lookup("max_terminal__ne", max_terminal).unwrap(),
            Box::new(move |s| s.4 != max_terminal),
        ),
        ("gt", Q::lookup("id__gt", mid).unwrap(), Box::new(move |s| s.0 > mid)),
        ("gte", Q::lookup("id__gte", mid).unwrap(), Box::new(move |s| s.0 >= mid)),
        ("lt", Q::lookup("id__lt", mid).unwrap(), Box::new(move |s| s.0 < mid)),
        ("lte", Q::lookup("id__lte", mid).unwrap(), Box::new(move |s| s.0 <= mid)),
        ("in", Q::is_in("id", some_ids.clone()).unwrap(), {
            let ids = some_ids.clone();
            Box::new(move |s| ids.contains(&s.0))
        }),
        ("like", Q::lookup("username__like", format!("{prefix}%")).unwrap(), {
            let p = prefix.clone();
            Box::new(move |s| s.1.starts_with(&p))
        }),
        ("ilike", Q::lookup("username__ilike", format!("{}%", prefix.to_uppercase())).unwrap(), {
            let p = prefix.to_lowercase();
            Box::new(move |s| s.1.to_lowercase().starts_with(&p))
        }),
        ("contains", Q::lookup("username__contains", middle.clone()).unwrap(), {
            let m = middle.clone();
            Box::new(move |s| s.1.contains(&m))
        }),
        ("icontains", Q::lookup("username__icontains", middle.to_uppercase()).unwrap(), {
            let m = middle.to_lowercase();
            Box::new(move |s| s.1.to_lowercase().contains(&m))
        }),
        ("startswith", Q::lookup("username__startswith", prefix.clone()).unwrap(), {
            let p = prefix.clone();
            Box::new(move |s| s.1.starts_with(&p))
        }),
        (
            "endswith",
            Q::lookup("username__endswith", name.chars().skip(1).collect::<String>()).unwrap(),
            {
                let suffix: String = name.chars().skip(1).collect();
                Box::new(move |s| s.1.ends_with(&suffix))
            },
        ),
        ("is null", Q::isnull("email", true).unwrap(), Box::new(|s| s.3.is_none())),
        ("is not null", Q::isnull("email", false).unwrap(), Box::new(|s| s.3.is_some())),
        (
            "and",
            Q::lookup("id__gte", quarter).unwrap() & Q::lookup("id__lt", mid).unwrap(),
            Box::new(move |s| s.0 >= quarter && s.0 < mid),
        ),
        (
            "or",
            Q::lookup("id__lt", quarter).unwrap() | Q::lookup("disabled", true).unwrap(),
            Box::new(move |s| s.0 < quarter || s.2),
        ),
        ("not", !Q::lookup("disabled", true).unwrap(), Box::new(|s| !s.2)),
    ];
    for (what, q, pred) in cases {
        let select =
            Select::from("subscriber").unwrap().columns(["id"]).unwrap().filter(q.into_expr());
        let got = ids(&client.select(&select).await.unwrap_or_else(|e| panic!("{what}: {e}")));
        let expected: BTreeSet<i64> = all.iter().filter(|s| pred(s)).map(|s| s.0).collect();
        assert!(!expected.is_empty(), "{what}: the case should match something");
        assert_eq!(got, expected, "{what}");
    }

    // Hand-built trees reach the same operators without Q.
    let neq = Expr::Compare {
        op: CompareOp::Neq,
        left: Operand::column("id").unwrap(),
        right: Operand::Literal(Scalar::Int(mid)),
    };
    let select = Select::from("subscriber").unwrap().columns(["id"]).unwrap().filter(neq);
    assert_eq!(client.select(&select).await.unwrap().len(), all.len() - 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn count_and_min_max_agree_with_the_rows() {
    let sim = start(SimConfig::default().rows("terminal", 500).seed(3)).await;
    let client = client(&sim);
    let all = ids(&client
        .select(&Select::from("terminal").unwrap().columns(["id"]).unwrap())
        .await
        .unwrap());
    assert_eq!(client.count("terminal", None).await.unwrap(), all.len() as u64);
    let (first, last) = (*all.first().unwrap(), *all.last().unwrap());
    assert_eq!(client.min_max("terminal", "id", None).await.unwrap(), Some((first, last)));

    let mid = *all.iter().nth(all.len() / 2).unwrap();
    let upper = Q::lookup("id__gte", mid).unwrap().into_expr();
    let expected = all.iter().filter(|&&id| id >= mid).count() as u64;
    assert_eq!(client.count("terminal", Some(&upper)).await.unwrap(), expected);
    assert_eq!(client.min_max("terminal", "id", Some(&upper)).await.unwrap(), Some((mid, last)));

    let none = Q::lookup("id__lt", 0).unwrap().into_expr();
    assert_eq!(client.count("terminal", Some(&none)).await.unwrap(), 0);
    assert_eq!(client.min_max("terminal", "id", Some(&none)).await.unwrap(), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn select_i64s_reads_what_select_reads_and_refuses_other_rows() {
    let sim = start(SimConfig::default().rows("terminal", 500).seed(3)).await;
    let client = client(&sim);
    let by_id = |limit| {
        Select::from("terminal")
            .unwrap()
            .columns(["id"])
            .unwrap()
            .order_by(OrderBy::asc("id").unwrap())
            .limit(limit)
    };
    let all: Vec<i64> = ids(&client.select(&by_id(10_000)).await.unwrap()).into_iter().collect();
    assert_eq!(all.len(), 500);
    assert_eq!(client.select_i64s(&by_id(10_000)).await.unwrap(), all);
    assert_eq!(client.select_i64s(&by_id(7)).await.unwrap(), all[..7]);

    // Two values a row, or one that is not an integer: an error naming what was expected.
    let two = Select::from("terminal").unwrap().columns(["id", "mac_addr"]).unwrap().limit(2);
    let err = client.select_i64s(&two).await.unwrap_err();
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("expected rows of one integer"), "{err}");
    let text = Select::from("terminal").unwrap().columns(["mac_addr"]).unwrap().limit(2);
    let err = client.select_i64s(&text).await.unwrap_err();
    assert!(err.to_string().contains("expected rows of one integer"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_fail_fast_with_a_typed_error() {
    let sim = start(SimConfig::default().rows("package", 5)).await;
    let client = Client::new(config(&sim).credentials("admin", "wrong-password")).unwrap();
    let err = client.count("package", None).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(sim.stats().authorize_calls, 1, "no retry of a refused login");
    assert_eq!(sim.stats().select_calls, 0);
    let err = client.authorize().await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    // Requests sent together (a count beside an id scan) share the refusal: one login in all.
    let (a, b) = tokio::join!(client.count("package", None), client.count("package", None));
    assert!(matches!(a, Err(Error::Auth { .. })) && matches!(b, Err(Error::Auth { .. })));
    let fresh = Client::new(config(&sim).credentials("admin", "wrong-password")).unwrap();
    let (a, b) = tokio::join!(fresh.count("package", None), fresh.count("package", None));
    assert!(matches!(a, Err(Error::Auth { .. })) && matches!(b, Err(Error::Auth { .. })));
    assert_eq!(sim.stats().authorize_calls, 2, "one refused login per client");
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_reports_the_user_and_the_session_is_shared() {
    let sim = start(SimConfig::default().rows("package", 5)).await;
    let client = client(&sim);
    let info = client.authorize().await.unwrap();
    assert_eq!(client.session_info().await, Some(info));
    let other = client.clone();
    let strict = client.with_retry(RetryPolicy::none());
    assert_eq!(strict.retry_policy().max_retries, 0);
    for c in [&client, &other, &strict] {
        assert_eq!(c.count("package", None).await.unwrap(), 5);
    }
    assert_eq!(sim.stats().authorize_calls, 1, "clones and views share one session");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_renewed_once_for_all_concurrent_calls() {
    let sim = start(SimConfig::default().rows("terminal", 100).seed(5)).await;
    let client = client(&sim);
    assert_eq!(client.count("terminal", None).await.unwrap(), 100);
    assert_eq!(sim.stats().authorize_calls, 1);

    sim.expire_sessions();
    assert_eq!(client.count("terminal", None).await.unwrap(), 100);
    assert_eq!(sim.stats().authorize_calls, 2, "one transparent login");

    sim.expire_sessions();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.count("terminal", None).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 100);
    }
    assert_eq!(
        sim.stats().authorize_calls,
        3,
        "eight calls meeting one expired session log in once"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_past_their_ttl_are_renewed() {
    let sim =
        start(SimConfig::default().rows("package", 4).session_ttl(Duration::from_millis(300)))
            .await;
    let client = client(&sim);
    assert_eq!(client.count("package", None).await.unwrap(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.count("package", None).await.unwrap(), 4);
    assert_eq!(sim.stats().authorize_calls, 2);
    sim.shutdown().await;
}

/// Runs `n` sequential page selects and checks every page against a fault-free reference.
async fn pages_survive(client: &Client, reference: &[Vec<Vec<Value>>]) {
    for (i, expected) in reference.iter().enumerate() {
        let got = client.select(&page(i)).await.unwrap_or_else(|e| panic!("page {i}: {e}"));
        assert_eq!(&got, expected, "page {i}");
    }
}

fn page(i: usize) -> Select {
    Select::from("terminal")
        .unwrap()
        .order_by(OrderBy::asc("id").unwrap())
        .limit(10)
        .offset(i as u64 * 10)
}

/// The pages of a fault-free simulator with the same data.
async fn reference_pages(seed: u64, n: usize) -> Vec<Vec<Vec<Value>>> {
    let sim = start(SimConfig::default().rows("terminal", 200).seed(seed)).await;
    let client = client(&sim);
    let mut pages = Vec::new();
    for i in 0..n {
        pages.push(client.select(&page(i)).await.unwrap());
    }
    sim.shutdown().await;
    pages
}

#[tokio::test]
async fn injected_failures_are_retried() {
    let reference = reference_pages(21, 15).await;
    let sim = start(SimConfig::default().rows("terminal", 200).seed(21).fail_rate(0.3)).await;
    let client = Client::new(config(&sim).retry(fast_retry(12))).unwrap();
    pages_survive(&client, &reference).await;
    assert!(sim.stats().injected_failures > 0, "{:?}", sim.stats());
    sim.shutdown().await;
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let reference = reference_pages(22, 15).await;
    let sim = start(SimConfig::default().rows("terminal", 200).seed(22).reset_rate(0.3)).await;
    let client = Client::new(config(&sim).retry(fast_retry(12))).unwrap();
    pages_survive(&client, &reference).await;
    assert!(sim.stats().injected_resets > 0, "{:?}", sim.stats());
    sim.shutdown().await;
}

#[tokio::test]
async fn hanging_requests_time_out_and_are_retried() {
    let reference = reference_pages(23, 10).await;
    let sim = start(SimConfig::default().rows("terminal", 200).seed(23).timeout_rate(0.3)).await;
    let client =
        Client::new(config(&sim).timeout(Duration::from_millis(300)).retry(fast_retry(12)))
            .unwrap();
    pages_survive(&client, &reference).await;
    assert!(sim.stats().injected_timeouts > 0, "{:?}", sim.stats());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_budget_spent_on_timeouts_ends_in_a_timeout_error() {
    let sim = start(SimConfig::default().rows("package", 3).timeout_rate(1.0)).await;
    let client =
        Client::new(config(&sim).timeout(Duration::from_millis(200)).retry(fast_retry(1))).unwrap();
    let err = client.count("package", None).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(sim.stats().injected_timeouts, 2, "the first try and one retry");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_are_honoured_through_retry_after() {
    let reference = reference_pages(24, 10).await;
    let sim = start(SimConfig::default().rows("terminal", 200).seed(24).rate_limit(4)).await;
    // One retry with a 1 ms computed delay: only waiting the server's `Retry-After: 1` lets the
    // token bucket refill in time.
    let policy =
        fast_retry(1).base_delay(Duration::from_millis(1)).max_delay(Duration::from_secs(2));
    let client = Client::new(config(&sim).retry(policy)).unwrap();
    pages_survive(&client, &reference).await;
    assert!(sim.stats().rate_limited > 0, "{:?}", sim.stats());
    sim.shutdown().await;
}

#[tokio::test]
async fn query_errors_fail_fast_with_the_servers_message() {
    let sim = start(SimConfig::default().rows("package", 3)).await;
    let client = Client::new(config(&sim).retry(fast_retry(5))).unwrap();
    client.authorize().await.unwrap();

    let before = sim.stats().select_calls;
    let err = client.select(&Select::from("no_such_table").unwrap()).await.unwrap_err();
    let Error::Server { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("no_such_table"), "{message}");
    assert!(!err.is_retryable());
    assert_eq!(sim.stats().select_calls - before, 1, "exactly one request");

    let before = sim.stats().select_calls;
    let select = Select::from("package").unwrap().columns(["id", "no_such_column"]).unwrap();
    let err = client.select(&select).await.unwrap_err();
    let Error::Server { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("no_such_column"), "{message}");
    assert_eq!(sim.stats().select_calls - before, 1, "exactly one request");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_portal_is_a_connect_error() {
    let config = ClientConfig::new("http://127.0.0.1:9/")
        .unwrap()
        .credentials("admin", PASSWORD)
        .retry(fast_retry(1));
    let err = Client::new(config).unwrap().authorize().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.to_string(), "cannot connect to http://127.0.0.1:9/api/: connection refused");
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_typed_tls_error_not_retried() {
    let sim = start(SimConfig::default().rows("terminal", 5)).await;
    let url = sim.url().replace("http://", "https://");
    let config =
        ClientConfig::new(&url).unwrap().credentials("admin", PASSWORD).retry(fast_retry(3));
    let err = Client::new(config).unwrap().authorize().await.unwrap_err();
    assert!(matches!(err, Error::NotTls { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!("{url} does not speak TLS on this port (is it a plain http portal?)")
    );
}

/// Whether `s` holds 32 hex digits in a row: the shape of a session id.
fn has_session_like_token(s: &str) -> bool {
    s.as_bytes().windows(32).any(|w| w.iter().all(u8::is_ascii_hexdigit))
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output_or_errors() {
    let sim = start(SimConfig::default().rows("package", 3).fail_rate(1.0)).await;
    let config = config(&sim).retry(fast_retry(1));
    let client = Client::new(config.clone()).unwrap();
    let info = client.authorize().await.unwrap();
    let failing = client.count("package", None).await.unwrap_err();
    let unknown = client
        .with_retry(RetryPolicy::none())
        .select(&Select::from("nope").unwrap())
        .await
        .unwrap_err();
    let refused = Client::new(config.clone().credentials("admin", "wrong-Pa55word"))
        .unwrap()
        .authorize()
        .await
        .unwrap_err();
    let unreachable = Client::new(
        ClientConfig::new("http://127.0.0.1:9/").unwrap().credentials("admin", PASSWORD),
    )
    .unwrap()
    .with_retry(RetryPolicy::none())
    .authorize()
    .await
    .unwrap_err();
    let texts = [
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{info:?}"),
        format!("{failing:?} {failing}"),
        format!("{unknown:?} {unknown}"),
        format!("{refused:?} {refused}"),
        format!("{unreachable:?} {unreachable}"),
    ];
    for text in &texts {
        assert!(!text.contains(PASSWORD) && !text.contains("wrong-Pa55word"), "password in {text}");
        assert!(!has_session_like_token(text), "session id in {text}");
    }
    sim.shutdown().await;
}
