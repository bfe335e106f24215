//! `validate`: check spec files and count what each declares. Every file is checked;
//! an invalid one does not stop the others.

use std::path::PathBuf;

use crate::diag::Diagnostics;
use crate::resource::Kind;
use crate::secret_files::{FilePolicy, checked};

/// Which files to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub specs: Vec<PathBuf>,
    /// Where `file:` secrets may be and how large (`--secrets-dir`, `--secret-max-bytes`).
    pub secret_files: FilePolicy,
}

/// What a valid spec declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tenants: usize,
    pub apps: usize,
    pub machines: usize,
    pub volumes: usize,
    pub secrets: usize,
    /// Every resource (backup policies included).
    pub resources: usize,
}

/// One file's result: its counts and warnings, or every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub file: PathBuf,
    pub result: Result<(Counts, Diagnostics), Diagnostics>,
}

impl FileReport {
    pub fn is_valid(&self) -> bool {
        self.result.is_ok()
    }
}

/// Each file's report, in the order given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub files: Vec<FileReport>,
}

impl Outcome {
    pub fn all_valid(&self) -> bool {
        self.files.iter().all(FileReport::is_valid)
    }
}

/// `validate SPEC…`.
pub fn run(opts: &Options) -> Outcome {
    let files = opts
        .specs
        .iter()
        .map(|path| FileReport {
            file: path.clone(),
            result: crate::spec::load_file(path)
                .and_then(|l| checked(l, &opts.secret_files))
                .map(|l| {
                    let d = &l.desired;
                    let r = &d.resources;
                    let counts = Counts {
                        tenants: d.tenants.len(),
                        apps: r.count(Kind::App),
                        machines: r.count(Kind::Machine),
                        volumes: r.count(Kind::Volume),
                        secrets: r.count(Kind::Secret),
                        resources: r.len(),
                    };
                    (counts, l.warnings)
                }),
        })
        .collect();
    Outcome { files }
}
