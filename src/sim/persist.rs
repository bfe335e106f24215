//! The state file: the world as JSON, written atomically (temporary file + rename) and
//! read back strictly. A corrupt or foreign file is an error, never a silent reset.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SimError;
use super::world::World;

const FORMAT: &str = "flotilla-sim-state";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    world: World,
}

fn corrupt(path: &Path, message: impl Into<String>) -> SimError {
    SimError::State {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The largest state file read, in bytes.
pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads the world from `path` (a regular file of at most [`MAX_STATE_BYTES`]); a
/// missing file is an empty world.
pub(crate) fn load(path: &Path) -> Result<World, SimError> {
    let bytes = match crate::fsutil::read_bounded(path, MAX_STATE_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(World::default()),
        Err(e) => return Err(corrupt(path, e.to_string())),
    };
    if let Some((at, b)) = crate::fsutil::first_control_char(&bytes) {
        let m = crate::spec::yaml::mark_at(&bytes, at);
        return Err(corrupt(
            path,
            format!(
                "{}:{}: the control character {} is not allowed",
                m.line,
                m.col,
                crate::fsutil::control_char_name(b)
            ),
        ));
    }
    let head: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(path, format!("not valid JSON ({e})")))?;
    if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(corrupt(
            path,
            format!("not a flotilla simulator state file (expected \"format\": \"{FORMAT}\")"),
        ));
    }
    let version = head.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(VERSION)) {
        return Err(corrupt(
            path,
            format!(
                "unsupported state file version {version:?}; this flotilla reads version {VERSION}"
            ),
        ));
    }
    let file: StateFile = serde_json::from_value(head)
        .map_err(|e| corrupt(path, format!("invalid simulator state: {e}")))?;
    Ok(file.world)
}

/// Serializes the world (call with the world locked, then write without the lock).
pub(crate) fn serialize(world: &World) -> Result<Vec<u8>, SimError> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        format: &'a str,
        version: u32,
        world: &'a World,
    }
    serde_json::to_vec(&Borrowed {
        format: FORMAT,
        version: VERSION,
        world,
    })
    .map_err(|e| SimError::Io(std::io::Error::other(e)))
}

/// Writes `bytes` to `path` atomically ([`crate::fsutil::write_atomic`]), creating the
/// directory first.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    Ok(crate::fsutil::write_atomic(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("sim.json");
        assert_eq!(load(&path).unwrap(), World::default());
        let w = World {
            epoch: 3,
            ..World::default()
        };
        write_atomic(&path, &serialize(&w).unwrap()).unwrap();
        assert_eq!(load(&path).unwrap(), w);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());

        for bad in [
            "",
            "{",
            "[]",
            r#"{"format":"other"}"#,
            r#"{"format":"flotilla-sim-state","version":9}"#,
            r#"{"format":"flotilla-sim-state","version":1,"world":{"apps":3}}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(err.contains("sim.json"), "{err}");
        }
    }

    #[test]
    fn hostile_state_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        fs::write(&path, b"{\"format\":\0}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("1:11") && err.contains("NUL"), "{err}");
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
        let err = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("device"), "{err}");
    }
}
