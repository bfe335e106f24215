//! Fly-shaped API errors: `{"error": "..."}` with the right status, plus the optional
//! machine-readable `status` code Fly adds for capacity and name conflicts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Fly's `status` field (`insufficient_capacity`, `name_taken`).
    pub code: Option<&'static str>,
    /// Simulated seconds; the header rounds them up to whole seconds, as Fly sends.
    pub retry_after: Option<f64>,
    /// The injected fault this error stands for, if any (counted and logged as such).
    pub fault: Option<&'static str>,
}

/// Marks a response produced by a fault a handler injected (e.g. `capacity`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultMark(pub &'static str);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            code: None,
            retry_after: None,
            fault: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    /// Fly reports gRPC `failed_precondition` as 412.
    pub fn precondition(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("failed_precondition: {}", message.into()),
        )
    }
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }
    pub fn capacity(region: &str) -> ApiError {
        let mut e = ApiError::unprocessable(format!(
            "insufficient resources available to fulfill request: insufficient capacity in region {region}"
        ))
        .with_code("insufficient_capacity");
        e.fault = Some("capacity");
        e
    }
    /// A capacity error in one of Fly's other forms (the `capacity=REGION:FORM` fault).
    pub fn capacity_form(region: &str, form: crate::sim::faults::CapacityForm) -> ApiError {
        use crate::sim::faults::CapacityForm as F;
        let mut e = match form {
            F::Unprocessable => return ApiError::capacity(region),
            F::ExistingVolume => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "failed_precondition: insufficient resources to create new machine with existing volume in region {region}"
                ),
            )
            .with_code("volume_placement_capacity"),
            F::Memory => ApiError::conflict(format!(
                "could not reserve resource for machine: insufficient memory available in region {region}"
            ))
            .with_code("insufficient_capacity"),
            F::NoCapacity => ApiError::bad_request(format!("no capacity available in {region}")),
            F::Quota => ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "over the allowed quota: the organization's memory quota in region {region} is used up"
                ),
            ),
        };
        e.fault = Some("capacity");
        e
    }
    pub fn too_many_requests(message: impl Into<String>, retry_after: f64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.retry_after = Some(retry_after);
        e
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")
    }
    pub fn app_not_found() -> ApiError {
        ApiError::not_found("app not found")
    }
    pub fn machine_not_found() -> ApiError {
        ApiError::not_found("machine not found")
    }
    pub fn volume_not_found() -> ApiError {
        ApiError::not_found("volume not found")
    }
}

/// Formats a `Retry-After` value as Fly (and RFC 9110) does: whole seconds, rounded
/// up, at least 1 (a client that reads `0` would retry at once and be refused again).
pub(crate) fn retry_after_value(secs: f64) -> String {
    let secs = if secs.is_nan() || secs <= 0.0 {
        0.0
    } else {
        secs.min(86_400.0)
    };
    format!("{}", (secs.ceil() as u64).max(1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.message.into());
        if let Some(code) = self.code {
            body.insert("status".into(), code.into());
        }
        let mut resp = (self.status, axum::Json(serde_json::Value::Object(body))).into_response();
        if let Some(kind) = self.fault {
            resp.extensions_mut().insert(FaultMark(kind));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&retry_after_value(secs))
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Parses a JSON request body into `T`; malformed JSON or wrong types are a 400.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "request body is empty; expected JSON",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Like [`parse_body`], but an empty body means `T::default()`.
pub(crate) fn parse_optional_body<T: DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    parse_body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_formats() {
        assert_eq!(retry_after_value(1.0), "1");
        assert_eq!(retry_after_value(1.2), "2");
        assert_eq!(retry_after_value(0.0104), "1");
        assert_eq!(retry_after_value(f64::NAN), "1");
        assert_eq!(retry_after_value(f64::INFINITY), "86400");
    }

    #[test]
    fn bodies() {
        #[derive(serde::Deserialize, Default, Debug)]
        struct B {
            #[allow(dead_code)]
            a: Option<u32>,
        }
        assert!(parse_body::<B>(b"").is_err());
        assert!(parse_body::<B>(b"{\"a\": \"x\"}").is_err());
        assert!(parse_optional_body::<B>(b"  ").is_ok());
        let e = parse_body::<B>(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
