//! SQL injection through JSONSQL is refused, or harmless, and the server keeps serving.

use serde_json::json;

use crate::support::{Portal, small};

#[tokio::test]
async fn hostile_identifiers_are_refused_and_hostile_values_are_literals() {
    let portal = Portal::start(small()).await;
    let count = json!({"data":[{"function":"count","args":["*"]}],"from":"terminal"});
    let before = portal.select(count.clone()).await;

    for params in [
        json!({"data":["id; DROP TABLE terminal"],"from":"terminal"}),
        json!({"data":["\"id\""],"from":"terminal"}),
        json!({"data":["id--"],"from":"terminal"}),
        json!({"data":["id"],"from":"terminal; --"}),
        json!({"data":["id"],"from":"sqlite_master"}),
        json!({"data":["value"],"from":"_sim_meta"}),
        json!({"data":["id"],"from":{"table":"terminal","as":"t; DROP TABLE terminal"}}),
        json!({"data":[{"terminal; DROP TABLE terminal; --":"id"}],"from":"terminal"}),
        json!({"data":[{"function":"count","args":["*"],"as":"n\"; DROP TABLE terminal; --"}],"from":"terminal"}),
        json!({"data":[{"function":"load_extension","args":["x"]}],"from":"terminal"}),
        json!({"data":["id"],"from":"terminal","where":{"eq; DROP TABLE terminal":["id",1]}}),
        json!({"data":["id"],"from":"terminal","where":{"id":1}}),
        json!({"data":["id"],"from":"terminal","where":{"eq":["id) OR (1=1",1]}}),
        json!({"data":["id"],"from":"terminal","order_by":"id; DROP TABLE terminal"}),
        json!({"data":["id"],"from":"terminal","order_by":"id DESC, (SELECT 1)"}),
        json!({"data":["id"],"from":"terminal","group_by":"id UNION SELECT 1"}),
        json!({"data":["id"],"from":"terminal","limit":"1; DROP TABLE terminal"}),
        json!({"data":["id"],"from":"terminal","offset":"0 UNION SELECT password FROM subscriber"}),
    ] {
        let (status, error) = portal.error(params.clone()).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{params}");
        assert_eq!(error["code"], -32602, "{params} -> {error}");
    }

    for value in
        ["'; DROP TABLE terminal; --", "\" OR 1=1 --", "x' OR '1'='1", "1) OR (1=1", "%' OR '1'='1"]
    {
        for op in ["eq", "like", "ilike", "gte"] {
            let params = json!({"data":["id"],"from":"terminal","where":{op:["mac_addr",value]}});
            let result = portal.select(params.clone()).await;
            let expect_none = op != "gte";
            if expect_none {
                assert_eq!(result, json!([]), "{params}");
            }
        }
        let params =
            json!({"data":["id"],"from":"terminal","where":{"in":["mac_addr",value,"also '"]}});
        assert_eq!(portal.select(params).await, json!([]));
    }
    assert_eq!(portal.select(count).await, before, "the table is intact");
    let tables: i64 = portal
        .db()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'terminal'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
    portal.sim.shutdown().await;
}
