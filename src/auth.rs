//! Credentials: the Function App's managed identity (user-assigned via `AZURE_CLIENT_ID`), or the
//! Azure CLI login for `ti-ingest upload` from a laptop. No secrets, no keys: a token credential
//! is the only way ti-ingest authenticates, to storage and to the upload APIs alike.
//!
//! `azure_identity` 1.x caches tokens and refreshes them before expiry; it does not read
//! `AZURE_CLIENT_ID` itself, so the client id is passed explicitly. Tokens are never logged.

use std::sync::Arc;

use anyhow::{Context, Result};
use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};

pub type Credential = Arc<dyn TokenCredential>;

/// The managed identity of the Function App.
pub fn managed_identity(client_id: Option<&str>) -> Result<Credential> {
    crate::install_crypto_provider();
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|c| UserAssignedId::ClientId(c.to_string())),
        ..Default::default()
    };
    let cred = ManagedIdentityCredential::new(Some(options))
        .context("creating the managed identity credential")?;
    Ok(cred)
}

/// Whether the App Service / Functions managed identity endpoint is configured. Without it the
/// credential falls back to the VM metadata endpoint, which only fails after a long timeout.
pub fn identity_endpoint_configured() -> bool {
    std::env::var_os("IDENTITY_ENDPOINT").is_some() && std::env::var_os("IDENTITY_HEADER").is_some()
}

/// The CLI's choice: managed identity when the identity endpoint is configured, else the Azure CLI.
pub fn from_environment(client_id: Option<&str>) -> Result<Credential> {
    if identity_endpoint_configured() {
        managed_identity(client_id)
    } else {
        let cred = AzureCliCredential::new(None).context("creating the Azure CLI credential")?;
        Ok(cred)
    }
}

/// Gets a token for `scope`, returning the bearer value. Errors never include the token.
pub async fn bearer(credential: &Credential, scope: &str) -> Result<String> {
    let token = credential
        .get_token(&[scope], None)
        .await
        .with_context(|| format!("getting a token for {scope}"))?;
    Ok(token.token.secret().to_string())
}
