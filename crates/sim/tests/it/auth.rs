//! Logging in, session checks and expiry, and the JSON-RPC envelope errors.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Portal, login, post, small};

#[tokio::test]
async fn login_result_has_the_real_portals_shape() {
    let portal = Portal::start(small()).await;
    let body = json!({"jsonrpc":"2.0","id":"abc","method":"authorize_user","params":{"username":"admin","password":"admin"}});
    let (status, reply) =
        post(&portal.http, &format!("{}jsonrpc/", portal.sim.url()), None, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["jsonrpc"], "2.0");
    assert_eq!(reply["id"], "abc");
    let result = &reply["result"];
    let id = result["session_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{id}");
    assert_eq!(result["role"], "admin");
    assert_eq!(result["language_iso639_1"], "en");
    assert_ne!(id, portal.session, "every login gets a fresh session");
    assert_eq!(portal.sim.stats().authorize_calls, 2);
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_and_bad_sessions_are_refused() {
    let portal = Portal::start_logged_out(small().credentials("operator", "s3cret")).await;
    let url = portal.sim.url().to_owned();
    let http = &portal.http;
    let error = login(http, &url, "operator", "wrong").await.unwrap_err();
    assert_eq!(error["code"], -32002);
    assert_eq!(error["message"], "invalid username or password");
    assert_eq!(login(http, &url, "admin", "admin").await.unwrap_err()["code"], -32002);
    let session = login(http, &url, "operator", "s3cret").await.unwrap();

    let select = json!({"jsonrpc":"2.0","id":2,"method":"select","params":{"data":["id"],"from":"tv_channel","limit":1}});
    let endpoint = format!("{url}jsonsql/");
    for bad in [None, Some("0123456789abcdef0123456789abcdef"), Some("")] {
        let (status, body) = post(http, &endpoint, bad, &select).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(body["error"]["code"], -32001);
        assert_eq!(body["error"]["message"], "invalid or expired session");
        assert_eq!(body["id"], 2);
    }
    let (status, body) = post(http, &endpoint, Some(&session), &select).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn expire_sessions_makes_the_next_select_unauthorized() {
    let portal = Portal::start(small()).await;
    let params = json!({"data":["id"],"from":"package","limit":1});
    assert_eq!(portal.call(params.clone()).await.0, StatusCode::OK);
    portal.sim.expire_sessions();
    let (status, body) = portal.call(params.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], -32001);
    // A new login works again.
    let fresh = login(&portal.http, portal.sim.url(), "admin", "admin").await.unwrap();
    let body = json!({"jsonrpc":"2.0","id":3,"method":"select","params":params});
    let (status, _) =
        post(&portal.http, &format!("{}jsonsql", portal.sim.url()), Some(&fresh), &body).await;
    assert_eq!(status, StatusCode::OK);
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn sessions_expire_after_their_ttl() {
    let portal = Portal::start(small().session_ttl(Duration::from_millis(400))).await;
    let params = json!({"data":["id"],"from":"package","limit":1});
    assert_eq!(portal.call(params.clone()).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = portal.call(params).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], -32001);
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn envelope_errors() {
    let portal = Portal::start(small()).await;
    let base = portal.sim.url().to_owned();
    let http = &portal.http;
    // Malformed JSON: HTTP 400, -32700.
    let response = http
        .post(format!("{base}jsonsql/"))
        .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
        .body("{\"jsonrpc\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("parse error: "));
    assert!(body["id"].is_null());
    // Unknown methods on either endpoint: -32601.
    let call = json!({"jsonrpc":"2.0","id":4,"method":"delete","params":{}});
    let (status, body) = post(http, &format!("{base}jsonsql/"), Some(&portal.session), &call).await;
    assert_eq!((status, body["error"]["code"].clone()), (StatusCode::OK, json!(-32601)));
    let (_, body) = post(http, &format!("{base}jsonrpc"), None, &call).await;
    assert_eq!(body["error"]["code"], -32601);
    // Missing params for authorize_user: -32602.
    let call = json!({"jsonrpc":"2.0","id":5,"method":"authorize_user"});
    let (_, body) = post(http, &format!("{base}jsonrpc/"), None, &call).await;
    assert_eq!(body["error"]["code"], -32602);
    // Bodies over 1 MiB: 413.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"select\",\"params\":\"{}\"}}",
        "x".repeat(1_100_000)
    );
    let response = http
        .post(format!("{base}jsonsql/"))
        .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    portal.sim.shutdown().await;
}
