//! The client: one HTTP connection pool, one shared session, and the retry and re-authorization
//! loop around every call.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use backon::Retryable;
use iptvportal_query::{Expr, Function, Operand, Select};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::retry::parse_retry_after;
use crate::rows::{RowsHint, read_i64s, read_rows};
use crate::{ClientConfig, Error, RetryPolicy, Secret};

/// The header carrying the session on every data call.
const SESSION_HEADER: &str = "Iptvportal-Authorization";
/// The JSON-RPC code the simulator (and, as far as is known, the portal) uses for a missing,
/// unknown or expired session.
const CODE_SESSION: i64 = -32001;
/// The JSON-RPC code of a rate-limit refusal, when it comes in a body rather than as HTTP 429.
const CODE_RATE_LIMITED: i64 = -32029;
/// How much of an unreadable body an error quotes.
const SNIPPET_CHARS: usize = 120;

/// Who the session belongs to, as far as the portal says (real portals send these beside the
/// session id; the simulator may not). The session id itself is never part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The user's numeric id.
    pub user_id: Option<i64>,
    /// The user's name as the portal reports it.
    pub name: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// The user's language (ISO 639-1).
    pub language: Option<String>,
}

/// An async client of a portal's admin API. Cheap to clone: clones share the connection pool, the
/// session and the request ids.
///
/// # Sessions
///
/// The first call logs in (`authorize_user`) and every later call, from any clone or task, reuses
/// the session. When the portal says a session is invalid (HTTP 401, or JSON-RPC error code
/// `-32001`), the call logs in again and resends, at most once per attempt; if its own fresh
/// session is refused too, the call fails with [`Error::SessionExpired`]. Concurrent calls that
/// meet the same expired session log in once between them: a generation counter tells a stale
/// session from one another task has just replaced, and a call first tries that newer session. A
/// retry after a transient failure is a new attempt, so a short-lived session that expires during
/// a series of retries is renewed again instead of failing the call.
///
/// # Retries
///
/// Every call retries transient failures ([`Error::is_retryable`]) by its [`RetryPolicy`], with a
/// fresh budget per call; a `Retry-After` header sets the wait. Re-authorization is separate from
/// that budget. [`Client::with_retry`] gives a view with another policy over the same session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    retry: RetryPolicy,
    timeout: std::time::Duration,
    on_retry: Option<RetryObserver>,
}

/// Called before each retry of a call with the failure and the wait before the next attempt.
pub type RetryObserver = Arc<dyn Fn(&Error, std::time::Duration) + Send + Sync>;

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    rpc_url: Url,
    sql_url: Url,
    next_id: AtomicU64,
    session: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    current: Option<Session>,
    /// Bumped at every login, so that a task holding a stale session cannot discard a newer one.
    generation: u64,
    info: Option<SessionInfo>,
    /// The portal's message when it refused these credentials: every later call fails with it at
    /// once, so requests sent together (a count beside an id scan) log in once, not once each.
    refused: Option<String>,
}

#[derive(Clone)]
struct Session {
    id: Secret,
    generation: u64,
}

/// What one HTTP request is, for the debug log.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'static str,
    table: Option<&'a str>,
    attempt: u32,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// What a call makes of a response: the general path reads every body as an [`Envelope`] and
/// judges it (status, `error`, missing `result`); a call may first try a faster reading of its
/// own, for successful responses only.
trait Decode {
    /// What the call returns.
    type Output;
    /// The output read straight from the body of a successful (2xx) response, or `None` to leave
    /// the body to the general path, which alone decides what any other body means.
    fn fast(&self, body: &[u8]) -> Option<Self::Output>;
    /// The output for the `result` value the general path read.
    fn of_result(&self, result: Value) -> Self::Output;
    /// How many rows the output holds, for the log: an array's length, 1 for anything else.
    fn rows(&self, output: &Self::Output) -> usize;
}

/// The `result` value as it is (a login, [`Client::select_value`]).
struct AnyResult;

impl Decode for AnyResult {
    type Output = Value;

    fn fast(&self, _: &[u8]) -> Option<Value> {
        None
    }

    fn of_result(&self, result: Value) -> Value {
        result
    }

    fn rows(&self, output: &Value) -> usize {
        output.as_array().map_or(1, Vec::len)
    }
}

/// A select read into `Vec<E>`: straight from the body by `read` when it has the usual shape, or
/// from the general path's `result` by `check` after the call. One decoder serves the rows of
/// [`Client::select`] and the integers of [`Client::select_i64s`], so both leave exactly the same
/// bodies to the general path and fail on them with the same errors.
struct SelectInto<E, H> {
    /// What `read` is told of the response before it arrives (room to make, row width).
    hint: H,
    /// The fast path: the output of a successful body of the usual shape, or `None`.
    read: fn(&[u8], H) -> Option<Vec<E>>,
    /// The general path's `result` checked into the output.
    check: fn(Value) -> Result<Vec<E>, Error>,
}

