//! Plain HTTP beside JSON-RPC on the same port: a layer that serves a set of `GET` paths
//! (a node's `/health` and `/metrics`, a member's `/status` too) before JSON-RPC sees them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::Serialize;
use tower::{Layer, Service};

use crate::metrics::OPENMETRICS_CONTENT_TYPE;

/// The `GET` paths a server answers itself instead of passing them to JSON-RPC.
pub trait GetRoutes {
    /// The response to `GET path`, or `None` to hand the request on to JSON-RPC.
    fn get(&self, path: &str) -> Option<HttpResponse>;
}

/// Puts [`GetRoutes`] in front of the JSON-RPC service.
#[derive(Debug, Clone)]
pub struct GetRoutesLayer<R> {
    routes: R,
}

impl<R> GetRoutesLayer<R> {
    /// Serving `routes`.
    pub fn new(routes: R) -> Self {
        Self { routes }
    }
}

impl<R: Clone, S> Layer<S> for GetRoutesLayer<R> {
    type Service = GetRoutesService<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        GetRoutesService {
            inner,
            routes: self.routes.clone(),
        }
    }
}

/// The service [`GetRoutesLayer`] builds.
#[derive(Debug, Clone)]
pub struct GetRoutesService<S, R> {
    inner: S,
    routes: R,
}

impl<S, R> Service<HttpRequest<HttpBody>> for GetRoutesService<S, R>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: GetRoutes,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<HttpBody>) -> Self::Future {
        if req.method() == http::Method::GET {
            if let Some(r) = self.routes.get(req.uri().path()) {
                return Box::pin(async move { Ok(r) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

/// A response with this status, `Content-Type` and body.
pub fn response(
    status: http::StatusCode,
    content_type: &'static str,
    body: String,
) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// `200 OK` with `value` as JSON.
pub fn json_response<T: Serialize>(value: &T) -> HttpResponse {
    response(
        http::StatusCode::OK,
        "application/json",
        serde_json::to_string(value).unwrap_or_default(),
    )
}

/// `200 OK` with a Prometheus text exposition (`GET /metrics`).
pub fn metrics_response(exposition: String) -> HttpResponse {
    response(http::StatusCode::OK, OPENMETRICS_CONTENT_TYPE, exposition)
}
