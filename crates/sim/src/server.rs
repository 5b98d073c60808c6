//! The HTTP side: JSON-RPC envelopes, sessions, fault injection, the two endpoints of the portal's
//! API, and the simulator's own read-only `GET /stats`.
//!
//! Error codes and statuses are the contract in `docs/jsonsql-dialect.md`; the client is written
//! against it, so a change here is a change there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use iptvportal_query::Select;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};
use tokio::sync::watch;

use crate::db::Pool;
use crate::fault::{Fault, Injector, RateLimiter};
use crate::{SimConfig, SimStats};

/// Request bodies above this are refused with 413: selects are small.
const BODY_LIMIT: usize = 1024 * 1024;

/// The JSON-RPC error codes of the simulator (see `docs/jsonsql-dialect.md`).
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL: i64 = -32603;
    pub(crate) const DATABASE: i64 = -32000;
    pub(crate) const SESSION: i64 = -32001;
    pub(crate) const LOGIN: i64 = -32002;
    pub(crate) const RATE_LIMIT: i64 = -32029;
}

#[derive(Default)]
pub(crate) struct Counters {
    authorize: AtomicU64,
    select: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    resets: AtomicU64,
    rate_limited: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            authorize_calls: get(&self.authorize),
            select_calls: get(&self.select),
            injected_failures: get(&self.failures),
            injected_timeouts: get(&self.timeouts),
            injected_resets: get(&self.resets),
            rate_limited: get(&self.rate_limited),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Live sessions: id to expiry (`None`: never expires).
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Option<Instant>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Instant>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, id: String, ttl: Option<Duration>) {
        let expiry = ttl.map(|t| Instant::now() + t);
        let mut map = self.lock();
        // Forget sessions that can never be used again, so a long run does not grow without bound.
        let now = Instant::now();
        map.retain(|_, e| e.is_none_or(|e| e > now));
        map.insert(id, expiry);
    }

    fn is_valid(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.is_none_or(|e| Instant::now() < e))
    }

    /// Every current session expires now.
    pub(crate) fn expire_all(&self) {
        let now = Instant::now();
        for expiry in self.lock().values_mut() {
            *expiry = Some(now);
        }
    }
}