impl SelectInto<Vec<Value>, RowsHint> {
    /// A select's rows, each an array of values.
    fn rows(hint: RowsHint) -> Self {
        SelectInto { hint, read: read_rows, check: rows }
    }

    /// The rows of `select`, hinted by its width and limit.
    fn rows_of(select: &Select) -> Self {
        let star = select.data.iter().any(|d| matches!(d, Operand::Star));
        SelectInto::rows(RowsHint::new((!star).then_some(select.data.len()), select.limit))
    }
}

impl SelectInto<i64, Option<u64>> {
    /// A select of one integer column read into the integers, with room for `limit` of them.
    fn integers(limit: Option<u64>) -> Self {
        SelectInto { hint: limit, read: read_i64s, check: integers }
    }
}

impl<E, H> SelectInto<E, H> {
    /// The output of a call, checked now if the general path read it: outside the call's
    /// retries, as ever, since a malformed result is not transient.
    fn finish(&self, selected: Selected<E>) -> Result<Vec<E>, Error> {
        match selected {
            Selected::Read(values) => Ok(values),
            Selected::Result(result) => (self.check)(result),
        }
    }
}

/// What a select's response held: the output read by the fast path, or the general path's
/// `result`, which [`SelectInto::finish`] checks.
#[derive(Debug)]
enum Selected<E> {
    Read(Vec<E>),
    Result(Value),
}

impl<E, H: Copy> Decode for SelectInto<E, H> {
    type Output = Selected<E>;

    fn fast(&self, body: &[u8]) -> Option<Selected<E>> {
        (self.read)(body, self.hint).map(Selected::Read)
    }

    fn of_result(&self, result: Value) -> Selected<E> {
        Selected::Result(result)
    }

    fn rows(&self, output: &Selected<E>) -> usize {
        match output {
            Selected::Read(values) => values.len(),
            Selected::Result(result) => AnyResult.rows(result),
        }
    }
}

