//! A small HTTPS client for the API, trusting only the cluster CA (CLI commands and the benchmark).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

/// Builds a client that trusts the CA in `ca_file`.
pub fn https_client(ca_file: &Path, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let ca = std::fs::read(ca_file)
        .with_context(|| format!("cannot read CA file {}; pass --ca", ca_file.display()))?;
    let tls = roomraft_cluster::tls::api_client_config(&ca)?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .build()?)
}

/// Sends a request and returns the JSON body, or an error carrying the API's message.
pub async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let resp = req
        .send()
        .await
        .context("cannot reach the node; is it running?")?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let msg = body
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        bail!("{status}: {msg}");
    }
    Ok(body)
}
