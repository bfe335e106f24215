//! `flotilla comment github --pr N FILE…`: posts plan and cost markdown as one
//! pull-request comment, kept up to date by its hidden marker.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::print_out;
use super::env::Env;
use crate::ops::Error;
use crate::ops::comment::{Action, ApiBase, Behavior, MarkerKey, Options, Outcome, Repo};

#[derive(Debug, Args)]
pub struct CommentArgs {
    #[command(subcommand)]
    pub target: CommentTarget,
}

#[derive(Debug, Subcommand)]
pub enum CommentTarget {
    /// Post markdown files as one comment on a GitHub pull request.
    Github(GithubArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BehaviorArg {
    /// Edit the marked comment in place (or create it).
    Update,
    /// Add a new comment each time the body changes.
    New,
    /// Delete the marked comments, then add a new one.
    DeleteAndNew,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla plan specs/jarvis.yaml --format markdown > plan.md
  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --format markdown > cost.md
  GITHUB_TOKEN=... flotilla comment github --pr 42 --repo acme/fleet plan.md cost.md
  flotilla comment github --pr 42 --marker staging plan-staging.md   # one comment per marker

The token comes from GITHUB_TOKEN (never printed); the repository from --repo or
GITHUB_REPOSITORY; the API from --api-url or GITHUB_API_URL (https://api.github.com).
An identical body writes nothing. Bodies over 65,536 characters are cut with a note.")]
pub struct GithubArgs {
    /// The markdown files to post, concatenated in order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The pull request's number.
    #[arg(long, value_name = "N")]
    pub pr: u64,
    /// The repository, OWNER/NAME (default: GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME", value_parser = clap::value_parser!(Repo))]
    pub repo: Option<Repo>,
    /// GitHub's REST API (default: GITHUB_API_URL, else https://api.github.com); plain
    /// http only to a loopback address.
    #[arg(long, value_name = "URL", value_parser = clap::value_parser!(ApiBase))]
    pub api_url: Option<ApiBase>,
    /// The comment's key: `<!-- flotilla:KEY -->` finds it again; use several keys for
    /// several comments on one pull request.
    #[arg(long, value_name = "KEY", default_value = "flotilla", value_parser = clap::value_parser!(MarkerKey))]
    pub marker: MarkerKey,
    /// What to do when a marked comment exists.
    #[arg(long, value_enum, default_value = "update")]
    pub behavior: BehaviorArg,
}

macro_rules! from_str_parser {
    ($t:ty) => {
        impl clap::builder::ValueParserFactory for $t {
            type Parser = fn(&str) -> Result<$t, String>;
            fn value_parser() -> Self::Parser {
                |s| s.parse()
            }
        }
    };
}
from_str_parser!(Repo);
from_str_parser!(ApiBase);
from_str_parser!(MarkerKey);

impl GithubArgs {
    fn options(&self, env: &Env) -> Result<Options, Error> {
        let invalid = |what: &str, e: String| {
            Error::new(crate::diag::Diagnostic::error(format!("{what}: {e}")))
        };
        let repo = match (&self.repo, &env.github_repository) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(r)) => Some(r.parse().map_err(|e| invalid("GITHUB_REPOSITORY", e))?),
            (None, None) => None,
        };
        let api = match (&self.api_url, &env.github_api_url) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(a)) => Some(a.parse().map_err(|e| invalid("GITHUB_API_URL", e))?),
            (None, None) => None,
        };
        Ok(Options {
            files: self.files.clone(),
            pr: self.pr,
            repo,
            api,
            token: env
                .github_token
                .clone()
                .and_then(crate::ops::comment::GithubToken::new),
            marker: self.marker.clone(),
            behavior: match self.behavior {
                BehaviorArg::Update => Behavior::Update,
                BehaviorArg::New => Behavior::New,
                BehaviorArg::DeleteAndNew => Behavior::DeleteAndNew,
            },
        })
    }
}

pub fn run(args: CommentArgs, env: &Env) -> Result<Exit, Error> {
    match args.target {
        CommentTarget::Github(a) => {
            let outcome = crate::ops::comment::run(&a.options(env)?)?;
            print_out(&render(&outcome));
            Ok(Exit::Ok)
        }
    }
}

/// One line saying what happened, then notes.
fn render(o: &Outcome) -> String {
    let what = match o.action {
        Action::Created => "Created",
        Action::Updated => "Updated",
        Action::Unchanged => "Unchanged",
    };
    let mut s = format!(
        "{what} comment {} on {}#{} (marker {})",
        o.comment_id, o.repo, o.pr, o.marker
    );
    if o.action == Action::Unchanged {
        s.push_str(", identical body, nothing written");
    }
    if let Some(u) = &o.url {
        s.push_str(&format!(": {u}"));
    }
    s.push('\n');
    if !o.deleted.is_empty() {
        let ids: Vec<String> = o.deleted.iter().map(u64::to_string).collect();
        s.push_str(&format!(
            "Deleted the earlier comment(s) {}.\n",
            ids.join(", ")
        ));
    }
    if let Some(t) = o.truncated {
        s.push_str(&format!(
            "The body was cut to GitHub's limit: {} of {} characters posted.\n",
            t.shown, t.total
        ));
    }
    s
}
