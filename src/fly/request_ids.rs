//! Fly's request ids (`fly-request-id` response header) of the writes one operation
//! makes, so the journal can name them beside flotilla's own operation id: what Fly's
//! support asks for when a write went wrong. The ids are collected per task: the
//! executor runs each operation inside [`scope`], the client [`note`]s the header of
//! every write's response, and the journal [`take`]s them when it records the outcome.

use std::cell::RefCell;
use std::future::Future;

use reqwest::header::HeaderMap;

/// The response header carrying Fly's request id.
pub const HEADER: &str = "fly-request-id";

tokio::task_local! {
    static IDS: RefCell<Vec<String>>;
}

/// Runs `fut` collecting the request ids the client notes during it.
pub async fn scope<F: Future>(fut: F) -> F::Output {
    IDS.scope(RefCell::new(Vec::new()), fut).await
}

/// Records the request id of a response (outside a [`scope`]: nothing).
pub fn note(headers: &HeaderMap) {
    let Some(id) = headers.get(HEADER).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let _ = IDS.try_with(|ids| ids.borrow_mut().push(id.to_string()));
}

/// The ids noted so far in this scope, emptying it.
pub fn take() -> Vec<String> {
    IDS.try_with(|ids| std::mem::take(&mut *ids.borrow_mut()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_collected_per_scope() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "req-1".parse().unwrap());
        note(&h);
        assert!(take().is_empty(), "outside a scope nothing is kept");
        let ids = scope(async {
            note(&h);
            note(&h);
            take()
        })
        .await;
        assert_eq!(ids, ["req-1", "req-1"]);
    }
}
