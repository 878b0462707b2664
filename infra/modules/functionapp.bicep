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

var flexPlanSku = {
  name: 'FC1'
  tier: 'FlexConsumption'
}

var premiumPlanSku = {
  name: premiumSku
  tier: 'ElasticPremium'
}

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  // checkov:skip=CKV_AZURE_225:Zone redundancy depends on regional support (and at least 3 always-on instances on Premium); it is a cost decision left to the deployer, not a default.
  sku: isFlex ? flexPlanSku : premiumPlanSku
  properties: {
    // Linux.
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : premiumMaximumElasticWorkerCount
  }
}

// One site resource for both plans. Flex Consumption rejects the Premium-only siteConfig
// properties outright (ftpsState, functionAppScaleLimit, minimumElasticInstanceCount: "invalid
// for Flex Consumption sites"), so those are null there, which leaves them out of the request;
// Premium has no functionAppConfig.
resource site 'Microsoft.Web/sites@2024-11-01' = {
  // Reviewed checkov findings (scripts/check-infra.sh fails on any other):
  // checkov:skip=CKV_AZURE_222:The public endpoint serves the Ingest HTTP function (function key) and Entra ID-authenticated zip deployment; queue and timer functions take no inbound traffic. Add access restrictions or a private endpoint where policy requires.
  // checkov:skip=CKV_AZURE_17:Incoming client certificates are not used: HTTP callers (Logic Apps, playbooks) authenticate with a function key, and nothing else calls the app.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design (instances are added per trigger load); the Premium option keeps one instance warm (minimumElasticInstanceCount 1).
  // checkov:skip=CKV_AZURE_213:No platform health-check path: the Functions host itself supervises the custom handler (readiness probe GET /, restart on failure), and a health path would need an extra anonymous HTTP function.
  // checkov:skip=CKV_AZURE_78:FTP is disabled on Premium (ftpsState Disabled, FTP basic auth off); Flex Consumption has no FTP at all and rejects the ftpsState property, hence the conditional value checkov cannot read.
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
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityResourceId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(appSettings, platformSettings, isFlex ? [] : premiumSettings)
      // Premium only (null = not sent).
      ftpsState: isFlex ? null : 'Disabled'
      minimumElasticInstanceCount: isFlex ? null : 1
      functionAppScaleLimit: isFlex ? null : premiumMaximumElasticWorkerCount
    }
    functionAppConfig: isFlex ? flexFunctionAppConfig : null
  }
}

// Deployment with Entra ID only: no basic-auth publishing credentials (SCM always; FTP on
// Premium, Flex Consumption has no FTP).
resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = if (!isFlex) {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output packageUrl string = isFlex ? deploymentContainerUrl : '${deploymentContainerUrl}/${premiumPackageBlobName}'
