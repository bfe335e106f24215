//! Embeds every file under `pricing/` into the binary, so the tool prices fleets anywhere
//! without the source tree. Generates `$OUT_DIR/embedded_pricing.rs` with one
//! `(relative path, include_str!(absolute path))` entry per file.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=pricing");
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = PathBuf::from(manifest_dir).join("pricing");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut src = String::from(
        "/// Every file under `pricing/`: path relative to `pricing/`, and contents.\n\
         pub static FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        src.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.to_string_lossy()
        ));
    }
    src.push_str("];\n");
    let out_dir = env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = fs::write(PathBuf::from(out_dir).join("embedded_pricing.rs"), src) {
        panic!("cannot write the embedded pricing index: {e}");
    }
}