pub(crate) struct AppState {
    pub(crate) config: SimConfig,
    pub(crate) pool: Arc<Pool>,
    pub(crate) sessions: Sessions,
    pub(crate) counters: Counters,
    session_rng: Mutex<StdRng>,
    injector: Injector,
    limiter: Option<RateLimiter>,
    shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn new(
        config: SimConfig,
        pool: Arc<Pool>,
        shutdown: watch::Receiver<bool>,
    ) -> AppState {
        // Session ids need not be reproducible (they are not data), but must differ between runs
        // so a session from an earlier run is never accepted by a new one.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        #[expect(
            clippy::cast_possible_truncation,
            reason = "only the low bits are wanted, as entropy"
        )]
        let session_seed =
            config.seed ^ (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
        AppState {
            injector: Injector::new(
                config.seed,
                config.fail_rate,
                config.timeout_rate,
                config.reset_rate,
            ),
            limiter: config.rate_limit.map(RateLimiter::new),
            session_rng: Mutex::new(StdRng::seed_from_u64(session_seed)),
            sessions: Sessions::default(),
            counters: Counters::default(),
            config,
            pool,
            shutdown,
        }
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/jsonrpc/", post(jsonrpc))
        .route("/api/jsonrpc", post(jsonrpc))
        .route("/api/jsonsql/", post(jsonsql))
        .route("/api/jsonsql", post(jsonsql))
        .route("/stats", get(stats))
        .fallback(|| async {
            rpc_error(
                StatusCode::NOT_FOUND,
                Json::Null,
                code::METHOD_NOT_FOUND,
                "no such endpoint: use /api/jsonrpc/ or /api/jsonsql/",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// `GET /stats`: the counters ([`SimStats`]) as a JSON object, for a harness that runs the
/// simulator as a process and cannot call [`crate::Sim::stats`]. Outside `/api/` (a real portal
/// has no such endpoint), without a session, latency, faults or rate limit, and counted nowhere,
/// so reading it changes none of the numbers it reports.
async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let body = serde_json::to_vec(&state.counters.snapshot()).expect("counters always serialize");
    json_response(StatusCode::OK, body)
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "callers build the id and the value for this response only"
)]
fn envelope(id: Json, key: &str, value: Json) -> Vec<u8> {
    envelope_raw(&id, key, &serde_json::to_vec(&value).expect("a Value always serializes"))
}

/// A JSON-RPC response around a value that is already JSON text (the rows of a select, written
/// straight from SQLite): `{"jsonrpc":"2.0","id":…,"<key>":…}`.
fn envelope_raw(id: &Json, key: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut out, id).expect("serializing an id into a Vec");
    out.push(b',');
    serde_json::to_writer(&mut out, key).expect("serializing a key into a Vec");
    out.push(b':');
    out.extend_from_slice(raw);
    out.push(b'}');
    out
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
        .into_response()
}

fn rpc_error(status: StatusCode, id: Json, code: i64, message: impl Into<String>) -> Response {
    json_response(status, envelope(id, "error", json!({"code": code, "message": message.into()})))
}

/// A parsed JSON-RPC request.
struct Call {
    id: Json,
    method: String,
    params: Json,
}

/// Parses the envelope; the error is the response to send (boxed: a `Response` is large).
fn parse_call(body: Result<Bytes, BytesRejection>) -> Result<Call, Box<Response>> {
    let body = body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Json::Null,
                code::INVALID_REQUEST,
                format!("request body too large (limit {BODY_LIMIT} bytes)"),
            )
        } else {
            rpc_error(
                StatusCode::BAD_REQUEST,
                Json::Null,
                code::PARSE_ERROR,
                format!("parse error: {}", rejection.body_text()),
            )
        })
    })?;
    let value: Json = serde_json::from_slice(&body).map_err(|e| {
        Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            Json::Null,
            code::PARSE_ERROR,
            format!("parse error: {e}"),
        ))
    })?;
    let Json::Object(mut map) = value else {
        return Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            Json::Null,
            code::INVALID_REQUEST,
            "invalid request: expected an object",
        )));
    };
    let id = map.remove("id").unwrap_or(Json::Null);
    let Some(Json::String(method)) = map.remove("method") else {
        return Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            code::INVALID_REQUEST,
            "invalid request: \"method\" must be a string",
        )));
    };
    Ok(Call { id, method, params: map.remove("params").unwrap_or(Json::Null) })
}

/// The refusal of a call that is not of `method`, the one method its endpoint serves: with the
/// call's id and HTTP 200, as JSON-RPC answers an unknown method.
fn method_not_found(call: &Call, method: &str) -> Option<Response> {
    (call.method != method).then(|| {
        rpc_error(
            StatusCode::OK,
            call.id.clone(),
            code::METHOD_NOT_FOUND,
            format!("method {:?} not found", call.method),
        )
    })
}

async fn jsonrpc(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    sleep_latency(&state).await;
    let call = match parse_call(body) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    if let Some(refusal) = method_not_found(&call, "authorize_user") {
        return refusal;
    }
    bump(&state.counters.authorize);
    let credentials = match &call.params {
        Json::Object(m) => {
            m.get("username").and_then(Json::as_str).zip(m.get("password").and_then(Json::as_str))
        }
        Json::Array(items) => match items.as_slice() {
            [Json::String(u), Json::String(p)] => Some((u.as_str(), p.as_str())),
            _ => None,
        },
        _ => None,
    };
    let Some((username, password)) = credentials else {
        return rpc_error(
            StatusCode::OK,
            call.id,
            code::INVALID_PARAMS,
            "invalid params: expected {\"username\": string, \"password\": string}",
        );
    };
    if username != state.config.username || password != state.config.password {
        tracing::info!(username, "login refused");
        return rpc_error(StatusCode::OK, call.id, code::LOGIN, "invalid username or password");
    }
    let session_id = {
        let mut rng = state.session_rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        format!("{:032x}", rng.random::<u128>())
    };
    state.sessions.insert(session_id.clone(), state.config.session_ttl);
    tracing::info!(username, "login");
    let result = json!({
        "session_id": session_id,
        "id": 1,
        "name": username,
        "role": "admin",
        "language_iso639_1": "en",
    });
    json_response(StatusCode::OK, envelope(call.id, "result", result))
}

async fn sleep_latency(state: &AppState) {
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("iptvportal-authorization")?.to_str().ok()?.trim();
    let (key, id) = value.split_once('=')?;
    key.trim().eq_ignore_ascii_case("sessionid").then(|| id.trim())
}