impl Client {
    /// A client for `config`. No request is made until the first call.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        if config.username.is_empty() {
            return Err(Error::config(format!("no username given: set {}", crate::ENV_USERNAME)));
        }
        if config.password.is_empty() {
            return Err(Error::config(format!("no password given: set {}", crate::ENV_PASSWORD)));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .danger_accept_invalid_certs(config.accept_invalid_certs)
            .user_agent(concat!("iptvportal-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config(format!("cannot set up the http client: {e}")))?;
        let join = |path: &str| {
            config
                .base_url
                .join(path)
                .map_err(|e| Error::config(format!("invalid portal url: {e}")))
        };
        let (rpc_url, sql_url) = (join("jsonrpc/")?, join("jsonsql/")?);
        Ok(Client {
            retry: config.retry,
            timeout: config.timeout,
            on_retry: None,
            inner: Arc::new(Inner {
                http,
                rpc_url,
                sql_url,
                config,
                next_id: AtomicU64::new(1),
                session: Mutex::new(SessionState::default()),
            }),
        })
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        self.inner.config.base_url()
    }

    /// The retry policy of this view.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// A view of the same client (same session, pool and ids) whose calls retry by `policy`.
    #[must_use]
    pub fn with_retry(&self, policy: RetryPolicy) -> Client {
        Client { retry: policy, ..self.clone() }
    }

    /// A view of the same client whose requests each time out after `timeout` (a dump's
    /// per-batch timeout), instead of the configured one.
    #[must_use]
    pub fn with_timeout(&self, timeout: std::time::Duration) -> Client {
        Client { timeout, ..self.clone() }
    }

    /// A view of the same client that calls `observer` before every retry (a progress display's
    /// "retrying" state, a metric). The failure passed to it is already free of secrets.
    #[must_use]
    pub fn with_retry_observer(&self, observer: RetryObserver) -> Client {
        Client { on_retry: Some(observer), ..self.clone() }
    }

    /// The per-request timeout of this view.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Logs in now, replacing any current session, and says who the session belongs to.
    pub async fn authorize(&self) -> Result<SessionInfo, Error> {
        let attempt = AtomicU32::new(0);
        let op = || async {
            let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
            let mut state = self.inner.session.lock().await;
            self.login(&mut state, n).await?;
            Ok(state.info.clone().unwrap_or_default())
        };
        self.retrying(op).await
    }

    /// Who the current session belongs to, if a login has happened.
    pub async fn session_info(&self) -> Option<SessionInfo> {
        self.inner.session.lock().await.info.clone()
    }

    /// Runs a select and returns the raw `result` value.
    pub async fn select_value(&self, select: &Select) -> Result<Value, Error> {
        let params = select.to_json()?;
        self.call_sql("select", &params, Some(&select.from.table.name), &AnyResult).await
    }

    /// Runs a select and returns its rows, each an array of values in `data` order.
    pub async fn select(&self, select: &Select) -> Result<Vec<Vec<Value>>, Error> {
        self.select_into(select, &SelectInto::rows_of(select)).await
    }

    /// Runs a select whose rows are one integer each (`data` one integer column, such as an id)
    /// and returns the integers: the same request as [`Client::select`], read without a row and a
    /// `Value` apiece. Any row that is not one integer in `i64`'s range is an error.
    pub async fn select_i64s(&self, select: &Select) -> Result<Vec<i64>, Error> {
        self.select_into(select, &SelectInto::integers(select.limit)).await
    }

    /// Runs a select read by `decode`.
    async fn select_into<E, H: Copy>(
        &self,
        select: &Select,
        decode: &SelectInto<E, H>,
    ) -> Result<Vec<E>, Error> {
        let params = select.to_json()?;
        let selected =
            self.call_sql("select", &params, Some(&select.from.table.name), decode).await?;
        decode.finish(selected)
    }

    /// The number of rows of `table` matching `filter`: `{"function":"count","args":["*"]}`.
    pub async fn count(&self, table: &str, filter: Option<&Expr>) -> Result<u64, Error> {
        let mut select = Select::from(table)?.data(vec![Operand::Function(Function::count_star())]);
        if let Some(f) = filter {
            select = select.filter(f.clone());
        }
        let rows = self.select(&select).await?;
        match rows.first().and_then(|r| r.first()) {
            Some(v) => {
                as_i64(v).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| shape("a count", v))
            }
            // An empty result can only mean nothing matched.
            None => Ok(0),
        }
    }

    /// The smallest and largest value of the integer `column` among the rows of `table` matching
    /// `filter`, in one request; `None` when no row matches.
    pub async fn min_max(
        &self,
        table: &str,
        column: &str,
        filter: Option<&Expr>,
    ) -> Result<Option<(i64, i64)>, Error> {
        let call = |name: &str| -> Result<Operand, Error> {
            Ok(Operand::Function(Function::new(name, vec![Operand::column(column)?])?))
        };
        let mut select = Select::from(table)?.data(vec![call("min")?, call("max")?]);
        if let Some(f) = filter {
            select = select.filter(f.clone());
        }
        let rows = self.select(&select).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        match row.as_slice() {
            [Value::Null, Value::Null] => Ok(None),
            [min, max] => match (as_i64(min), as_i64(max)) {
                (Some(min), Some(max)) => Ok(Some((min, max))),
                _ => Err(shape("two integers (min, max)", &Value::Array(row.clone()))),
            },
            _ => Err(shape("two values (min, max)", &Value::Array(row.clone()))),
        }
    }

    /// One data call with retries and at most one re-authorization.
    async fn call_sql<D: Decode>(
        &self,
        method: &'static str,
        params: &Value,
        table: Option<&str>,
        decode: &D,
    ) -> Result<D::Output, Error> {
        let attempt = AtomicU32::new(0);
        let op = || async {
            let n = attempt.fetch_add(1, Ordering::Relaxed) + 1;
            let call = Call { method, table, attempt: n };
            let mut session = self.session(n).await?;
            // The rule: a refused session is replaced and the request resent; each attempt logs
            // in itself at most once. A session another task has just renewed is tried first (no
            // login), and if that one is refused too, this attempt logs in. Retries after a
            // transient failure are new attempts, so a session that expires during a long series
            // of retries is renewed again rather than failing the call.
            let mut logged_in = false;
            for _ in 0..3 {
                match self.post(&self.inner.sql_url, call, params, Some(&session.id), decode).await
                {
                    Err(Error::SessionExpired { .. }) if !logged_in => {
                        tracing::debug!(method, attempt = n, "session refused; renewing it");
                        let (fresh, did_login) = self.renew(&session, n).await?;
                        logged_in = did_login;
                        session = fresh;
                    }
                    other => return other,
                }
            }
            self.post(&self.inner.sql_url, call, params, Some(&session.id), decode).await
        };
        self.retrying(op).await
    }

    /// Runs `op` under this view's retry policy.
    async fn retrying<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let policy = self.retry;
        op.retry(policy.delays())
            .when(Error::is_retryable)
            .adjust(|e, delay| delay.map(|d| policy.adjust(d, e.retry_after())))
            .notify(|e, delay| {
                tracing::debug!(error = %e, delay_ms = delay.as_millis(), "transient failure; retrying");
                if let Some(observer) = &self.on_retry {
                    observer(e, delay);
                }
            })
            .await
    }

    /// The current session, logging in first if there is none.
    async fn session(&self, attempt: u32) -> Result<Session, Error> {
        let mut state = self.inner.session.lock().await;
        if let Some(s) = &state.current {
            return Ok(s.clone());
        }
        self.login(&mut state, attempt).await
    }

    /// Replaces `refused` unless another task already has, and returns the session to use now
    /// and whether this call logged in for it.
    async fn renew(&self, refused: &Session, attempt: u32) -> Result<(Session, bool), Error> {
        let mut state = self.inner.session.lock().await;
        match &state.current {
            Some(s) if s.generation != refused.generation => Ok((s.clone(), false)),
            _ => Ok((self.login(&mut state, attempt).await?, true)),
        }
    }

    async fn login(&self, state: &mut SessionState, attempt: u32) -> Result<Session, Error> {
        state.current = None;
        if let Some(message) = &state.refused {
            return Err(Error::Auth { message: message.clone() });
        }
        let config = &self.inner.config;
        let params = json!({ "username": config.username, "password": config.password.expose() });
        let call = Call { method: "authorize_user", table: None, attempt };
        let result = match self.post(&self.inner.rpc_url, call, &params, None, &AnyResult).await {
            Ok(result) => result,
            Err(Error::Auth { message }) => {
                state.refused = Some(message.clone());
                return Err(Error::Auth { message });
            }
            Err(e) => return Err(e),
        };
        let Some(id) = result.get("session_id").and_then(Value::as_str).filter(|s| !s.is_empty())
        else {
            // The result may hold a session id of another type; it is not quoted.
            return Err(Error::BadResponse {
                reason: "the login result has no session_id string".to_owned(),
                snippet: String::new(),
            });
        };
        state.generation += 1;
        let session = Session { id: Secret::new(id), generation: state.generation };
        state.current = Some(session.clone());
        state.info = Some(session_info(&result));
        Ok(session)
    }

    /// One HTTP request: a JSON-RPC call of `method` at `url`, returning its `result` as `decode`
    /// reads it.
    async fn post<D: Decode>(
        &self,
        url: &Url,
        call: Call<'_>,
        params: &Value,
        session: Option<&Secret>,
        decode: &D,
    ) -> Result<D::Output, Error> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": call.method, "params": params });
        let mut request = self
            .inner
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .json(&body);
        if let Some(session) = session {
            let mut value = HeaderValue::from_str(&format!("sessionid={}", session.expose()))
                .map_err(|_| Error::BadResponse {
                    reason: "the session id is not a valid header value".to_owned(),
                    snippet: String::new(),
                })?;
            // Sensitive values are left out of the `Debug` of requests, should anything print one.
            value.set_sensitive(true);
            request = request.header(SESSION_HEADER, value);
        }
        let started = Instant::now();
        let outcome = self.exchange(url, call, request, decode).await;
        let elapsed_ms = started.elapsed().as_millis();
        match &outcome {
            Ok(result) => tracing::debug!(
                method = call.method,
                table = call.table.unwrap_or("-"),
                id,
                attempt = call.attempt,
                rows = decode.rows(result),
                elapsed_ms,
                "request ok"
            ),
            Err(e) => tracing::debug!(
                method = call.method,
                table = call.table.unwrap_or("-"),
                id,
                attempt = call.attempt,
                elapsed_ms,
                error = %e,
                "request failed"
            ),
        }
        outcome
    }

    async fn exchange<D: Decode>(
        &self,
        url: &Url,
        call: Call<'_>,
        request: reqwest::RequestBuilder,
        decode: &D,
    ) -> Result<D::Output, Error> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                self.timeout_error()
            } else {
                Error::BadResponse {
                    reason: format!(
                        "the connection closed before the body was complete ({})",
                        root_cause(&e)
                    ),
                    snippet: String::new(),
                }
            }
        })?;
        let is_login = call.method == "authorize_user";
        respond(decode, status, retry_after, url, is_login, &body)
    }

    fn timeout_error(&self) -> Error {
        Error::Timeout { url: self.base_url().to_owned(), after: self.timeout }
    }

    /// Classifies a failure to get a response at all.
    fn transport_error(&self, e: &reqwest::Error) -> Error {
        let url = self.base_url().to_owned();
        if e.is_timeout() {
            return self.timeout_error();
        }
        match tls_error(e) {
            // A record that is not TLS at all: the port speaks plain http.
            Some(rustls::Error::InvalidMessage(_)) => Error::NotTls { url },
            Some(tls) => Error::Tls { url, reason: tls.to_string() },
            None => Error::Connect { url, reason: root_cause(e) },
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url())
            .field("username", &self.inner.config.username)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What a response means to a call: the fast reading of `decode` for a successful response that
/// it can read, else the general path's ([`reply`]).
fn respond<D: Decode>(
    decode: &D,
    status: StatusCode,
    retry_after: Option<Duration>,
    url: &Url,
    is_login: bool,
    body: &[u8],
) -> Result<D::Output, Error> {
    if status.is_success()
        && let Some(output) = decode.fast(body)
    {
        return Ok(output);
    }
    reply(status, retry_after, url, is_login, body).map(|result| decode.of_result(result))
}

/// What a response means, by the general path: its `result` value, or the error its status, its
/// body or its `error` member says.
fn reply(
    status: StatusCode,
    retry_after: Option<Duration>,
    url: &Url,
    is_login: bool,
    body: &[u8],
) -> Result<Value, Error> {
    let envelope = serde_json::from_slice::<Envelope>(body);
    let rpc_error = envelope.as_ref().ok().and_then(|e| e.error.as_ref());
    let message = rpc_error.and_then(|e| e.message.clone());
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Error::RateLimited { retry_after });
    }
    if status == StatusCode::UNAUTHORIZED {
        let message = message.unwrap_or_else(|| "http 401".to_owned());
        return Err(if is_login {
            Error::Auth { message }
        } else {
            Error::SessionExpired { message }
        });
    }
    if !status.is_success() {
        return Err(Error::Http {
            status: status.as_u16(),
            url: url.to_string(),
            message: message.unwrap_or_else(|| snippet(body)),
        });
    }
    let envelope = envelope.map_err(|e| Error::BadResponse {
        reason: if body.is_empty() {
            "empty body".to_owned()
        } else {
            format!("not json-rpc: {e}")
        },
        snippet: snippet(body),
    })?;
    match (envelope.result, envelope.error) {
        (_, Some(error)) => {
            let code = error.code.unwrap_or_default();
            let message = error.message.unwrap_or_else(|| "no message".to_owned());
            Err(match code {
                CODE_SESSION if !is_login => Error::SessionExpired { message },
                CODE_RATE_LIMITED => Error::RateLimited { retry_after },
                // The login failure code is not settled by any source: every refusal of a
                // login is a credentials problem to the caller.
                _ if is_login => Error::Auth { message },
                _ => Error::Server { code, message },
            })
        }
        (Some(result), None) => Ok(result),
        (None, None) => Err(Error::BadResponse {
            reason: "the response has neither result nor error".to_owned(),
            snippet: snippet(body),
        }),
    }
}

