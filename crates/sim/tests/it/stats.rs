//! `GET /stats`: the counters of `Sim::stats` over HTTP, for a simulator run as a process; reading
//! them needs no session, meets no fault and changes none of them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Portal, login, small};

async fn get_stats(portal: &Portal) -> Value {
    let url = format!("http://{}/stats", portal.sim.local_addr());
    let response = portal.http.get(&url).send().await.expect("GET /stats");
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers().get("content-type").cloned();
    assert_eq!(kind.as_ref().and_then(|v| v.to_str().ok()), Some("application/json"));
    response.json().await.expect("a JSON body")
}

fn as_json(stats: iptvportal_sim::SimStats) -> Value {
    json!({
        "authorize_calls": stats.authorize_calls,
        "select_calls": stats.select_calls,
        "injected_failures": stats.injected_failures,
        "injected_timeouts": stats.injected_timeouts,
        "injected_resets": stats.injected_resets,
        "rate_limited": stats.rate_limited,
    })
}

#[tokio::test]
async fn stats_answers_the_counters_as_json_and_counts_nothing_itself() {
    let portal = Portal::start(small()).await;
    assert_eq!(
        get_stats(&portal).await,
        json!({"authorize_calls": 1, "select_calls": 0, "injected_failures": 0,
               "injected_timeouts": 0, "injected_resets": 0, "rate_limited": 0})
    );
    for _ in 0..3 {
        portal.select(json!({"data":["id"],"from":"tv_channel","limit":5})).await;
    }
    let seen = get_stats(&portal).await;
    assert_eq!(seen["select_calls"], 3, "{seen}");
    assert_eq!(seen, as_json(portal.sim.stats()), "the same numbers as Sim::stats");
    assert_eq!(get_stats(&portal).await, seen, "reading the stats is not counted");
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn stats_needs_no_session_and_meets_no_fault() {
    let portal = Portal::start_logged_out(small().fail_rate(1.0).rate_limit(1)).await;
    let session = login(&portal.http, portal.sim.url(), "admin", "admin").await.unwrap();
    let (status, _) = crate::support::post(
        &portal.http,
        &format!("{}jsonsql/", portal.sim.url()),
        Some(&session),
        &json!({"jsonrpc":"2.0","id":1,"method":"select","params":{"data":["id"],"from":"package"}}),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "the injected fault");
    // Many reads in a row: neither the rate limit (1/s) nor the fault rate (1.0) applies.
    for _ in 0..5 {
        let seen = get_stats(&portal).await;
        assert_eq!(
            (seen["select_calls"].as_u64(), seen["injected_failures"].as_u64()),
            (Some(1), Some(1)),
            "{seen}"
        );
        assert_eq!(seen["authorize_calls"], 1, "{seen}");
    }
    let url = format!("http://{}/stats", portal.sim.local_addr());
    let posted = portal.http.post(&url).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED, "read-only");
    portal.sim.shutdown().await;
}
