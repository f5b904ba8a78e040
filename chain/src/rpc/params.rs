//! Refuses a JSON-RPC request whose `params` is present but neither an array nor an object
//! (the spec allows only those two; jsonrpsee would otherwise read `"params": 5` as no params
//! and serve the call). Applied to single calls and to each entry of a batch.

use std::future::Future;

use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT,
};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorObject, Request};

/// The middleware; see the module docs.
#[derive(Debug, Clone)]
pub struct ParamsShape<S> {
    /// The service it guards.
    pub inner: S,
}

/// Why `params` is refused, if it is.
fn bad_params(params: Option<&str>) -> Option<ErrorObject<'static>> {
    let p = params?.trim_start();
    if p.starts_with('[') || p.starts_with('{') {
        return None;
    }
    Some(ErrorObject::owned(
        jsonrpsee::types::error::INVALID_PARAMS_CODE,
        "params must be an array or an object",
        None::<()>,
    ))
}

impl<S> RpcServiceT for ParamsShape<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let refusal = bad_params(req.params.as_ref().map(|p| p.get()));
        let inner = self.inner.clone();
        async move {
            match refusal {
                Some(e) => MethodResponse::error(req.id, e),
                None => inner.call(req).await,
            }
        }
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let refusal = match entry {
                Ok(BatchEntry::Call(req)) => bad_params(req.params.as_ref().map(|p| p.get()))
                    .map(|e| BatchEntryErr::new(req.id.clone(), e)),
                _ => None,
            };
            if let Some(err) = refusal {
                *entry = Err(err);
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