async fn jsonsql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(limiter) = &state.limiter
        && !limiter.try_acquire()
    {
        bump(&state.counters.rate_limited);
        let mut response = rpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            Json::Null,
            code::RATE_LIMIT,
            "rate limit exceeded: retry after 1 s",
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    sleep_latency(&state).await;
    let call = match parse_call(body) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    if !session_id(&headers).is_some_and(|id| state.sessions.is_valid(id)) {
        return rpc_error(
            StatusCode::UNAUTHORIZED,
            call.id,
            code::SESSION,
            "invalid or expired session",
        );
    }
    if let Some(refusal) = method_not_found(&call, "select") {
        return refusal;
    }
    bump(&state.counters.select);
    match state.injector.draw() {
        Fault::None => select(&state, call).await,
        Fault::Fail => {
            bump(&state.counters.failures);
            rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                call.id,
                code::INTERNAL,
                "internal error (injected)",
            )
        }
        Fault::Timeout => {
            bump(&state.counters.timeouts);
            // Hang; the handler is dropped when the client disconnects, and cut short when the
            // server shuts down so that shutdown never waits for it.
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(crate::fault::HANG) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
            rpc_error(
                StatusCode::GATEWAY_TIMEOUT,
                call.id,
                code::INTERNAL,
                "gateway timeout (injected)",
            )
        }
        Fault::Reset => {
            bump(&state.counters.resets);
            let full = select(&state, call).await;
            let (parts, body) = full.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            truncated(parts.status, &bytes)
        }
    }
}

/// A response that promises `full.len()` bytes, sends half, waits a moment and then fails: hyper
/// aborts the connection, so the client has read the status, the headers and part of the body and
/// then sees the connection close under it (a truncated body).
///
/// The pause matters: hyper flushes what it has buffered only when the body is pending, and drops
/// the buffer when the body fails in the same poll, which a client would see as an empty reply.
fn truncated(status: StatusCode, full: &Bytes) -> Response {
    let body = CutBody {
        part: Some(full.slice(..full.len() / 2)),
        pause: Box::pin(tokio::time::sleep(CUT_PAUSE)),
    };
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
    response
}

/// How long a cut body waits between its part and its failure.
const CUT_PAUSE: Duration = Duration::from_millis(20);

/// The body of a reset response: one data frame, a pause, then an error. Its size hint is unknown
/// (the default), so hyper trusts the larger Content-Length header instead of asserting that the
/// two agree.
struct CutBody {
    part: Option<Bytes>,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if let Some(part) = self.part.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(part))));
        }
        std::task::ready!(self.pause.as_mut().poll(cx));
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset (injected)",
        ))))
    }
}

async fn select(state: &AppState, call: Call) -> Response {
    let select = match Select::from_json(&call.params) {
        Ok(s) => s,
        Err(e) => return rpc_error(StatusCode::OK, call.id, code::INVALID_PARAMS, e.to_string()),
    };
    let compiled = match crate::sql::compile(&select, state.config.offset, state.config.collation) {
        Ok(c) => c,
        Err(crate::sql::InvalidSelect(message, refusal)) => {
            let code = match refusal {
                crate::sql::Refusal::Params => code::INVALID_PARAMS,
                // What PostgreSQL itself would refuse comes back as every database error does.
                crate::sql::Refusal::Database => code::DATABASE,
            };
            return rpc_error(StatusCode::OK, call.id, code, message);
        }
    };
    tracing::debug!(sql = %compiled.sql, skip = compiled.skip, "select");
    match state.pool.select(compiled).await {
        Ok(rows) => json_response(StatusCode::OK, envelope_raw(&call.id, "result", &rows)),
        Err(message) => {
            tracing::info!(%message, "select failed");
            rpc_error(StatusCode::OK, call.id, code::DATABASE, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_json_rpc_responses() {
        let rows = json!([[1, "a\"b", null], [2, "ж", true]]);
        for id in [json!(7), json!("req-1"), Json::Null] {
            let body = envelope(id.clone(), "result", rows.clone());
            assert!(body.starts_with(br#"{"jsonrpc":"2.0","id":"#));
            let parsed: Json = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed, json!({"jsonrpc": "2.0", "id": id, "result": rows}));
        }
    }
}
