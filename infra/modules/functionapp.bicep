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

// Platform limits of the Flex Consumption scale-out ceiling: lowest 40, highest 1000 (Microsoft
// Learn, https://learn.microsoft.com/azure/azure-functions/event-driven-scaling#flex-consumption-plan:
// "Currently the lowest maximum instance count value is 40, and the highest supported maximum
// instance count value is 1000"; the same bounds as the Azure-Samples Flex templates, e.g.
// Azure-Samples/azure-functions-flex-consumption-samples, IaC/bicep/main.bicep: `@minValue(40)
// @maxValue(1000)`). Values below 40 are accepted only in a few preview regions (Azure Functions
// team, Azure/azure-functions-host#10523, 2026-01-05: West Europe, Australia East, West US 2).
@description('Flex Consumption: most instances per scale group (40..1000, the platform\'s bounds).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Premium: the Elastic Premium SKU.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param premiumSku string = 'EP1'

// Elastic Premium on Linux scales out to at most 100 instances (Microsoft Learn,
// https://learn.microsoft.com/azure/azure-functions/functions-scale#scale: "Premium plan ... 100
// (Linux)"; fewer in some regions).
@description('Premium: most instances the plan scales out to.')
@minValue(1)
@maxValue(100)
param premiumMaximumElasticWorkerCount int = 10

@description('Blob service URL of the app\'s storage account, without a trailing \'/\' (host storage and deployment package).')
param blobEndpoint string

@description('Queue service URL of that account, without a trailing \'/\'.')
param queueEndpoint string

@description('Table service URL of that account, without a trailing \'/\'.')
param tableEndpoint string

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

var deploymentContainerUrl = '${blobEndpoint}/${deploymentContainerName}'

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
// The service-URI form, not `__accountName`: the account-name form assumes the public cloud's
// storage suffix and is not valid in sovereign clouds or with custom DNS (Microsoft Learn,
// https://learn.microsoft.com/azure/azure-functions/functions-app-settings#azurewebjobsstorage__accountname:
// "For sovereign clouds or when using a custom DNS, you must instead use the service-specific
// AzureWebJobsStorage__*ServiceUri settings"; the host needs blob, queue and table:
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
var platformSettings = [
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: blobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: queueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: tableEndpoint
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

// Properties that exist on one plan only are merged in with union() on that plan, never set to
// null on the other: a property is either sent with a value or absent.
var planProperties = {
  // Linux.
  reserved: true
}

var premiumPlanProperties = {
  maximumElasticWorkerCount: premiumMaximumElasticWorkerCount
}

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  // checkov:skip=CKV_AZURE_225:Zone redundancy depends on regional support (and at least 3 always-on instances on Premium); it is a cost decision left to the deployer, not a default.
  sku: isFlex ? flexPlanSku : premiumPlanSku
  properties: union(planProperties, isFlex ? {} : premiumPlanProperties)
}

// The site itself: one module per plan, deployed on that plan only.
module flexSite 'site-flex.bicep' = if (isFlex) {
  name: '${name}-site-flex'
  params: {
    name: name
    location: location
    tags: tags
    planId: plan.id
    identityResourceId: identityResourceId
    appSettings: concat(appSettings, platformSettings)
    functionAppConfig: flexFunctionAppConfig
  }
}

module premiumSite 'site-premium.bicep' = if (!isFlex) {
  name: '${name}-site-premium'
  params: {
    name: name
    location: location
    tags: tags
    planId: plan.id
    identityResourceId: identityResourceId
    appSettings: concat(appSettings, platformSettings, premiumSettings)
    functionAppScaleLimit: premiumMaximumElasticWorkerCount
  }
}

output name string = name
output id string = isFlex ? flexSite.outputs.id : premiumSite.outputs.id
output defaultHostName string = isFlex ? flexSite.outputs.defaultHostName : premiumSite.outputs.defaultHostName
output packageUrl string = isFlex ? deploymentContainerUrl : '${deploymentContainerUrl}/${premiumPackageBlobName}'
