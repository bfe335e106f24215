//! The client's IP-assignment and certificate calls (`/apps/{app}/ip_assignments`,
//! `/apps/{app}/certificates`). A child of `client` so that it shares its request
//! machinery (rate limits, retries, unknown outcomes, error messages).

use reqwest::Method;

use super::{ApiError, Client, Repeat, enc};
use crate::fly::ratelimit::Act;
use crate::resource::IpKind;
use crate::wire::network::{
    AssignIpRequest, AssignIpResponse, Certificate, CertificateList, CreateCertificateRequest,
    IpAssignment, IpList,
};

/// Certificates per page when listing.
const CERT_PAGE: usize = 200;
/// Pages read at most (a bound on a misbehaving cursor).
const MAX_CERT_PAGES: usize = 100;

impl Client {
    pub async fn list_ips(&self, app: &str) -> Result<Vec<IpAssignment>, ApiError> {
        let path = format!("/apps/{}/ip_assignments", enc(app));
        let list: IpList = self.get(&path, Act::IpList, app).await?;
        Ok(list.ips)
    }

    /// Assigns an address of `kind` (a Flycast one on `network`, else the org's default).
    /// An unknown outcome is returned as such: list the app's addresses and look.
    pub async fn assign_ip(
        &self,
        app: &str,
        org: &str,
        kind: IpKind,
        network: Option<&str>,
    ) -> Result<AssignIpResponse, ApiError> {
        let path = format!("/apps/{}/ip_assignments", enc(app));
        let body = AssignIpRequest {
            kind: kind.as_str().to_string(),
            org_slug: Some(org.to_string()),
            network: network.map(str::to_string),
            region: None,
        };
        let body = serde_json::to_value(&body).map_err(|e| ApiError::Transport {
            method: "POST".into(),
            path: path.clone(),
            cause: format!("cannot encode the request: {e}"),
        })?;
        self.json(
            Method::POST,
            &path,
            Act::IpAssign,
            app,
            Some(&body),
            &[],
            Repeat::Once,
        )
        .await
    }

    /// Releases an address; one already gone is done.
    pub async fn release_ip(&self, app: &str, ip: &str) -> Result<(), ApiError> {
        let path = format!("/apps/{}/ip_assignments/{}", enc(app), enc(ip));
        self.delete(&path, Act::IpRelease, app, &[]).await
    }

    /// Every certificate of the app (following the list's cursor, bounded).
    pub async fn list_certificates(&self, app: &str) -> Result<Vec<Certificate>, ApiError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_CERT_PAGES {
            let mut path = format!("/apps/{}/certificates?limit={CERT_PAGE}", enc(app));
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", enc(c)));
            }
            let page: CertificateList = self.get(&path, Act::CertList, app).await?;
            let full = page.certificates.len() >= CERT_PAGE;
            out.extend(page.certificates);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(c) if full => cursor = Some(c),
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn get_certificate(
        &self,
        app: &str,
        hostname: &str,
    ) -> Result<Option<Certificate>, ApiError> {
        let path = format!("/apps/{}/certificates/{}", enc(app), enc(hostname));
        self.get_found(&path, Act::CertGet, app).await
    }

    /// Adds a hostname and starts ACME issuance. Repeating it for a hostname the app
    /// already has changes nothing, so it is safe to retry.
    pub async fn create_acme_certificate(
        &self,
        app: &str,
        hostname: &str,
    ) -> Result<Certificate, ApiError> {
        let path = format!("/apps/{}/certificates/acme", enc(app));
        let body = serde_json::json!(CreateCertificateRequest {
            hostname: hostname.to_string(),
        });
        self.json(
            Method::POST,
            &path,
            Act::CertCreate,
            app,
            Some(&body),
            &[],
            Repeat::Safe,
        )
        .await
    }

    /// Asks Fly to check the DNS records and issue when they are in place.
    pub async fn check_certificate(
        &self,
        app: &str,
        hostname: &str,
    ) -> Result<Certificate, ApiError> {
        let path = format!("/apps/{}/certificates/{}/check", enc(app), enc(hostname));
        self.json(
            Method::POST,
            &path,
            Act::CertCheck,
            app,
            None,
            &[],
            Repeat::Safe,
        )
        .await
    }

    /// Removes a hostname and its certificates; one already gone is done.
    pub async fn delete_certificate(&self, app: &str, hostname: &str) -> Result<(), ApiError> {
        let path = format!("/apps/{}/certificates/{}", enc(app), enc(hostname));
        self.delete(&path, Act::CertDelete, app, &[]).await
    }
}
