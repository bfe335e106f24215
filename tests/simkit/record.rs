//! A recorder of simulator traffic for the contract tests (`sim_schema` against Fly's
//! 2024 Swagger spec, `sim_openapi` against the newest OpenAPI document): every call
//! is kept with its request and response bodies, to be validated afterwards.

use reqwest::Method;
use serde_json::Value;

use super::TestSim;

/// One request and its answer, the query dropped from the path.
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Value,
}

/// A simulator and what was sent to it.
pub struct Recorder {
    pub sim: TestSim,
    pub log: Vec<Exchange>,
}

impl Recorder {
    pub async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
        let r = self
            .sim
            .send(method.clone(), path, body.clone(), headers)
            .await;
        assert!(r.status < 500, "{method} {path}: {:?}", r.body);
        self.log.push(Exchange {
            method,
            path: path.split('?').next().unwrap_or(path).to_string(),
            request: body,
            status: r.status,
            response: r.body.clone(),
        });
        r.body
    }
}

/// Whether a concrete path matches a document's path template, segment by segment
/// (`{placeholder}` matches any one segment).
pub fn segments_match(template: &[&str], path: &[&str]) -> bool {
    template.len() == path.len()
        && template
            .iter()
            .zip(path)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}
