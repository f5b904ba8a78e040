//! A JSON-RPC proxy for chaos runs, in front of one node: it passes requests through, stalls
//! them, or answers reads from what it saw before (a node that serves a stale head). Writes
//! (`*send*` methods) always go through. Served on the caller's address, e.g. a namespace
//! LAN's gateway, which every host reaches.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards it.
    Pass = 0,
    /// Holds it until the mode changes (at most a minute), then forwards it.
    Stall = 1,
    /// Answers a read it has answered before with that old answer.
    Stale = 2,
}

struct Shared {
    mode: AtomicU8,
    upstream: hyper::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The last answer to each read (method and params), seen while passing.
    seen: Mutex<HashMap<String, Value>>,
}

/// A running proxy; stops on drop.
pub struct Proxy {
    /// `http://ip:port` to give clients instead of the node's URL.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Connections served at once; more wait for a slot.
const CONNECTIONS: usize = 64;

impl Proxy {
    /// Listens on `ip` (a free port) and forwards to the node at `upstream`.
    pub async fn start(ip: &str, upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .with_context(|| format!("proxy listening on {ip}"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(Mode::Pass as u8),
            upstream: upstream.parse().context("upstream URL")?,
            client: Client::builder(TokioExecutor::new()).build_http(),
            seen: Mutex::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(CONNECTIONS));
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, s.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    drop(permit);
                });
            }
        });
        Ok(Self { url, shared, task })
    }

    /// Switches what the proxy does with the next requests.
    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn mode(s: &Shared) -> Mode {
    match s.mode.load(Ordering::Relaxed) {
        1 => Mode::Stall,
        2 => Mode::Stale,
        _ => Mode::Pass,
    }
}

/// The cache key of one call, or `None` for a write (never answered from the cache).
fn key(call: &Value) -> Option<String> {
    let method = call.get("method")?.as_str()?;
    if method.to_ascii_lowercase().contains("send") {
        return None;
    }
    Some(format!(
        "{method} {}",
        call.get("params").unwrap_or(&Value::Null)
    ))
}

/// The old answers to every call of `body`, if there is one for each.
fn stale_answer(s: &Shared, body: &Value) -> Option<Value> {
    let seen = s.seen.lock().ok()?;
    let answer = |call: &Value| -> Option<Value> {
        let result = seen.get(&key(call)?)?.clone();
        Some(serde_json::json!({"jsonrpc": "2.0", "id": call.get("id")?, "result": result}))
    };
    match body {
        Value::Array(calls) => calls
            .iter()
            .map(answer)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        call => answer(call),
    }
}

fn remember(s: &Shared, body: &Value, answer: &Value) {
    let Ok(mut seen) = s.seen.lock() else { return };
    let pairs: Vec<(&Value, &Value)> = match (body, answer) {
        (Value::Array(calls), Value::Array(answers)) => {
            // Answers of a batch come in any order: match them by id.
            calls
                .iter()
                .filter_map(|c| {
                    let a = answers.iter().find(|a| a.get("id") == c.get("id"))?;
                    Some((c, a))
                })
                .collect()
        }
        (call, answer) => vec![(call, answer)],
    };
    for (call, answer) in pairs {
        if let (Some(k), Some(result)) = (key(call), answer.get("result")) {
            seen.insert(k, result.clone());
        }
    }
}

fn reply(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    s: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return Ok(reply(400, Bytes::from_static(b"unreadable body")));
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let until = Instant::now() + Duration::from_secs(60);
    while mode(&s) == Mode::Stall && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if mode(&s) == Mode::Stale {
        if let Some(old) = parsed.as_ref().and_then(|p| stale_answer(&s, p)) {
            return Ok(reply(200, Bytes::from(old.to_string())));
        }
    }
    let mut up = Request::new(Full::new(body));
    *up.method_mut() = hyper::Method::POST;
    *up.uri_mut() = s.upstream.clone();
    up.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let answer = match s.client.request(up).await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.into_body().collect().await {
                Ok(b) => (status, b.to_bytes()),
                Err(_) => (502, Bytes::from_static(b"upstream body lost")),
            }
        }
        Err(_) => (502, Bytes::from_static(b"upstream unreachable")),
    };
    if answer.0 == 200 && mode(&s) == Mode::Pass {
        if let (Some(p), Ok(a)) = (parsed.as_ref(), serde_json::from_slice::<Value>(&answer.1)) {
            remember(&s, p, &a);
        }
    }
    Ok(reply(answer.0, answer.1))
}
