//! Plain HTTP beside JSON-RPC on the same port: `GET /health` and `GET /metrics`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::node::Chain;

/// Adds `/health` and `/metrics` in front of the RPC service.
#[derive(Debug, Clone)]
pub struct HttpExtrasLayer {
    chain: Arc<Chain>,
}

impl HttpExtrasLayer {
    /// For this chain.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self { chain }
    }
}

impl<S> Layer<S> for HttpExtrasLayer {
    type Service = HttpExtras<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpExtras {
            inner,
            chain: self.chain.clone(),
        }
    }
}

/// The service [`HttpExtrasLayer`] builds.
#[derive(Debug, Clone)]
pub struct HttpExtras<S> {
    inner: S,
    chain: Arc<Chain>,
}

fn response(content_type: &'static str, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

impl<S> Service<HttpRequest<HttpBody>> for HttpExtras<S>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<HttpBody>) -> Self::Future {
        if req.method() == http::Method::GET {
            match req.uri().path() {
                "/health" => {
                    let h = crate::rpc::server::health(&self.chain);
                    let body = serde_json::to_string(&h).unwrap_or_default();
                    return Box::pin(async move { Ok(response("application/json", body)) });
                }
                "/metrics" => {
                    let body = self.chain.metrics.encode();
                    return Box::pin(async move {
                        Ok(response(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            body,
                        ))
                    });
                }
                _ => {}
            }
        }
        Box::pin(self.inner.call(req))
    }
}
