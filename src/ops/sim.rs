//! `sim serve`: run the Fly Machines API simulator until Ctrl-C or SIGTERM, then save
//! its state. The caller is told where it listens through a callback, once the signal
//! handlers are installed.

use std::net::SocketAddr;

use crate::diag::Diagnostic;
use crate::ops::Error;
use crate::sim::SimConfig;

/// The simulator's configuration and where to listen (port 0: a free port).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: SimConfig,
    pub addr: SocketAddr,
}

/// Where a started simulator listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

/// Serves until a shutdown signal. `listening` is called once the server accepts
/// connections and a signal would be handled; `stopped` once it has shut down and saved.
pub fn serve(
    opts: ServeOptions,
    listening: impl FnOnce(&Listening),
    stopped: impl FnOnce(),
) -> Result<(), Error> {
    let rt = crate::ops::runtime()?;
    rt.block_on(async move {
        let handle = crate::sim::start(opts.config, opts.addr)
            .await
            .map_err(|e| Error::new(Diagnostic::error(e.to_string())))?;
        let signal = ShutdownSignal::install();
        listening(&Listening {
            base_url: handle.base_url(),
        });
        signal.recv().await;
        handle.shutdown().await;
        stopped();
        Ok(())
    })
}

/// Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is created, so
/// create it before announcing the address: a signal sent right after the announcement
/// must not kill the process before the state is saved.
struct ShutdownSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    fn install() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
                .ok();
            ShutdownSignal { signals }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    async fn recv(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
