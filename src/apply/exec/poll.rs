//! Waiting for a state: a Machine started or destroyed, a volume detached or deletable,
//! a snapshot finished. [`poll_until`] checks, pauses and checks again until the state
//! is reached or the deadline passes; each check says what it still awaits, worded as
//! the error the deadline reports (`Machine … did not start within 300 s (state
//! stopped)`), so the message describes the last state seen.

use std::time::{Duration, Instant};

use super::OpError;
use crate::fly::client::Client;

/// What one check found.
#[derive(Debug)]
pub(super) enum Check<T> {
    /// The awaited state, with what it yields.
    Reached(T),
    /// Not yet: what is still awaited, as the error to report at the deadline.
    Awaiting(OpError),
}

/// How to pause between two checks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pause<'a> {
    /// Sleep this long (API time).
    Sleep(Duration),
    /// Ask Fly to hold the request until the Machine is in `state` (at most 60 s of API
    /// time); its errors only end the pause, the next check reads again.
    MachineState {
        app: &'a str,
        id: &'a str,
        state: &'a str,
    },
}

/// When to stop waiting, and how to pause between checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Until<'a> {
    pub deadline: Instant,
    pub pause: Pause<'a>,
}

impl Pause<'_> {
    async fn wait(self, client: &Client) {
        match self {
            Pause::Sleep(d) => client.sleep(d).await,
            Pause::MachineState { app, id, state } => {
                // A refused or failed wait (a Machine already gone answers 404) must
                // still pause, or the next check would follow at once.
                if client.wait(app, id, state, None, 60).await.is_err() {
                    client.sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Checks until `check` reaches its state. An error from `check` ends the wait at once;
/// at the deadline the last [`Check::Awaiting`] error is returned.
pub(super) async fn poll_until<T, F>(
    client: &Client,
    until: Until<'_>,
    mut check: impl FnMut() -> F,
) -> Result<T, OpError>
where
    F: Future<Output = Result<Check<T>, OpError>>,
{
    loop {
        match check().await? {
            Check::Reached(t) => return Ok(t),
            Check::Awaiting(e) if Instant::now() >= until.deadline => return Err(e),
            Check::Awaiting(_) => until.pause.wait(client).await,
        }
    }
}
