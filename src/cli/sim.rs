//! `flotilla sim serve`: the Fly Machines API simulator as a long-running server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::Exit;
use crate::ops::Error;
use crate::ops::sim::{Listening, ServeOptions};
use crate::sim::{FaultConfig, SimConfig, parse_duration};

#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the Fly Machines API on a local address until Ctrl-C.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  flotilla sim serve
  curl -H 'Authorization: Bearer test' 'localhost:4280/v1/apps?org_slug=personal'
  flotilla sim serve --state .flotilla/sim.json --time-scale 60
  flotilla sim serve --faults '503=0.05,latency=20ms..200ms,lost_response=0.02' --seed 7
  flotilla sim serve --addr 127.0.0.1:0 --rate-limits off --request-log sim-requests.jsonl

Fault grammar (--faults, comma-separated):
  429=P | 500=P | 502=P | 503=P   answer that status before the change (probability P)
  503@after=P                     apply the change, then answer the status anyway
  latency=50ms | latency=10ms..200ms   added delay (fixed or uniform)
  timeout=P  hang=30s             hang, then drop the connection unanswered
  lost_response=P                 apply the change, then drop the connection
  capacity=sjc+gru                creates in these regions fail with 422
  capacity=sjc:409+bom:412+gru:403  Machine creates fail in Fly's other forms
  eventual=P                      new Machines and apps answer 404 for a moment
  fail_after=N                    serve N requests, then 503 for every later one";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Its `Debug` output redacts the token.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:4280")]
    pub addr: SocketAddr,
    /// Persist the simulated world in this JSON file and reload it on start.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Bearer token clients must send.
    #[arg(
        long,
        env = "FLOTILLA_SIM_TOKEN",
        default_value = "test",
        hide_env_values = true
    )]
    pub token: String,
    /// Divide every simulated delay and rate-limit window by N.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Seed for ids and fault decisions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Faults to inject (grammar below).
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<FaultConfig>,
    /// Fly's documented rate limits.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub rate_limits: OnOff,
    /// Append one JSON line per API request to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// Delay before a destroyed Machine's volume detaches (e.g. 10s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub detach_delay: Option<Duration>,
    /// Idle time before an autostop Machine stops or suspends.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_period: Option<Duration>,
    /// Start the idle clock on every boot of an autostop Machine.
    #[arg(long)]
    pub auto_idle: bool,
    /// Region for Machines created without one.
    #[arg(long, default_value = "iad")]
    pub default_region: String,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be left out (or leak) unnoticed.
        let ServeArgs {
            addr,
            state,
            token: _,
            time_scale,
            seed,
            faults,
            rate_limits,
            request_log,
            detach_delay,
            idle_period,
            auto_idle,
            default_region,
        } = self;
        f.debug_struct("ServeArgs")
            .field("addr", addr)
            .field("state", state)
            .field("token", &"<redacted>")
            .field("time_scale", time_scale)
            .field("seed", seed)
            .field("faults", faults)
            .field("rate_limits", rate_limits)
            .field("request_log", request_log)
            .field("detach_delay", detach_delay)
            .field("idle_period", idle_period)
            .field("auto_idle", auto_idle)
            .field("default_region", default_region)
            .finish()
    }
}

fn parse_faults(s: &str) -> Result<FaultConfig, String> {
    s.parse::<FaultConfig>().map_err(|e| e.to_string())
}

impl ServeArgs {
    fn config(&self) -> SimConfig {
        let mut cfg = SimConfig {
            token: self.token.clone(),
            time_scale: self.time_scale,
            seed: self.seed,
            rate_limits: self.rate_limits == OnOff::On,
            faults: self.faults.clone().unwrap_or_default(),
            state_file: self.state.clone(),
            request_log: self.request_log.clone(),
            default_region: self.default_region.clone(),
            auto_idle: self.auto_idle,
            ..SimConfig::default()
        };
        if let Some(d) = self.detach_delay {
            cfg.detach_delay = d;
        }
        if let Some(d) = self.idle_period {
            cfg.idle_period = d;
        }
        cfg
    }
}

pub fn run(args: SimArgs) -> Result<Exit, Error> {
    match args.command {
        SimCommand::Serve(a) => serve(a),
    }
}

fn serve(args: ServeArgs) -> Result<Exit, Error> {
    let opts = ServeOptions {
        config: args.config(),
        addr: args.addr,
    };
    // stdout may be a pipe the reader closed; a lost status line is no error.
    crate::ops::sim::serve(
        opts,
        |l| announce(l, args.state.as_deref()),
        || {
            let _ = writeln!(std::io::stdout(), "flotilla sim stopped");
        },
    )?;
    Ok(Exit::Ok)
}

fn announce(l: &Listening, state: Option<&std::path::Path>) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "flotilla sim listening on {}", l.base_url);
    let _ = writeln!(
        out,
        "  token: pass 'Authorization: Bearer <token>' (default token: test)"
    );
    if let Some(state) = state {
        let _ = writeln!(out, "  state: {}", state.display());
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn debug_redacts_the_token() {
        let cli =
            Cli::try_parse_from(["serve", "--token", "s3cr3t-token-value", "--seed", "7"]).unwrap();
        assert_eq!(cli.serve.token, "s3cr3t-token-value");
        let args = SimArgs {
            command: SimCommand::Serve(cli.serve),
        };
        let SimCommand::Serve(serve) = &args.command;
        let config = serve.config();
        for shown in [
            format!("{args:?}"),
            format!("{args:#?}"),
            format!("{config:?}"),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains("seed: 7"), "{shown}");
        }
    }
}