/// Converts a select result into rows.
fn rows(result: Value) -> Result<Vec<Vec<Value>>, Error> {
    let Value::Array(items) = result else { return Err(shape("an array of rows", &result)) };
    items
        .into_iter()
        .map(|row| match row {
            Value::Array(values) => Ok(values),
            other => Err(shape("each row to be an array", &other)),
        })
        .collect()
}

/// Converts a select result into integers, one a row.
fn integers(result: Value) -> Result<Vec<i64>, Error> {
    rows(result)?
        .into_iter()
        .map(|row| match row.as_slice() {
            [value] => value.as_i64().ok_or_else(|| shape("rows of one integer", value)),
            _ => Err(shape("rows of one integer", &Value::Array(row))),
        })
        .collect()
}

fn shape(expected: &str, got: &Value) -> Error {
    Error::BadResponse {
        reason: format!("expected {expected}"),
        snippet: snippet(got.to_string().as_bytes()),
    }
}

/// An integer from a JSON number or a numeric string (some servers quote aggregates).
fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn session_info(result: &Value) -> SessionInfo {
    let text = |key: &str| match result.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    SessionInfo {
        user_id: result.get("id").and_then(as_i64),
        name: text("name").or_else(|| text("username")),
        role: text("role"),
        language: text("language_iso639_1").or_else(|| text("language")),
    }
}

