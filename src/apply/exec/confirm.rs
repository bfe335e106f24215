//! Acting when a response can be lost. The client never repeats a create whose outcome
//! is unknown (a timeout, a dropped connection, a 5xx): it reports
//! [`ApiError::Unknown`], and [`act_confirmed`] looks for the effect before it tries
//! again — or, after the last attempt, before it reports the failure. So a lost
//! response never makes a second app, Machine or volume.

use crate::fly::client::ApiError;

/// How an action succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Acted<T> {
    /// The API answered.
    Answered(T),
    /// The answer was lost; looking it up showed that it took effect.
    Confirmed(T),
}

impl<T> Acted<T> {
    pub(super) fn into_inner(self) -> T {
        match self {
            Acted::Answered(t) | Acted::Confirmed(t) => t,
        }
    }
}

/// Why an action did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum NotActed {
    /// The API refused it, or it never reached the API (nothing changed).
    Refused(ApiError),
    /// Every attempt's outcome was unknown, and no lookup found its effect (the last
    /// attempt's error).
    Unconfirmed(ApiError),
    /// Looking the effect up failed.
    Lookup(ApiError),
}

impl From<NotActed> for ApiError {
    fn from(n: NotActed) -> ApiError {
        match n {
            NotActed::Refused(e) | NotActed::Unconfirmed(e) | NotActed::Lookup(e) => e,
        }
    }
}

impl From<NotActed> for super::OpError {
    fn from(n: NotActed) -> super::OpError {
        ApiError::from(n).into()
    }
}

/// Runs `act` up to `attempts` times. After each unknown outcome `confirm` looks for its
/// effect: `Some` means it took effect (done), `None` that it did not (try again, or
/// after the last attempt report [`NotActed::Unconfirmed`]). Any other error ends it.
pub(super) async fn act_confirmed<T, A, C>(
    attempts: u32,
    mut act: impl FnMut() -> A,
    mut confirm: impl FnMut() -> C,
) -> Result<Acted<T>, NotActed>
where
    A: Future<Output = Result<T, ApiError>>,
    C: Future<Output = Result<Option<T>, ApiError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match act().await {
            Ok(t) => return Ok(Acted::Answered(t)),
            Err(e) if e.is_unknown() => e,
            Err(e) => return Err(NotActed::Refused(e)),
        };
        if let Some(t) = confirm().await.map_err(NotActed::Lookup)? {
            return Ok(Acted::Confirmed(t));
        }
        if attempt >= attempts {
            return Err(NotActed::Unconfirmed(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn unknown() -> ApiError {
        ApiError::Unknown {
            method: "POST".into(),
            path: "/v1/apps".into(),
            cause: "connection closed".into(),
        }
    }

    fn refused() -> ApiError {
        ApiError::Status {
            method: "POST".into(),
            path: "/v1/apps".into(),
            status: 422,
            body: "no".into(),
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_lost_response_is_looked_up_before_a_retry() {
        let acts = Cell::new(0);
        let looks = Cell::new(0);
        let r = block(act_confirmed(
            4,
            || async {
                acts.set(acts.get() + 1);
                Err::<u32, _>(unknown())
            },
            || async {
                looks.set(looks.get() + 1);
                Ok((looks.get() == 2).then_some(7))
            },
        ));
        assert_eq!(r, Ok(Acted::Confirmed(7)));
        assert_eq!((acts.get(), looks.get()), (2, 2));
    }

    #[test]
    fn the_last_unknown_outcome_is_looked_up_then_reported() {
        let acts = Cell::new(0);
        let looks = Cell::new(0);
        let r = block(act_confirmed(
            4,
            || async {
                acts.set(acts.get() + 1);
                Err::<u32, _>(unknown())
            },
            || async {
                looks.set(looks.get() + 1);
                Ok(None)
            },
        ));
        assert_eq!(r, Err(NotActed::Unconfirmed(unknown())));
        assert_eq!((acts.get(), looks.get()), (4, 4));
    }

    #[test]
    fn refusals_and_lookup_failures_end_at_once() {
        let r = block(act_confirmed(
            4,
            || async { Err::<u32, _>(refused()) },
            || async { Ok(None) },
        ));
        assert_eq!(r, Err(NotActed::Refused(refused())));
        let r = block(act_confirmed(
            4,
            || async { Err::<u32, _>(unknown()) },
            || async { Err(refused()) },
        ));
        assert_eq!(r, Err(NotActed::Lookup(refused())));
        let r = block(act_confirmed(
            4,
            || async { Ok::<u32, ApiError>(1) },
            || async { Ok(None) },
        ));
        assert_eq!(r, Ok(Acted::Answered(1)));
    }
}
