//! How the simulator plays an export image (a one-shot Machine whose environment
//! follows the contract in `ops::backup`): `export` copies the mounted volume's content
//! tag into the world's object store when the Machine exits successfully, `restore`
//! writes a stored object's tag to the mounted volume. The size reported is the
//! volume's stored bytes (1 MiB per content character, at least 1 MiB), enough to
//! test the reporting path.

use crate::sim::model::MachineConfig;
use crate::sim::world::{Job, StoredObject, World};

/// The mode variable of the contract and its values.
const MODE: &str = "FLOTILLA_BACKUP_MODE";
const URL: &str = "FLOTILLA_BACKUP_URL";
const ID: &str = "FLOTILLA_BACKUP_ID";
const KEEP: &str = "FLOTILLA_BACKUP_KEEP";
const ENCRYPTION: &str = "FLOTILLA_BACKUP_ENCRYPTED";

/// The job of a one-shot Machine with `config` in `app`: `Ok(None)` for an image that
/// is not an export image, `Err(())` for a restore that finds no object (the image
/// would exit with a failure).
pub(crate) fn job_of(
    world: &mut World,
    app: &str,
    config: &MachineConfig,
) -> Result<Option<Job>, ()> {
    let Some(env) = config.env.as_ref() else {
        return Ok(None);
    };
    let get = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
    let (url, id) = (get(URL), get(ID));
    match get(MODE) {
        "export" => {
            let content = config
                .mounted_volume()
                .and_then(|v| world.apps.get(app)?.volumes.get(v))
                .map(|v| v.content.clone())
                .unwrap_or_default();
            let bytes = (content.len().max(1) as u64) << 20;
            Ok(Some(Job::Export {
                object: StoredObject {
                    key: format!("{}/{id}", url.trim_end_matches('/')),
                    content,
                    bytes,
                    encrypted: get(ENCRYPTION) == "true",
                    keep: get(KEEP).parse().unwrap_or(1),
                },
            }))
        }
        "restore" => match world.find_object(url, id) {
            Some(o) => Ok(Some(Job::Restore {
                content: o.content.clone(),
            })),
            None => Err(()),
        },
        _ => Ok(None),
    }
}

impl crate::sim::SimControl {
    /// Every object in the off-site store, by key (what export images wrote).
    pub fn objects(&self) -> Vec<StoredObject> {
        let t = crate::sim::clock::now_ms();
        let mut world = self.sim.world();
        for a in world.apps.values_mut() {
            a.advance_all(t, &self.sim.timing);
        }
        world.collect_exports();
        world.objects.values().cloned().collect()
    }
}

async fn control_objects(
    axum::extract::State(sim): super::AppState,
) -> crate::sim::error::ApiResult {
    let ctl = crate::sim::SimControl { sim: sim.clone() };
    Ok(super::ok_json(serde_json::json!(ctl.objects())))
}

/// `GET /__sim/objects`.
pub(crate) fn control_routes() -> axum::Router<std::sync::Arc<crate::sim::server::Sim>> {
    axum::Router::new().route("/__sim/objects", axum::routing::get(control_objects))
}
