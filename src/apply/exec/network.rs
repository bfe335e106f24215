//! IP assignments and custom-domain certificates. An address whose answer was lost is
//! looked up among the app's addresses of that kind before it is asked for again (a
//! second dedicated IPv4 would be billed); creating a certificate for a hostname the
//! app already has changes nothing, so it is simply repeated.

use super::confirm::{Acted, act_confirmed};
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::client::ApiError;
use crate::resource::{IpKind, Spec};

/// Assignments attempted when every outcome is unknown.
const ATTEMPTS: u32 = 3;

/// The app's address of `kind`, if it has one.
async fn find_ip(sh: &Shared, app: &str, kind: IpKind) -> Result<Option<String>, ApiError> {
    let ips = sh.client.list_ips(app).await?;
    Ok(ips
        .into_iter()
        .find(|a| !a.egress && IpKind::of_assignment(&a.ip, a.shared) == kind)
        .map(|a| a.ip))
}

pub(super) async fn assign(sh: &Shared, op: &Op) -> OpResult {
    let Some(Spec::Ip(ip)) = sh.desired.get(&op.address).map(|r| &r.spec) else {
        return Err(OpError::internal("not an IP address"));
    };
    let (app, kind, network) = (op.app.as_str(), ip.ip_kind, ip.network.as_deref());
    if let Some(existing) = find_ip(sh, app, kind).await? {
        return Ok(format!("{kind} {existing} (already assigned)"));
    }
    let acted = act_confirmed(
        ATTEMPTS,
        || async move {
            let r = sh.client.assign_ip(app, &sh.org, kind, network).await?;
            Ok(r.ip.unwrap_or_default())
        },
        || find_ip(sh, app, kind),
    )
    .await?;
    Ok(match acted {
        Acted::Answered(a) => format!("{kind} {a}"),
        Acted::Confirmed(a) => format!("{kind} {a} (assigned; its response was lost)"),
    })
}

pub(super) async fn release(sh: &Shared, op: &Op, ip: &str) -> OpResult {
    if ip.is_empty() {
        return Err(OpError::internal("the address to release is not known"));
    }
    sh.client.release_ip(&op.app, ip).await?;
    Ok(format!("released {ip}"))
}

pub(super) async fn create_certificate(sh: &Shared, op: &Op, hostname: &str) -> OpResult {
    let cert = sh.client.create_acme_certificate(&op.app, hostname).await?;
    let status = if cert.status.is_empty() {
        "pending"
    } else {
        cert.status.as_str()
    };
    Ok(format!(
        "{hostname}: {status} (see `flotilla dns` for its DNS records)"
    ))
}

pub(super) async fn delete_certificate(sh: &Shared, op: &Op, hostname: &str) -> OpResult {
    sh.client.delete_certificate(&op.app, hostname).await?;
    Ok(format!("removed {hostname}"))
}
