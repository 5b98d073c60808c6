//! The two OFFSET models over HTTP: a native and a materializing simulator serving one database
//! file answer every select with the same bytes.

use std::time::Duration;

use iptvportal_sim::{OffsetModel, Sim};
use serde_json::{Value, json};

use crate::support::{login, small};

/// A simulator and a session on it.
struct Server {
    sim: Sim,
    session: String,
}

impl Server {
    async fn start(db: &std::path::Path, model: OffsetModel, http: &reqwest::Client) -> Server {
        let sim = Sim::start(small().db_path(db).offset(model)).await.expect("simulator starts");
        let session = login(http, sim.url(), "admin", "admin").await.expect("logs in");
        Server { sim, session }
    }

    /// The status and the raw body of a select.
    async fn raw(&self, http: &reqwest::Client, params: &Value) -> (u16, Vec<u8>) {
        let body = json!({"jsonrpc":"2.0","id":3,"method":"select","params":params});
        let response = http
            .post(format!("{}jsonsql/", self.sim.url()))
            .header("Iptvportal-Authorization", format!("sessionid={}", self.session))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("a body").to_vec())
    }
}

#[tokio::test]
async fn native_and_materialize_answer_alike() {
    let dir = std::env::temp_dir().join(format!("iptvportal-sim-offset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("shared.db");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let native = Server::start(&db, OffsetModel::Native, &http).await;
    // The second start finds the file generated with the same seed and sizes and reuses it.
    let materialize = Server::start(&db, OffsetModel::default(), &http).await;

    let page = |offset: u64| json!({"data":["*"],"from":"terminal","order_by":"id","limit":500,"offset":offset});
    let mut selects: Vec<Value> =
        [0, 1, 499, 500, 1000, 1499, 1500, 1501, 10_000].into_iter().map(page).collect();
    selects.extend([
        json!({"data":["id","username","disabled","billing"],"from":"subscriber","order_by":"billing DESC","offset":590}),
        json!({"data":["id"],"from":"terminal","where":{"is":["inet_addr",null]},"order_by":"subscriber_id","limit":7,"offset":30}),
        json!({"data":["id"],"from":"terminal","limit":0,"offset":30}),
        json!({"data":[{"function":"count","args":"*"}],"from":"terminal","offset":1}),
        json!({"data":["subscriber_id",{"function":"count","args":"*","as":"n"}],"from":"terminal","group_by":"subscriber_id","order_by":"n DESC","limit":5,"offset":3}),
        json!({"data":["id"],"from":"terminal","limit":9_223_372_036_854_775_807_u64,"offset":1495}),
        // Refused alike.
        json!({"data":["id"],"from":"terminal","limit":1,"offset":9_223_372_036_854_775_808_u64}),
        json!({"data":["nope"],"from":"terminal","offset":3}),
    ]);
    for select in &selects {
        let a = native.raw(&http, select).await;
        let b = materialize.raw(&http, select).await;
        assert_eq!(a.0, b.0, "{select}");
        assert_eq!(String::from_utf8_lossy(&a.1), String::from_utf8_lossy(&b.1), "{select}");
    }
    // The pages really are pages: the test would pass vacuously on empty answers.
    let (_, first) = materialize.raw(&http, &page(1000)).await;
    let first: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(first["result"].as_array().map(Vec::len), Some(500), "{first}");

    native.sim.shutdown().await;
    materialize.sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
