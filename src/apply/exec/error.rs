//! Why an operation failed, as a value: the message, an optional hint, and what kind of
//! failure it is. Its rendering is the text summaries, journal lines and progress lines
//! show: the message, then `\n  hint: …` when there is a hint.

use std::fmt;

use crate::fly::client::ApiError;

/// What an operation returns: what it did (Fly IDs, regions, …), or why it failed.
pub type OpResult = Result<String, OpError>;

/// What kind of failure an [`OpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpErrorKind {
    /// Fly refused a request, or a resource ended up in a bad state.
    Failed,
    /// A write may or may not have taken effect, and looking it up did not tell.
    UnknownOutcome,
    /// A state was not reached before the deadline.
    TimedOut,
    /// The operation graph or the run's own bookkeeping is inconsistent (a bug).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub kind: OpErrorKind,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl OpError {
    fn new(kind: OpErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Failed, message)
    }

    pub fn unknown_outcome(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::UnknownOutcome, message)
    }

    pub fn timed_out(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::TimedOut, message)
    }

    pub fn internal(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Internal, message)
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> OpError {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ApiError> for OpError {
    fn from(e: ApiError) -> OpError {
        let kind = if e.is_unknown() {
            OpErrorKind::UnknownOutcome
        } else {
            OpErrorKind::Failed
        };
        OpError::new(kind, e.to_string())
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_message_then_the_hint() {
        let e = OpError::failed("no capacity for volume data in iad")
            .with_hint("add fallback_regions, or try again later");
        assert_eq!(
            e.to_string(),
            "no capacity for volume data in iad\n  hint: add fallback_regions, or try again later"
        );
        assert_eq!(OpError::internal("x").to_string(), "x");
    }

    #[test]
    fn api_errors_keep_their_text_and_kind() {
        let e = ApiError::Unknown {
            method: "POST".into(),
            path: "/apps".into(),
            cause: "timeout".into(),
        };
        let o = OpError::from(e.clone());
        assert_eq!(o.to_string(), e.to_string());
        assert_eq!(o.kind, OpErrorKind::UnknownOutcome);
    }
}
