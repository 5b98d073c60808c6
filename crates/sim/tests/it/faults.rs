//! Each injected fault, at rate 1, is seen by a real HTTP client as the failure it stands for.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Portal, login, small};

fn select_body() -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":1,"method":"select","params":{"data":["id","name"],"from":"tv_channel","limit":50}})
}

#[tokio::test]
async fn fail_rate_gives_http_500_but_login_still_works() {
    let portal = Portal::start(small().fail_rate(1.0)).await;
    let (status, body) = portal.call(json!({"data":["id"],"from":"package"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], -32603);
    assert_eq!(body["error"]["message"], "internal error (injected)");
    assert!(login(&portal.http, portal.sim.url(), "admin", "admin").await.is_ok());
    let counted = portal.sim.stats();
    assert_eq!(
        (counted.select_calls, counted.injected_failures, counted.authorize_calls),
        (1, 1, 2)
    );
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    let portal = Portal::start(small().rate_limit(2)).await;
    let mut limited = None;
    for _ in 0..6 {
        let response = portal
            .http
            .post(format!("{}jsonsql/", portal.sim.url()))
            .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
            .json(&select_body())
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a burst beyond the limit is refused");
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32029);
    assert!(portal.sim.stats().rate_limited >= 1);
    // After a second the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(portal.call(json!({"data":["id"],"from":"package"})).await.0, StatusCode::OK);
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn timeout_rate_hangs_until_the_client_gives_up() {
    let portal = Portal::start(small().timeout_rate(1.0)).await;
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let started = Instant::now();
    let error = http
        .post(format!("{}jsonsql/", portal.sim.url()))
        .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
        .json(&select_body())
        .send()
        .await
        .expect_err("no answer in time");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(portal.sim.stats().injected_timeouts, 1);
    // A hanging request does not hold up shutdown.
    let stopping = Instant::now();
    portal.sim.shutdown().await;
    assert!(stopping.elapsed() < Duration::from_secs(3), "{:?}", stopping.elapsed());
}

#[tokio::test]
async fn reset_rate_cuts_the_body() {
    let portal = Portal::start(small().reset_rate(1.0)).await;
    for _ in 0..3 {
        let response = portal
            .http
            .post(format!("{}jsonsql/", portal.sim.url()))
            .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
            .json(&select_body())
            .send()
            .await
            .expect("the status and headers arrive");
        assert_eq!(response.status(), StatusCode::OK);
        let promised = response.content_length().expect("a Content-Length");
        // The body breaks off: the client reads part of it, then the connection closes under it.
        let error = response.bytes().await.expect_err("a truncated body is an error");
        assert!(error.is_body() || error.is_decode(), "{error:?}");
        assert!(promised > 20);
    }
    assert_eq!(portal.sim.stats().injected_resets, 3);
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_request() {
    let portal = Portal::start(small().latency(Duration::from_millis(250))).await;
    let started = Instant::now();
    let (status, _) = portal.call(json!({"data":["id"],"from":"package","limit":1})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn faults_replay_with_the_same_seed() {
    async fn outcomes(seed: u64) -> Vec<u16> {
        let portal = Portal::start(small().seed(seed).fail_rate(0.5)).await;
        let mut statuses = Vec::new();
        for _ in 0..16 {
            statuses.push(
                portal.call(json!({"data":["id"],"from":"package","limit":1})).await.0.as_u16(),
            );
        }
        portal.sim.shutdown().await;
        statuses
    }
    let a = outcomes(11).await;
    assert_eq!(a, outcomes(11).await);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
}
