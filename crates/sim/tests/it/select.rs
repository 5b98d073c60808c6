//! Selects over HTTP return exactly what hand-written SQL returns from the same file.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Portal, column_i64, small};

/// Every `where` operator and form, each beside the SQL it must mean.
#[tokio::test]
async fn every_where_operator_matches_hand_written_sql() {
    let portal = Portal::start(small()).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("subscriber", json!({"eq":["max_terminal",3]}), "max_terminal = 3"),
        ("subscriber", json!({"neq":["type","individual"]}), "type <> 'individual'"),
        ("subscriber", json!({"gt":["billing",1000.5]}), "billing > 1000.5"),
        ("subscriber", json!({"gte":["billing",0]}), "billing >= 0"),
        ("subscriber", json!({"lt":["billing",-10]}), "billing < -10"),
        ("subscriber", json!({"lte":["max_terminal",2]}), "max_terminal <= 2"),
        ("subscriber", json!({"is":["email",null]}), "email IS NULL"),
        ("subscriber", json!({"is_not":["email",null]}), "email IS NOT NULL"),
        ("subscriber", json!({"is":["disabled",true]}), "disabled = 1"),
        ("subscriber", json!({"is_not":["business",true]}), "business = 0"),
        ("subscriber", json!({"eq":["disabled",false]}), "disabled = 0"),
        ("subscriber", json!({"eq":["surname","Иванов"]}), "surname = 'Иванов'"),
        ("subscriber", json!({"eq":["surname","O'Brien"]}), "surname = 'O''Brien'"),
        ("subscriber", json!({"in":["max_terminal",1,2]}), "max_terminal IN (1, 2)"),
        ("subscriber", json!({"in":["type","corporate"]}), "type IN ('corporate')"),
        (
            "terminal",
            json!({"in":["subscriber_id",{"data":["id"],"from":"subscriber","where":{"eq":["business",true]}}]}),
            "subscriber_id IN (SELECT id FROM subscriber WHERE business = 1)",
        ),
        ("subscriber", json!({"like":["username","smith%"]}), "username GLOB 'smith*'"),
        ("subscriber", json!({"like":["surname","%ов"]}), "surname GLOB '*ов'"),
        ("subscriber", json!({"like":["phone","+7 9_1 %"]}), "phone GLOB '+7 9?1 *'"),
        ("tv_program", json!({"like":["title","%50\\%%"]}), "instr(title, '50%') > 0"),
        ("tv_program", json!({"like":["title","%a\\_1%"]}), "instr(title, 'a_1') > 0"),
        ("subscriber", json!({"ilike":["username","SMITH%"]}), "username GLOB 'smith*'"),
        ("subscriber", json!({"ilike":["surname","ИВАНОВ"]}), "surname = 'Иванов'"),
        ("subscriber", json!({"ilike":["surname","фёдоров"]}), "surname = 'Фёдоров'"),
        ("subscriber", json!({"ilike":["surname","MÜLLER"]}), "surname = 'Müller'"),
        (
            "terminal",
            json!({"gte":["registered","2022-01-01 00:00:00"]}),
            "registered >= '2022-01-01 00:00:00'",
        ),
        (
            "terminal",
            json!({"gt":["last_seen",{"terminal":"registered"}]}),
            "last_seen > registered",
        ),
        (
            "subscriber",
            json!({"and":[{"gte":["billing",0]},{"or":[{"eq":["type","corporate"]},{"not":[{"eq":["max_terminal",1]}]}]}]}),
            "billing >= 0 AND (type = 'corporate' OR NOT max_terminal = 1)",
        ),
        ("subscriber", json!({"not":{"is":["phone",null]}}), "phone IS NOT NULL"),
        (
            "subscriber",
            json!({"or":[{"eq":["id",1]},{"eq":["id",2]},{"eq":["id",3]}]}),
            "id IN (1, 2, 3)",
        ),
        (
            "subscriber",
            json!({"eq":[{"function":"lower","args":"type"},"corporate"]}),
            "type = 'corporate'",
        ),
    ];
    for (table, where_, sql) in cases {
        let got = column_i64(
            &portal
                .select(json!({"data":["id"],"from":table,"where":where_.clone(),"order_by":"id"}))
                .await,
        );
        let want = portal.ids(&format!("SELECT id FROM {table} WHERE {sql} ORDER BY id"));
        assert_eq!(got, want, "{where_} vs {sql}");
        assert!(!want.is_empty(), "{sql} should match some rows for the test to mean anything");
    }
    // LIKE is case-sensitive; ilike is not, also beyond ASCII.
    assert_eq!(
        portal
            .select(
                json!({"data":["id"],"from":"subscriber","where":{"like":["username","SMITH%"]}})
            )
            .await,
        json!([])
    );
    assert_eq!(
        portal
            .select(
                json!({"data":["id"],"from":"subscriber","where":{"like":["surname","иванов"]}})
            )
            .await,
        json!([])
    );
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn star_order_limit_offset_and_types() {
    let portal = Portal::start(small()).await;
    let rows =
        portal.select(json!({"data":"*","from":"subscriber","order_by":"id DESC","limit":3})).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0].as_array().unwrap().len(),
        iptvportal_catalog::table("subscriber").unwrap().columns.len()
    );
    let want = portal.ids("SELECT id FROM subscriber ORDER BY id DESC LIMIT 3");
    assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), want);
    // Typed by the catalog: booleans as booleans, floats as numbers, timestamps as strings.
    assert!(rows[0][3].is_boolean() && rows[0][13].is_boolean(), "{}", rows[0]);
    assert!(rows[0][11].is_number(), "{}", rows[0]);
    assert_eq!(rows[0][15].as_str().unwrap().len(), 19);

    let page = column_i64(
        &portal
            .select(json!({"data":["id"],"from":"terminal","order_by":"id","limit":10,"offset":20}))
            .await,
    );
    assert_eq!(page, portal.ids("SELECT id FROM terminal ORDER BY id LIMIT 10 OFFSET 20"));
    let tail = column_i64(
        &portal
            .select(json!({"data":["id"],"from":"terminal","order_by":"id","offset":1490}))
            .await,
    );
    assert_eq!(tail, portal.ids("SELECT id FROM terminal ORDER BY id LIMIT -1 OFFSET 1490"));
    assert_eq!(tail.len(), 10);
    let two_keys = portal.select(json!({"data":["max_terminal","id"],"from":"subscriber","order_by":["max_terminal DESC","id ASC"],"limit":5})).await;
    let want = portal.ids("SELECT id FROM subscriber ORDER BY max_terminal DESC, id ASC LIMIT 5");
    assert_eq!(
        two_keys.as_array().unwrap().iter().map(|r| r[1].as_i64().unwrap()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(
        portal.select(json!({"data":["id"],"from":"terminal","where":{"lt":["id",0]}})).await,
        json!([])
    );
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn aggregates_joins_distinct_and_group_by() {
    let portal = Portal::start(small()).await;
    let db = portal.db();
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };

    assert_eq!(
        portal.select(json!({"data":[{"function":"count","args":["*"]}],"from":"terminal"})).await,
        json!([[1500]])
    );
    let mm = portal.select(json!({"data":[{"function":"min","args":"id"},{"function":"max","args":["id"]}],"from":"terminal"})).await;
    assert_eq!(
        mm,
        json!([[one("SELECT min(id) FROM terminal"), one("SELECT max(id) FROM terminal")]])
    );
    let distinct_count = portal
        .select(json!({"data":[{"function":"count","args":{"function":"distinct","args":"inet_addr"},"as":"n"}],"from":"terminal"}))
        .await;
    assert_eq!(distinct_count, json!([[one("SELECT count(DISTINCT inet_addr) FROM terminal")]]));
    let filtered = portal
        .select(json!({"data":[{"function":"count","args":["*"]}],"from":"terminal","where":{"is":["subscriber_id",null]}}))
        .await;
    assert_eq!(
        filtered,
        json!([[one("SELECT count(*) FROM terminal WHERE subscriber_id IS NULL")]])
    );

    // Left join with aliases and qualified columns.
    let joined = portal
        .select(json!({
            "data":[{"t":"id"},{"s":"username"},{"s":"disabled"}],
            "from":[{"table":"terminal","as":"t"},{"join":"subscriber","join_type":"left","as":"s","on":{"eq":[{"t":"subscriber_id"},{"s":"id"}]}}],
            "order_by":{"t":"id"},
            "limit":200
        }))
        .await;
    let mut stmt = db
        .prepare("SELECT t.id, s.username, s.disabled FROM terminal t LEFT JOIN subscriber s ON t.subscriber_id = s.id ORDER BY t.id LIMIT 200")
        .unwrap();
    let want: Vec<Value> = stmt
        .query_map([], |r| {
            let disabled: Option<i64> = r.get(2)?;
            Ok(json!([
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                disabled.map(|d| d != 0)
            ]))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(joined, Value::Array(want));
    assert!(
        joined.as_array().unwrap().iter().any(|r| r[1].is_null()),
        "a terminal without a subscriber"
    );

    // Inner join (the default join type) drops terminals without a subscriber.
    let inner = portal
        .select(json!({
            "data":[{"function":"count","args":["*"]}],
            "from":["terminal",{"join":"subscriber","on":{"eq":[{"terminal":"subscriber_id"},{"subscriber":"id"}]}}],
            "where":{"eq":[{"subscriber":"business"},true]}
        }))
        .await;
    assert_eq!(
        inner,
        json!([[one(
            "SELECT count(*) FROM terminal JOIN subscriber ON terminal.subscriber_id = subscriber.id WHERE subscriber.business = 1"
        )]])
    );

    let distinct = portal.select(json!({"distinct":true,"data":["max_terminal"],"from":"subscriber","order_by":"max_terminal"})).await;
    assert_eq!(distinct, json!([[1], [2], [3], [4], [5]]));
    let distinct_fn = portal.select(json!({"data":[{"function":"distinct","args":"type"}],"from":"subscriber","order_by":"type"})).await;
    assert_eq!(distinct_fn, json!([["corporate"], ["individual"]]));

    let grouped = portal
        .select(json!({"data":["type",{"function":"count","args":["*"],"as":"n"}],"from":"subscriber","group_by":"type","order_by":"n DESC"}))
        .await;
    let mut stmt = db
        .prepare("SELECT type, count(*) AS n FROM subscriber GROUP BY type ORDER BY n DESC")
        .unwrap();
    let want: Vec<Value> = stmt
        .query_map([], |r| Ok(json!([r.get::<_, String>(0)?, r.get::<_, i64>(1)?])))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(grouped, Value::Array(want));

    // Unicode case functions, and a literal argument after the first.
    let upper = portal
        .select(json!({"data":[{"function":"upper","args":"surname"},{"function":"coalesce","args":["email","нет"]}],"from":"subscriber","where":{"eq":["surname","Фёдоров"]},"limit":1}))
        .await;
    assert_eq!(upper[0][0], "ФЁДОРОВ");
    assert!(upper[0][1].is_string());
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn invalid_selects_name_the_problem() {
    let portal = Portal::start(small()).await;
    for (params, needle) in [
        (json!({"data":["id"],"from":"nope"}), "unknown table \"nope\""),
        (json!({"data":["foo"],"from":"terminal"}), "unknown column \"foo\" in table \"terminal\""),
        (
            json!({"data":["id"],"from":"terminal","where":{"eq":["foo",1]}}),
            "unknown column \"foo\" in table \"terminal\"",
        ),
        (json!({"data":["id"],"from":"terminal","order_by":"foo DESC"}), "unknown column \"foo\""),
        (json!({"data":[{"x":"id"}],"from":"terminal"}), "unknown table or alias \"x\""),
        (
            json!({"data":["id"],"from":"terminal","where":{"between":["id",1,2]}}),
            "unknown operator \"between\"",
        ),
        (
            json!({"data":[{"function":"random","args":[]}],"from":"terminal"}),
            "unknown function \"random\"",
        ),
        (json!({"data":["id"],"from":"terminal","limit":-1}), "limit"),
        (json!({"from":"terminal"}), "data"),
        (json!({"data":["id"],"from":"terminal","where":{"is":["id",5]}}), "null, true or false"),
        (json!([1, 2]), "params must be an object"),
    ] {
        let (status, error) = portal.error(params.clone()).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{params}");
        assert_eq!(error["code"], -32602, "{params} -> {error}");
        assert!(error["message"].as_str().unwrap().contains(needle), "{params} -> {error}");
    }
    // A database error passes SQLite's message through with -32000.
    let (_, error) = portal
        .error(json!({"data":[{"function":"count","args":{"function":"max","args":"id"}}],"from":"terminal"}))
        .await;
    assert_eq!(error["code"], -32000, "{error}");
    assert!(error["message"].as_str().unwrap().contains("aggregate"), "{error}");
    portal.sim.shutdown().await;
}

#[tokio::test]
async fn parallel_range_selects_agree_with_sequential_ones() {
    let portal = std::sync::Arc::new(Portal::start(small()).await);
    let range = |lo: i64, hi: i64| json!({"data":"*","from":"terminal","where":{"and":[{"gt":["id",lo]},{"lte":["id",hi]}]},"order_by":"id"});
    let bounds = [(0, 500), (500, 1000), (1000, 100_000)];
    let mut sequential = Vec::new();
    for (lo, hi) in bounds {
        sequential.push(portal.select(range(lo, hi)).await);
    }
    let tasks: Vec<_> = bounds
        .iter()
        .map(|&(lo, hi)| {
            let portal = std::sync::Arc::clone(&portal);
            let params = range(lo, hi);
            tokio::spawn(async move { portal.select(params).await })
        })
        .collect();
    for (task, want) in tasks.into_iter().zip(&sequential) {
        assert_eq!(&task.await.unwrap(), want);
    }
    let total: usize = sequential.iter().map(|r| r.as_array().unwrap().len()).sum();
    assert_eq!(total, 1500);
}

/// Clients that give up mid-query must not leave the pool short: the connection a dropped request
/// still runs on stays checked out until its query ends, and the next request waits for it
/// instead of failing with "no idle database connection".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_mid_query_do_not_starve_the_pool() {
    let portal = Portal::start(small()).await;
    let slow = json!({
        "data": [{"function": "count", "args": ["*"]}],
        "from": ["terminal", {"join": "terminal", "as": "b", "on": {"gte": [{"terminal": "id"}, {"b": "id"}]}}],
        "where": {"lt": [{"terminal": "mac_addr"}, {"function": "lower", "args": [{"b": "mac_addr"}]}]}
    });
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap();
    let url = format!("{}jsonsql/", portal.sim.url());
    let body = json!({"jsonrpc":"2.0","id":1,"method":"select","params":slow});
    let probe = std::time::Instant::now();
    let (status, answer) = portal.call(slow.clone()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert!(
        probe.elapsed() > Duration::from_millis(150),
        "the query must be slow for this test to mean anything"
    );
    let started = std::time::Instant::now();
    let dropped: Vec<_> = (0..8)
        .map(|_| {
            let request = impatient
                .post(&url)
                .header("Iptvportal-Authorization", format!("sessionid={}", portal.session))
                .json(&body)
                .send();
            tokio::spawn(request)
        })
        .collect();
    for task in dropped {
        // Each must time out waiting; an immediate answer here is the pool refusing a request.
        let outcome = task.await.unwrap();
        assert!(outcome.is_err(), "answered instead of waiting for a busy connection: {outcome:?}");
    }
    let rows = portal
        .select(json!({"data": ["id"], "from": "terminal", "limit": 3, "order_by": "id"}))
        .await;
    assert_eq!(rows.as_array().unwrap().len(), 3, "answered after {:?}", started.elapsed());
}
