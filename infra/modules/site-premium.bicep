// The Function App on Elastic Premium (deployed by functionapp.bicep on that plan only): no
// functionAppConfig (Flex Consumption only); runtime and package come from app settings.

param name string
param location string
param tags object = {}

@description('Resource id of the hosting plan.')
param planId string

@description('Resource id of the user-assigned managed identity.')
param identityResourceId string

@description('Every app setting of the app, as name/value pairs.')
param appSettings array

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(100)
param functionAppScaleLimit int

resource site 'Microsoft.Web/sites@2024-11-01' = {
  // Reviewed checkov findings (scripts/check-infra.sh fails on any other):
  // checkov:skip=CKV_AZURE_222:The public endpoint serves the Ingest HTTP function (function key) and Entra ID-authenticated zip deployment; queue and timer functions take no inbound traffic. Add access restrictions or a private endpoint where policy requires.
  // checkov:skip=CKV_AZURE_17:Incoming client certificates are not used: HTTP callers (Logic Apps, playbooks) authenticate with a function key, and nothing else calls the app.
  // checkov:skip=CKV_AZURE_213:No platform health-check path: the Functions host itself supervises the custom handler (readiness probe GET /, restart on failure), and a health path would need an extra anonymous HTTP function.
  // checkov:skip=CKV_AZURE_212:One instance stays warm (minimumElasticInstanceCount 1); a second for failover is a cost decision left to the deployer.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityResourceId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: appSettings
      ftpsState: 'Disabled'
      minimumElasticInstanceCount: 1
      functionAppScaleLimit: functionAppScaleLimit
    }
  }
}

// Deployment with Entra ID only: no basic-auth publishing credentials, neither SCM nor FTP.
resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

output id string = site.id
output defaultHostName string = site.properties.defaultHostName
