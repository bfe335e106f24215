//! What a refused create tells about capacity. Fly says "no room" in several forms that
//! grew over the years (a 400 "no capacity" on volume creates, 412 for a volume's host,
//! 409 for memory, 422 `insufficient_capacity`, the `volume_placement_capacity` code, a
//! 403 organization quota); the executor decides on region fallback from one typed
//! classification instead of each call site matching bodies.

use serde_json::Value;

use super::client::ApiError;

/// Why Fly had no room, by what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityError {
    /// The region has no room for this size (400 "no capacity", 409 "insufficient
    /// memory available", 422 `insufficient_capacity`): try the next fallback region.
    Region,
    /// The host of the volume the Machine mounts is full (412 "insufficient resources
    /// to create new machine with existing volume", code `volume_placement_capacity`):
    /// the Machine can only go elsewhere with a volume elsewhere.
    VolumeHost,
    /// The organization's memory quota in the region is used up (403 "over the allowed
    /// quota"). An account limit, not a full region: falling back would scatter the
    /// fleet and hit the same quota again, so flotilla stops and says so.
    OrgQuota,
}

impl CapacityError {
    /// Classifies a failed call; `None` for anything that is not about capacity (a 412
    /// lease or version mismatch, a 403 bad token, a 409 lease held, …).
    pub fn of(e: &ApiError) -> Option<CapacityError> {
        let ApiError::Status { status, body, .. } = e else {
            return None;
        };
        classify(*status, body)
    }

    /// Whether trying the next region (with a volume made for it moved along) can help.
    pub fn falls_back(self) -> bool {
        !matches!(self, CapacityError::OrgQuota)
    }
}

/// The message and machine-readable code of an error body (`{"error", "status"}`, or
/// `code` in some answers); the raw text when it is not JSON.
fn parts(body: &str) -> (String, Option<String>) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) else {
        return (body.to_ascii_lowercase(), None);
    };
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
    let message = text("error")
        .or_else(|| text("message"))
        .unwrap_or_default();
    let code = text("status").or_else(|| text("code"));
    (message.to_ascii_lowercase(), code)
}

fn classify(status: u16, body: &str) -> Option<CapacityError> {
    let (message, code) = parts(body);
    match code.as_deref() {
        Some("volume_placement_capacity") => return Some(CapacityError::VolumeHost),
        Some("insufficient_capacity") => return Some(CapacityError::Region),
        _ => {}
    }
    let has = |s: &str| message.contains(s);
    match status {
        403 if has("over the allowed quota") => Some(CapacityError::OrgQuota),
        412 if has("insufficient resources") => Some(CapacityError::VolumeHost),
        400 | 409 | 422 | 503
            if has("no capacity")
                || has("insufficient capacity")
                || has("insufficient memory")
                || has("insufficient resources") =>
        {
            Some(CapacityError::Region)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> ApiError {
        ApiError::Status {
            method: "POST".into(),
            path: "/apps/a/machines".into(),
            status,
            body: body.into(),
        }
    }

    fn of(status: u16, body: &str) -> Option<CapacityError> {
        CapacityError::of(&err(status, body))
    }

    #[test]
    fn volume_create_no_capacity_400() {
        assert_eq!(
            of(400, r#"{"error":"no capacity"}"#),
            Some(CapacityError::Region)
        );
        assert_eq!(
            of(400, r#"{"error":"no capacity available in sjc"}"#),
            Some(CapacityError::Region)
        );
    }

    #[test]
    fn machine_with_existing_volume_412() {
        assert_eq!(
            of(
                412,
                r#"{"error":"insufficient resources to create new machine with existing volume"}"#
            ),
            Some(CapacityError::VolumeHost)
        );
        let coded = r#"{"error":"failed_precondition: insufficient resources to create new machine with existing volume in region iad","status":"volume_placement_capacity"}"#;
        assert_eq!(of(412, coded), Some(CapacityError::VolumeHost));
    }

    #[test]
    fn volume_placement_capacity_code_alone() {
        assert_eq!(
            of(
                422,
                r#"{"error":"placement failed","status":"volume_placement_capacity"}"#
            ),
            Some(CapacityError::VolumeHost)
        );
        assert_eq!(
            of(409, r#"{"error":"x","code":"volume_placement_capacity"}"#),
            Some(CapacityError::VolumeHost)
        );
    }

    #[test]
    fn insufficient_memory_409() {
        assert_eq!(
            of(
                409,
                r#"{"error":"could not reserve resource for machine: insufficient memory available"}"#
            ),
            Some(CapacityError::Region)
        );
    }

    #[test]
    fn insufficient_capacity_422() {
        assert_eq!(
            of(
                422,
                r#"{"error":"insufficient resources available to fulfill request: insufficient capacity in region sjc","status":"insufficient_capacity"}"#
            ),
            Some(CapacityError::Region)
        );
    }

    #[test]
    fn org_quota_403_does_not_fall_back() {
        let body = r#"{"error":"organization \"acme\" is using 1970176 MB of memory in dfw which is over the allowed quota. please consider other regions"}"#;
        assert_eq!(of(403, body), Some(CapacityError::OrgQuota));
        assert!(!CapacityError::OrgQuota.falls_back());
        assert!(CapacityError::Region.falls_back());
        assert!(CapacityError::VolumeHost.falls_back());
    }

    #[test]
    fn other_failures_are_not_capacity() {
        assert_eq!(of(403, r#"{"error":"unauthorized"}"#), None);
        assert_eq!(
            of(
                412,
                r#"{"error":"failed_precondition: lease nonce mismatch"}"#
            ),
            None
        );
        assert_eq!(of(409, r#"{"error":"lease currently held"}"#), None);
        assert_eq!(of(400, r#"{"error":"invalid size_gb"}"#), None);
        assert_eq!(of(404, r#"{"error":"no capacity"}"#), None);
        assert_eq!(of(400, ""), None);
        let unknown = ApiError::Unknown {
            method: "POST".into(),
            path: "/p".into(),
            cause: "no capacity".into(),
        };
        assert_eq!(CapacityError::of(&unknown), None);
    }

    #[test]
    fn a_plain_text_body_is_read_too() {
        assert_eq!(
            of(400, "no capacity available in ord"),
            Some(CapacityError::Region)
        );
    }
}
