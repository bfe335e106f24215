//! `flotilla plan SPEC`: what would change, and what it costs.

use std::path::PathBuf;

use clap::Args;

use super::common::{Format, eprint_diag, load_spec, print_out};
use crate::diag::{Diagnostic, suggest};
use crate::plan::saved::{PlanDocument, PlanMeta};
use crate::render::{Style, plan_json, plan_markdown, plan_text};
use crate::state::{Snapshot, interpret};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla plan specs/jarvis.yaml
  flotilla plan specs/jarvis.yaml --state tests/states/jarvis-drift.json
  flotilla plan specs/jarvis.yaml --tenant alice --tenant bob
  flotilla plan specs/jarvis.yaml --format json --out plans/jarvis.plan.json
  flotilla plan specs/jarvis.yaml --detailed-exitcode   # exit 2 when there are changes
  flotilla plan specs/jarvis.yaml --sim                 # against the local simulator
  FLY_API_TOKEN=... flotilla plan specs/jarvis.yaml     # against your Fly organization
  flotilla plan specs/jarvis.yaml --sim --show-state state.json

Where the observed state comes from: --state FILE; else --sim; else the Fly API when
--api, FLY_API_HOSTNAME or FLY_API_TOKEN is set; else an empty organization (offline).")]
pub struct PlanArgs {
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Compare against an observed-state JSON file (the format --show-state writes).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sim", "api"])]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Also write the observed state to FILE (JSON, the format --state reads).
    #[arg(long, value_name = "FILE")]
    pub show_state: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Save the plan (with the desired state, spec hash and observed fingerprint) for
    /// `flotilla apply PLANFILE`.
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Only plan these tenants (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Never colour the text output (colours are used only on a terminal; NO_COLOR is honoured).
    #[arg(long)]
    pub no_color: bool,
    #[command(flatten)]
    pub pricing: super::pricing::PricingOpts,
}

pub fn load_state(path: &std::path::Path) -> Result<Snapshot, Diagnostic> {
    let file = path.display().to_string();
    let bytes = crate::spec::read_limited(path).map_err(|d| d.file(file.clone()))?;
    Snapshot::from_json(&bytes, &file)
}

/// The plan of `desired` against `observed`, with costs when prices are available (a
/// plan without prices is still shown, with the reason).
pub fn compute_plan(
    desired: &crate::resource::Desired,
    observed: &crate::state::Observed,
    tenants: &[String],
    pricing: &super::pricing::PricingOpts,
) -> crate::plan::Plan {
    let mut plan = crate::plan::plan(desired, observed, tenants);
    match pricing.table() {
        Ok(table) => {
            if let Err(e) =
                crate::cost::annotate_plan(&mut plan, &table, desired, &observed.resources)
            {
                super::common::eprint_diags(&e.to_diagnostics());
                eprint_diag(
                    &Diagnostic::warning("the plan is shown without costs")
                        .hint("fix the errors above"),
                );
            }
        }
        Err(_) => eprint_diag(&Diagnostic::warning("the plan is shown without costs")),
    }
    plan
}

pub fn run(args: PlanArgs) -> i32 {
    let loaded = match load_spec(&args.spec) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let desired = &loaded.desired;
    for t in &args.tenants {
        if !desired.tenants.iter().any(|x| &x.name == t) {
            let hint = suggest(
                t,
                desired.tenants.iter().map(|x| x.name.as_str()),
                "tenants",
            );
            eprint_diag(
                &Diagnostic::error(format!(
                    "--tenant {t}: no such tenant in {}",
                    args.spec.display()
                ))
                .hint(hint),
            );
            return super::EXIT_ERROR;
        }
    }
    // Observe: a state file, the simulator or the API, or nothing.
    let mut values = None;
    let (snapshot, source) = match &args.state {
        Some(p) => match load_state(p) {
            Ok(s) => (s, format!("state:{}", p.display())),
            Err(d) => {
                eprint_diag(&d);
                return super::EXIT_ERROR;
            }
        },
        None if args.target.is_live() => {
            let rt = match super::runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let observed = rt.block_on(async {
                let target = args.target.connect().await?;
                let snap = target.observe(desired).await;
                if let Some(sim) = target.sim {
                    sim.shutdown().await;
                }
                Ok::<_, Diagnostic>((snap?, target.source))
            });
            match observed {
                Ok(x) => {
                    // Secret values, when available, let the plan show value changes.
                    match super::target::secret_values(desired, &loaded.dir, args.target.sim.is_some()) {
                        Ok(v) => values = Some(v),
                        Err(d) => eprint_diag(
                            &Diagnostic::warning(format!("secret values are not available ({} missing): changes to them are not shown", d.error_count()))
                                .hint("apply reads them; export them to see value changes in the plan"),
                        ),
                    }
                    x
                }
                Err(d) => {
                    eprint_diag(&d);
                    return super::EXIT_ERROR;
                }
            }
        }
        None => {
            eprintln!(
                "(planning against an empty organization: use --sim, or set FLY_API_TOKEN, to compare with what exists)"
            );
            (Snapshot::empty(&desired.org), "empty".to_string())
        }
    };
    if let Some(path) = &args.show_state {
        let json = serde_json::to_string_pretty(&snapshot).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, json) {
            eprint_diag(&Diagnostic::error(format!(
                "cannot write {}: {e}",
                path.display()
            )));
            return super::EXIT_ERROR;
        }
    }
    if snapshot.org != desired.org {
        eprint_diag(
            &Diagnostic::error(format!(
                "the observed state is of org `{}` but the spec declares org `{}`",
                snapshot.org, desired.org
            ))
            .hint("observe the spec's organization, or fix `org:` in the spec"),
        );
        return super::EXIT_ERROR;
    }
    let mut desired_fp;
    let desired: &crate::resource::Desired = match &values {
        Some(v) => {
            desired_fp = desired.clone();
            crate::secrets::apply_fingerprints(&mut desired_fp, v);
            &desired_fp
        }
        None => desired,
    };
    let observed = interpret(&snapshot, desired);
    let plan = compute_plan(desired, &observed, &args.tenants, &args.pricing);
    let meta = PlanMeta {
        org: &desired.org,
        spec_file: &loaded.file,
        spec_hash: &loaded.spec_hash,
        observed_fingerprint: &observed.fingerprint,
        observed_source: &source,
        tenants: &args.tenants,
        created_at: chrono::Utc::now(),
    };
    let has_errors = !plan.errors.is_empty();
    let has_changes = plan.has_changes();
    let mut doc = PlanDocument::new(plan, &meta, &observed.unmanaged, None);
    if let Some(out) = &args.out {
        // A saved plan carries the (narrowed) desired state that `apply` will execute.
        doc.desired = Some(crate::plan::filter_tenants(
            &desired.resources,
            &args.tenants,
        ));
        let saved = doc.save(out);
        doc.desired = None;
        if let Err(d) = saved {
            eprint_diag(&d);
            return super::EXIT_ERROR;
        }
        eprintln!(
            "Saved the plan to {}; apply it with `flotilla apply {}`.",
            out.display(),
            out.display()
        );
    }
    let style = if args.no_color {
        Style::plain()
    } else {
        Style::detect()
    };
    print_out(&match args.format {
        Format::Text => plan_text(&doc, Some(&desired.resources), style),
        Format::Json => match plan_json(&doc) {
            Ok(json) => json + "\n",
            Err(d) => {
                eprint_diag(&d);
                return super::EXIT_ERROR;
            }
        },
        Format::Markdown => plan_markdown(&doc),
    });
    // The process exits next: handing large structures back to the allocator one piece
    // at a time would only delay the exit.
    std::mem::forget(doc);
    std::mem::forget(observed);
    std::mem::forget(loaded);
    if has_errors {
        return super::EXIT_ERROR;
    }
    if args.detailed_exitcode && has_changes {
        super::EXIT_CHANGES
    } else {
        super::EXIT_OK
    }
}