/// The start of a body, on one line, for an error message.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(SNIPPET_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The innermost cause, in the words a user needs: `connection refused` rather than the io error's
/// `Connection refused (os error 111)`.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind;

    let mut current: &(dyn std::error::Error + 'static) = e;
    let mut io_kind = None;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        match current.source() {
            Some(next) => current = next,
            None => break,
        }
    }
    match io_kind {
        Some(ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(ErrorKind::ConnectionReset) => "connection reset by the server".to_owned(),
        Some(ErrorKind::ConnectionAborted) => "connection aborted".to_owned(),
        Some(ErrorKind::TimedOut) => "connection timed out".to_owned(),
        Some(ErrorKind::UnexpectedEof) => "connection closed unexpectedly".to_owned(),
        _ => {
            let text = current.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

/// The TLS stack's own error, if the failure was one. reqwest passes rustls errors up wrapped in
/// I/O errors; their type, not their text, tells a TLS failure from a network one.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An I/O error's `source` skips the error it wraps, so step into the wrapped one itself.
        current = match err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_can_be_shared_across_tasks() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Client>();
    }

    #[test]
    fn rows_are_arrays_of_arrays() {
        assert_eq!(
            rows(json!([[1, "a"], [2, null]])).unwrap(),
            vec![vec![json!(1), json!("a")], vec![json!(2), Value::Null]]
        );
        assert_eq!(rows(json!([])).unwrap(), Vec::<Vec<Value>>::new());
        assert!(matches!(rows(json!({"id": 1})), Err(Error::BadResponse { .. })));
        assert!(matches!(rows(json!([{"id": 1}])), Err(Error::BadResponse { .. })));
    }

    /// A select's outcome for a response, as `select` makes it now (the fast path first), and
    /// whether the fast path read it.
    fn new_path(
        status: u16,
        body: &[u8],
        hint: RowsHint,
    ) -> (Result<Vec<Vec<Value>>, Error>, bool) {
        match respond(
            &SelectInto::rows(hint),
            status_code(status),
            RETRY_AFTER_1S,
            &url(),
            false,
            body,
        ) {
            Ok(Selected::Read(rows)) => (Ok(rows), true),
            Ok(Selected::Result(result)) => (rows(result), false),
            Err(e) => (Err(e), false),
        }
    }

    /// A select's outcome as it was before the fast path: the general path, then [`rows`].
    fn old_path(status: u16, body: &[u8]) -> Result<Vec<Vec<Value>>, Error> {
        reply(status_code(status), RETRY_AFTER_1S, &url(), false, body).and_then(rows)
    }

    const RETRY_AFTER_1S: Option<Duration> = Some(Duration::from_secs(1));

    fn status_code(status: u16) -> StatusCode {
        StatusCode::from_u16(status).unwrap()
    }

    fn url() -> Url {
        Url::parse("http://portal.test/api/jsonsql/").unwrap()
    }

    /// Errors have no `PartialEq`; their `Debug` shows every field.
    fn same(new: &Result<Vec<Vec<Value>>, Error>, old: &Result<Vec<Vec<Value>>, Error>) -> bool {
        match (new, old) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => format!("{a:?}") == format!("{b:?}"),
            _ => false,
        }
    }

    /// Checks that `body` under `status` ends the same on both paths, with or without a hint, and
    /// says whether the fast path read it.
    fn agrees(status: u16, body: &str) -> bool {
        let old = old_path(status, body.as_bytes());
        let mut fast = Vec::new();
        for hint in [RowsHint::default(), RowsHint::new(Some(2), Some(10))] {
            let (new, was_fast) = new_path(status, body.as_bytes(), hint);
            assert!(same(&new, &old), "status {status}, body {body}:\n new {new:?}\n old {old:?}");
            fast.push(was_fast);
        }
        assert!(fast[0] == fast[1], "{body}");
        fast[0]
    }

    #[test]
    fn the_fast_path_reads_rows_exactly_as_the_general_path() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[[]]}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":[[1,"a"],[2,null]],"error":null}"#,
            r#"{"result":[[1],[1,2,3],[],[null,null],[4,5,6,7,8,9,10,11,12]]}"#,
            r#"{"result":[[{"a":{"b":[1,[2,[3]]]},"z":null,"a2":[]},[[]],{}]]}"#,
            r#"{"result":[["\u00e9\ud83d\ude00 \"q\" \\ \/ \n\t\u0000", "Фёдоров", "日本語"]]}"#,
            r#"{"result":[[18446744073709551615,-9223372036854775808,9223372036854775807]]}"#,
            r#"{"result":[[123456789012345678901234567890,-18446744073709551616]]}"#,
            r#"{"result":[[0.1,-0.0,1e-7,1.7976931348623157e308,5e-324,2.5E+3,1e2]]}"#,
            r#"{"result":[[null,null,null,null,null,null]]}"#,
            " \n\t{ \"error\" : null , \"result\" : [ [ 1 , 2 ] ] , \"id\" : { \"error\": 1 } }\n ",
            r#"{"result":[[1]],"\u0065rror":null}"#,
            r#"{"jsonrpc":"2.0","result":[[1]],"extra":[{"result":5}],"id":"x"}"#,
        ] {
            assert!(agrees(200, body), "the fast path should read {body}");
        }
        // Any 2xx is a success, as before.
        assert!(agrees(201, r#"{"result":[[1]]}"#));
    }

    #[test]
    fn malformed_results_and_failures_fail_exactly_as_before() {
        let cases = [
            (200, r#"{"result":{"id":1}}"#, "expected an array of rows"),
            (200, r#"{"result":5}"#, "expected an array of rows"),
            (200, r#"{"result":"[[1]]"}"#, "expected an array of rows"),
            (200, r#"{"result":[[1],2]}"#, "expected each row to be an array"),
            (200, r#"{"result":[[1],{"id":2}]}"#, "expected each row to be an array"),
            (
                200,
                r#"{"result":[[1]],"error":{"code":-32602,"message":"bad column"}}"#,
                "bad column",
            ),
            (
                200,
                r#"{"error":{"code":-32602,"message":"bad column"},"result":[[1]]}"#,
                "bad column",
            ),
            (
                200,
                r#"{"result":[[1]],"error":{"code":-32001,"message":"expired"}}"#,
                "SessionExpired",
            ),
            (200, r#"{"result":[[1]],"error":{"code":-32029}}"#, "RateLimited"),
            (200, r#"{"result":[[1]],"error":{}}"#, "no message"),
            (200, r#"{"result":[[1]],"error":{"code":"x"}}"#, "not json-rpc"),
            (200, r#"{"result":[[1]],"error":0}"#, "not json-rpc"),
            (200, r#"{"result":[[1]],"result":[[2]]}"#, "duplicate field `result`"),
            (200, r#"{"result":[[1]],"error":null,"error":null}"#, "duplicate field `error`"),
            (200, r#"{"result":null}"#, "neither result nor error"),
            (200, r#"{"error":null}"#, "neither result nor error"),
            (200, r#"{"jsonrpc":"2.0","id":1}"#, "neither result nor error"),
            (200, "", "empty body"),
            (200, "<html>bad gateway</html>", "not json-rpc"),
            (200, r#"{"result":[[1]]} trailing"#, "not json-rpc"),
            (200, r#"{"result":[[1]]"#, "not json-rpc"),
            (200, r#"{"result":[[1e400]]}"#, "not json-rpc"),
            (200, r#"{"result":[[1,]]}"#, "not json-rpc"),
            (500, r#"{"result":[[1]]}"#, "http 500"),
            (502, r#"{"result":[[1]],"error":{"code":-1,"message":"upstream down"}}"#, "upstream"),
            (404, r#"{"result":[]}"#, "http 404"),
            (401, r#"{"result":[[1]]}"#, "http 401"),
            (401, r#"{"error":{"code":-32001,"message":"expired"}}"#, "SessionExpired"),
            (429, r#"{"result":[[1]]}"#, "RateLimited"),
            (304, r#"{"result":[[1]]}"#, "http 304"),
        ];
        for (status, body, what) in cases {
            assert!(!agrees(status, body), "the fast path should leave {body} ({status})");
            let err = old_path(status, body.as_bytes()).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains(what), "{status} {body}: {text}");
        }
        // The one shape the general path reads and the fast path leaves to it: a JSON-RPC object
        // written as an array (`[result, error]`, as serde reads structs).
        assert!(!agrees(200, "[[[1,2]],null]"));
        assert_eq!(old_path(200, b"[[[1,2]],null]").unwrap(), vec![vec![json!(1), json!(2)]]);
    }

    #[test]
    fn the_log_counts_rows_either_way() {
        let rows = vec![vec![json!(1)], vec![json!(2)], vec![json!(3)]];
        let decode = SelectInto::rows(RowsHint::default());
        assert_eq!(decode.rows(&Selected::Read(rows.clone())), 3);
        assert_eq!(decode.rows(&Selected::Result(json!(rows))), 3);
        assert_eq!(decode.rows(&Selected::Result(json!({"a": 1}))), 1);
        assert_eq!(AnyResult.rows(&json!([1, 2])), 2);
        assert_eq!(AnyResult.rows(&json!({"session_id": "x"})), 1);
    }

    #[test]
    fn a_select_hints_its_width_and_limit() {
        let select = Select::from("terminal").unwrap();
        assert_eq!(SelectInto::rows_of(&select).hint, RowsHint::new(None, None));
        let select = select.columns(["id", "mac_addr", "*"]).unwrap().limit(5000);
        assert_eq!(SelectInto::rows_of(&select).hint, RowsHint { columns: None, rows: 5000 });
        let select = select.columns(["id", "mac_addr", "name"]).unwrap();
        assert_eq!(SelectInto::rows_of(&select).hint, RowsHint { columns: Some(3), rows: 5000 });
        let count =
            Select::from("terminal").unwrap().data(vec![Operand::Function(Function::count_star())]);
        assert_eq!(SelectInto::rows_of(&count).hint.columns, Some(1));
    }

    #[test]
    fn a_six_wide_row_takes_six_slots() {
        let body = br#"{"result":[[1,"a",null,true,2.5,[]],[2,"b",null,false,-1,{}]]}"#;
        for hint in [RowsHint::default(), RowsHint::new(Some(6), Some(5000))] {
            let (rows, fast) = new_path(200, body, hint);
            assert!(fast);
            for row in rows.unwrap() {
                assert_eq!((row.len(), row.capacity()), (6, 6), "{hint:?}");
            }
        }
        // Before: the general path's rows grew by doubling.
        let old = old_path(200, body).unwrap();
        assert!(old.iter().all(|row| row.capacity() == 8));
    }

    mod props {
        use proptest::prelude::*;
        use serde_json::{Map, Number};

        use super::*;

        fn finite_f64() -> impl Strategy<Value = f64> {
            use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
            POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
        }

        /// Any JSON value, small: scalars of every kind (big integers, floats, all of Unicode,
        /// characters JSON escapes) and shallow arrays and objects of them.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                finite_f64().prop_map(|f| Value::Number(Number::from_f64(f).expect("finite"))),
                any::<String>().prop_map(Value::String),
                "[a-z\"\\\\/\n\t\u{0}-\u{1f}é😀]{0,6}".prop_map(Value::String),
            ];
            leaf.prop_recursive(2, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec(("[a-z]{0,3}", inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        fn rows_of_values() -> impl Strategy<Value = Vec<Vec<Value>>> {
            // Mostly rows of one width, as a real result has; sometimes ragged.
            prop_oneof![
                (0..8usize).prop_flat_map(|width| proptest::collection::vec(
                    proptest::collection::vec(value(), width),
                    0..12
                )),
                proptest::collection::vec(proptest::collection::vec(value(), 0..8), 0..12),
            ]
        }

        fn hint() -> impl Strategy<Value = RowsHint> {
            (proptest::option::of(0..10usize), proptest::option::of(0..20u64))
                .prop_map(|(columns, limit)| RowsHint::new(columns, limit))
        }

        /// The body of a response: compact or pretty, with other members around the result.
        fn body(result: &Value, error: Option<Value>, pretty: bool) -> Vec<u8> {
            let mut envelope = json!({ "jsonrpc": "2.0", "id": 17, "result": result });
            if let Some(error) = error {
                envelope["error"] = error;
            }
            if pretty {
                serde_json::to_vec_pretty(&envelope).unwrap()
            } else {
                serde_json::to_vec(&envelope).unwrap()
            }
        }

        proptest! {
            #[test]
            fn any_rows_read_as_the_general_path_reads_them(
                rows in rows_of_values(),
                hint in hint(),
                pretty in any::<bool>(),
            ) {
                let body = body(&json!(rows), None, pretty);
                let value = serde_json::from_slice::<Value>(&body).unwrap();
                let expected = super::rows(value["result"].clone()).unwrap();
                let (got, fast) = new_path(200, &body, hint);
                prop_assert!(fast);
                prop_assert_eq!(got.unwrap(), expected);
            }

            #[test]
            fn any_response_ends_as_before(
                result in prop_oneof![
                    2 => rows_of_values().prop_map(|rows| json!(rows)),
                    1 => value(),
                    1 => proptest::collection::vec(value(), 0..4).prop_map(Value::Array),
                ],
                error in proptest::option::of(prop_oneof![
                    Just(Value::Null),
                    Just(json!({"code": -32602, "message": "bad"})),
                    Just(json!({"code": -32001})),
                    value(),
                ]),
                status in prop_oneof![4 => Just(200u16), 1 => Just(401u16), 1 => Just(429u16), 1 => Just(500u16)],
                hint in hint(),
                pretty in any::<bool>(),
            ) {
                let body = body(&result, error, pretty);
                let (new, _) = new_path(status, &body, hint);
                let old = old_path(status, &body);
                prop_assert!(same(&new, &old), "new {:?}\nold {:?}", new, old);
            }

            #[test]
            fn any_bytes_end_as_before(body in proptest::collection::vec(any::<u8>(), 0..40)) {
                let (new, _) = new_path(200, &body, RowsHint::default());
                prop_assert!(same(&new, &old_path(200, &body)));
            }
        }
    }

    #[test]
    fn session_info_reads_what_real_portals_send() {
        let info = session_info(&json!({
            "session_id": "0123456789abcdef0123456789abcdef", "id": 7, "name": "Admin", "role": 1, "language_iso639_1": "ru"
        }));
        assert_eq!(info.user_id, Some(7));
        assert_eq!(info.name.as_deref(), Some("Admin"));
        assert_eq!(info.role.as_deref(), Some("1"));
        assert_eq!(info.language.as_deref(), Some("ru"));
        assert!(!format!("{info:?}").contains("0123456789abcdef"));
        assert_eq!(session_info(&json!({"session_id": "x"})), SessionInfo::default());
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        let s = snippet(format!("<html>\n{}", "x".repeat(500)).as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS);
        assert!(s.starts_with("<html> x"));
    }

    #[test]
    fn numbers_may_be_quoted() {
        assert_eq!(as_i64(&json!(5)), Some(5));
        assert_eq!(as_i64(&json!("42")), Some(42));
        assert_eq!(as_i64(&json!(1.5)), None);
        assert_eq!(as_i64(&Value::Null), None);
    }
}
