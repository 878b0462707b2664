// The Function App that runs the ti-ingest custom handler (host.json starts the `ti-ingest`
// binary). Flex Consumption by default; Elastic Premium as an option. Everything the host and the
// handler reach is reached with the user-assigned managed identity.

param name string
param location string
param tags object = {}

@description('Hosting plan name.')
param planName string

@allowed([
  'FlexConsumption'
  'Premium'
])
param hostingPlan string = 'FlexConsumption'

@description('Flex Consumption: memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption: most instances per scale group.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Premium: the Elastic Premium SKU.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param premiumSku string = 'EP1'

@description('Premium: most instances the plan scales out to.')
@minValue(1)
@maxValue(100)
param premiumMaximumElasticWorkerCount int = 10

@description('The app\'s storage account (host storage and deployment package).')
param storageAccountName string

@description('Container holding the deployment package.')
param deploymentContainerName string

@description('Premium: name of the package blob the app runs from.')
param premiumPackageBlobName string = 'ti-ingest.zip'

@description('Resource id of the user-assigned managed identity.')
param identityResourceId string

@description('Client id of that identity.')
param identityClientId string

@description('Application Insights connection string (local authentication is disabled on the component).')
param appInsightsConnectionString string

@description('The handler\'s own settings (TI_*, AZURE_CLIENT_ID) as name/value pairs.')
param appSettings array

var isFlex = hostingPlan == 'FlexConsumption'

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

var deploymentContainerUrl = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'

// Flex Consumption: the runtime is `custom` (a custom handler; host.json names the binary) and the
// package lives in a blob container that the platform reads with the identity.
var flexFunctionAppConfig = {
  runtime: {
    name: 'custom'
    version: '1.0'
  }
  deployment: {
    storage: {
      type: 'blobContainer'
      value: deploymentContainerUrl
      authentication: {
        type: 'UserAssignedIdentity'
        userAssignedIdentityResourceId: identityResourceId
      }
    }
  }
  scaleAndConcurrency: {
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Host storage with the identity (no AzureWebJobsStorage connection string) and Application
// Insights with Entra ID authentication. The queue triggers use the same `AzureWebJobsStorage`
// connection (function.json), so they authenticate the same way.
var platformSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: account.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

// Elastic Premium has no functionAppConfig: the runtime is set by app settings, and the app runs
// from a package blob read with the identity instead of an Azure Files content share (Azure Files
// would need an account key, which this storage account does not allow).
var premiumSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'custom'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE'
    value: '${deploymentContainerUrl}/${premiumPackageBlobName}'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
    value: identityResourceId
  }
]

var identity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identityResourceId}': {}
  }
}

// Flex Consumption and Elastic Premium take different site shapes: Flex rejects the
// Premium-only siteConfig properties (ftpsState, functionAppScaleLimit, ...) outright, and
// Premium has no functionAppConfig. One resource each, exactly one of them deployed.

resource flexPlan 'Microsoft.Web/serverfarms@2024-11-01' = if (isFlex) {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225:Zone redundancy depends on regional support; it is a cost decision left to the deployer, not a default.
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux.
    reserved: true
  }
}

resource flexSite 'Microsoft.Web/sites@2024-11-01' = if (isFlex) {
  // Reviewed checkov findings (scripts/check-infra.sh fails on any other):
  // checkov:skip=CKV_AZURE_222:The public endpoint serves the Ingest HTTP function (function key) and Entra ID-authenticated zip deployment; queue and timer functions take no inbound traffic. Add access restrictions or a private endpoint where policy requires.
  // checkov:skip=CKV_AZURE_17:Incoming client certificates are not used: HTTP callers (Logic Apps, playbooks) authenticate with a function key, and nothing else calls the app.
  // checkov:skip=CKV_AZURE_213:No platform health-check path: the Functions host itself supervises the custom handler (readiness probe GET /, restart on failure), and a health path would need an extra anonymous HTTP function.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; instances are added per trigger load.
  // checkov:skip=CKV_AZURE_78:FTP does not exist on Flex Consumption, which rejects the ftpsState property; deployment goes through the blob container.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: identity
  properties: {
    serverFarmId: flexPlan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityResourceId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(appSettings, platformSettings)
    }
    functionAppConfig: flexFunctionAppConfig
  }
}

resource premiumPlan 'Microsoft.Web/serverfarms@2024-11-01' = if (!isFlex) {
  name: planName
  location: location
  tags: tags
  kind: 'elastic'
  // checkov:skip=CKV_AZURE_225:Zone redundancy needs at least 3 always-on Premium instances and regional support; it is a cost decision left to the deployer, not a default.
  sku: {
    name: premiumSku
    tier: 'ElasticPremium'
  }
  properties: {
    // Linux.
    reserved: true
    maximumElasticWorkerCount: premiumMaximumElasticWorkerCount
  }
}

resource premiumSite 'Microsoft.Web/sites@2024-11-01' = if (!isFlex) {
  // Reviewed checkov findings (scripts/check-infra.sh fails on any other):
  // checkov:skip=CKV_AZURE_222:The public endpoint serves the Ingest HTTP function (function key) and Entra ID-authenticated zip deployment; queue and timer functions take no inbound traffic. Add access restrictions or a private endpoint where policy requires.
  // checkov:skip=CKV_AZURE_17:Incoming client certificates are not used: HTTP callers (Logic Apps, playbooks) authenticate with a function key, and nothing else calls the app.
  // checkov:skip=CKV_AZURE_213:No platform health-check path: the Functions host itself supervises the custom handler (readiness probe GET /, restart on failure), and a health path would need an extra anonymous HTTP function.
  // checkov:skip=CKV_AZURE_212:Elastic Premium keeps one instance always warm (minimumElasticInstanceCount 1) and scales out on trigger load.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: identity
  properties: {
    serverFarmId: premiumPlan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityResourceId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      minimumElasticInstanceCount: 1
      functionAppScaleLimit: premiumMaximumElasticWorkerCount
      appSettings: concat(appSettings, platformSettings, premiumSettings)
    }
  }
}

// Deployment with Entra ID only: no basic-auth publishing credentials (SCM; FTP on Premium,
// Flex has no FTP).
resource flexScmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = if (isFlex) {
  parent: flexSite
  name: 'scm'
  properties: {
    allow: false
  }
}

resource premiumScmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = if (!isFlex) {
  parent: premiumSite
  name: 'scm'
  properties: {
    allow: false
  }
}

resource premiumFtpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = if (!isFlex) {
  parent: premiumSite
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = name
output id string = resourceId('Microsoft.Web/sites', name)
output defaultHostName string = isFlex ? flexSite.properties.defaultHostName : premiumSite.properties.defaultHostName
output packageUrl string = isFlex ? deploymentContainerUrl : '${deploymentContainerUrl}/${premiumPackageBlobName}'
