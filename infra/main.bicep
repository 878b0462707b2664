// ti-ingest on Azure: a Linux Function App (custom handler) that uploads threat-intelligence
// indicators to Microsoft Sentinel with a user-assigned managed identity.
//
//   az deployment group create -g <rg> -f infra/main.bicep \
//     -p workspaceName=<sentinel workspace> workspaceResourceGroup=<its resource group>
//
// What it creates (docs/DEPLOY.md walks through it):
// - a user-assigned managed identity, used for everything: host storage, the app's own blob and
//   queue access, Event Grid delivery, Application Insights and the Sentinel upload API;
// - a storage account without shared-key access (inbox/reports/config/deployment containers, the
//   blob-events/messages/work queues and their -poison twins);
// - an Event Grid system topic on that account whose subscription delivers BlobCreated events for
//   the inbox container to the blob-events queue (delivered with the managed identity);
// - Application Insights (on a new or an existing Log Analytics workspace), identity-based ingestion;
// - the Function App: Flex Consumption (FC1) by default, Elastic Premium (EP1..EP3) as an option;
// - role assignments: Storage Blob Data Owner, Storage Queue Data Contributor and Storage Queue Data
//   Message Sender on the account; Monitoring Metrics Publisher on Application Insights; Microsoft
//   Sentinel Contributor on the target workspace, which may live in another resource group or
//   subscription.
// No keys, connection strings or SAS tokens are created or stored anywhere.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Where the indicators go (app settings TI_TARGET, TI_CLOUD, TI_WORKSPACE_ID, TI_SOURCE_SYSTEM)
// ---------------------------------------------------------------------------------------------

@description('Upload target (TI_TARGET): sentinel-stix (the current Sentinel API, recommended), sentinel-indicators (the older Sentinel API), graph (Microsoft Graph tiIndicators, which Microsoft is retiring), defender (Microsoft Defender for Endpoint indicators; grant Ti.ReadWrite.All, docs/DEPLOY.md step 7) or dry-run (validate and report, send nothing). Several real targets may be listed comma-separated; the handler checks the value at start-up.')
param target string = 'sentinel-stix'

@description('Azure cloud of the Sentinel API host and token scope (TI_CLOUD). Defaults to the cloud this deployment runs in.')
@allowed([
  'public'
  'usgov'
  'china'
])
param cloud string = environment().name == 'AzureUSGovernment' ? 'usgov' : (environment().name == 'AzureChinaCloud' ? 'china' : 'public')

@description('Name of the Log Analytics workspace that Microsoft Sentinel runs on. The identity gets Microsoft Sentinel Contributor on it, and its workspace id (customerId) becomes TI_WORKSPACE_ID. Leave empty for target graph or dry-run, or to assign the role yourself.')
param workspaceName string = ''

@description('Resource group of the Sentinel workspace (may differ from this deployment\'s resource group).')
param workspaceResourceGroup string = resourceGroup().name

@description('Subscription of the Sentinel workspace.')
param workspaceSubscriptionId string = subscription().subscriptionId

@description('Workspace id (a GUID, the workspace\'s customerId) for TI_WORKSPACE_ID. Only needed when workspaceName is empty; when both are given this value wins.')
param workspaceId string = ''

@description('sourcesystem sent to Sentinel (TI_SOURCE_SYSTEM): at most 256 characters and never "Microsoft Sentinel".')
@minLength(1)
@maxLength(256)
param sourceSystem string = 'ti-ingest'

@description('Override of the host of both Sentinel targets (TI_API_BASE_URL); empty = each target\'s own host in the cloud (sentinel-stix: api.ti.sentinel.azure.com/.us/.cn; sentinel-indicators: sentinelus.azure-api.net, public cloud only). Required for sentinel-indicators in usgov and china, where Microsoft publishes no host for that API.')
param apiBaseUrl string = ''

@description('Override of the Sentinel api-version query parameter (TI_SENTINEL_API_VERSION); empty = the target\'s default.')
param sentinelApiVersion string = ''

@description('Graph target only: override of the Graph base URL (TI_GRAPH_BASE_URL); empty = the cloud\'s Graph host.')
param graphBaseUrl string = ''

@description('dry-run only: which target\'s request bodies the dry run builds (TI_DRY_RUN_AS); empty = sentinel-stix.')
@allowed([
  ''
  'sentinel-stix'
  'sentinel-indicators'
  'graph'
  'defender'
])
param dryRunAs string = ''

@description('Graph target only: tiIndicator action (TI_GRAPH_ACTION).')
@allowed([
  'alert'
  'allow'
  'block'
  'unknown'
])
param graphAction string = 'alert'

@description('Graph target only: tiIndicator targetProduct (TI_GRAPH_TARGET_PRODUCT).')
param graphTargetProduct string = 'Azure Sentinel'

@description('Defender target only: override of the Defender for Endpoint API host (TI_DEFENDER_BASE_URL); empty = the cloud\'s host (GCC: https://api-gcc.securitycenter.microsoft.us).')
param defenderBaseUrl string = ''

@description('Defender target only: the indicators\' action (TI_DEFENDER_ACTION). Audit (the default) never blocks; blocking is an explicit choice.')
@allowed([
  'Audit'
  'Alert'
  'Warn'
  'Block'
  'BlockAndRemediate'
  'AlertAndBlock'
  'Allowed'
])
param defenderAction string = 'Audit'

@description('Defender target only: the indicators\' generateAlert (TI_DEFENDER_GENERATE_ALERT); must be true with Audit.')
param defenderGenerateAlert bool = true

@description('Defender target only: comma-separated device group names the indicators apply to (TI_DEFENDER_RBAC_GROUPS); empty = every device.')
param defenderRbacGroups string = ''

@description('Defender target only: active indicators ti-ingest may place in the tenant (TI_DEFENDER_MAX_ACTIVE; Defender holds at most 15,000).')
@minValue(1)
@maxValue(15000)
param defenderMaxActive int = 15000

@description('Defender target only: which records take the last places of the budget (TI_DEFENDER_PRIORITY).')
@allowed([
  'confidence'
  'recency'
])
param defenderPriority string = 'confidence'

// ---------------------------------------------------------------------------------------------
// Pipeline behaviour (docs/SETTINGS.md)
// ---------------------------------------------------------------------------------------------

@description('skip uploads the valid records and reports the rest; reject-file uploads nothing when any record is invalid (TI_ON_INVALID).')
@allowed([
  'skip'
  'reject-file'
])
param onInvalid string = 'skip'

@description('Force one input format (TI_FORMAT); empty = detect from the content.')
@allowed([
  ''
  'stix-bundle'
  'stix-json'
  'ndjson'
  'sentinel-request'
  'graph'
  'csv'
  'text'
  'prose'
])
param inputFormat string = ''

@description('What to do with a relationship whose source_ref/target_ref the target will not hold (TI_DANGLING_RELATIONSHIPS): warn = upload it with a dangling_relationship warning; skip = report it rejected.')
@allowed([
  'warn'
  'skip'
])
param danglingRelationships string = 'warn'

@description('Days added to valid_from when an indicator has no valid_until (TI_DEFAULT_VALID_DAYS); 0 = never expires.')
@minValue(0)
@maxValue(36500)
param defaultValidDays int = 90

@description('confidence given to indicators that have none (TI_DEFAULT_CONFIDENCE).')
@minValue(0)
@maxValue(100)
param defaultConfidence int = 50

@description('TLP marking given to indicators that have none (TI_DEFAULT_TLP).')
@allowed([
  'white'
  'clear'
  'green'
  'amber'
  'red'
])
param defaultTlp string = 'green'

@description('Upload requests per minute for this app (TI_MAX_REQUESTS_PER_MINUTE). The service allows 100 per minute per identity, shared by every instance and every other tool using the same identity.')
@minValue(1)
@maxValue(100000)
param maxRequestsPerMinute int = 100

@description('Objects per upload request (TI_BATCH_SIZE); the service accepts at most 100.')
@minValue(1)
@maxValue(100)
param batchSize int = 100

@description('Upload requests in flight at once per instance (TI_MAX_CONCURRENCY).')
@minValue(1)
@maxValue(64)
param maxConcurrency int = 4

@description('Attempts per batch before its records are reported retries_exhausted (TI_MAX_ATTEMPTS).')
@minValue(1)
@maxValue(100)
param maxAttempts int = 8

@description('Total seconds one batch may spend retrying (TI_MAX_RETRY_SECS).')
@minValue(1)
@maxValue(86400)
param maxRetrySecs int = 300

@description('The handler\'s own deadline per invocation, below host.json functionTimeout (10 minutes) (TI_INVOCATION_DEADLINE_SECS).')
@minValue(30)
@maxValue(590)
param invocationDeadlineSecs int = 540

@description('Records per work item (TI_WORK_ITEM_RECORDS): a larger input continues in follow-up work items on the work queue.')
@minValue(1)
param workItemRecords int = 50000

@description('Largest accepted input in bytes (TI_MAX_INPUT_BYTES); larger inputs are rejected with a report. Default 1 GiB.')
@minValue(1)
param maxInputBytes int = 1073741824

@description('Largest body the Ingest HTTP function accepts, in bytes (TI_MAX_HTTP_BYTES); larger bodies get 413. Default 4 MiB.')
@minValue(1)
@maxValue(104857600)
param maxHttpBytes int = 4194304

@description('NCRONTAB schedule (with seconds) of the Sweep function (TI_SWEEP_SCHEDULE).')
param sweepSchedule string = '0 */15 * * * *'

@description('Sweep leaves inbox blobs younger than this many seconds to their own BlobCreated event (TI_SWEEP_GRACE_SECS).')
@minValue(0)
@maxValue(86400)
param sweepGraceSecs int = 300

@description('Sweep re-drives runs idle for longer than this many seconds (TI_SWEEP_STALE_SECS); 0 = the handler default (invocation deadline + 120).')
@minValue(0)
@maxValue(86400)
param sweepStaleSecs int = 0

@description('NCRONTAB schedule (with seconds) of the PullFeeds function (TI_PULL_SCHEDULE).')
param pullSchedule string = '0 0 * * * *'

@description('container/path of the TAXII and HTTPS feeds configuration read by PullFeeds (TI_FEEDS_CONFIG).')
param feedsConfig string = 'indicator-config/feeds.json'

@description('Log filter of the handler (TI_LOG, tracing EnvFilter syntax).')
param logLevel string = 'info'

// ---------------------------------------------------------------------------------------------
// Storage layout
// ---------------------------------------------------------------------------------------------

@description('Container that users drop indicator files into (TI_INBOX_CONTAINER).')
param inboxContainerName string = 'indicator-inbox'

@description('Container the reports are written to (TI_REPORTS_CONTAINER).')
param reportsContainerName string = 'indicator-reports'

@description('Container for the feeds configuration and pull bookmarks.')
param configContainerName string = 'indicator-config'

@description('Container the deployment package is stored in.')
param deploymentContainerName string = 'app-package'

@description('Queue that Event Grid delivers the inbox BlobCreated events to (TI_BLOB_EVENTS_QUEUE).')
param blobEventsQueueName string = 'indicator-blob-events'

@description('Queue for indicator messages from other services (TI_INBOX_QUEUE).')
param inboxQueueName string = 'indicator-messages'

@description('Queue of the work items large inputs are split into (TI_WORK_QUEUE).')
param workQueueName string = 'indicator-work'

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_LRS'

// ---------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------

// The default follows the cloud: Flex Consumption is not offered in usgov or china, and
// modules/guard.bicep stops a deployment that asks for it there (sources in that file).
@description('Hosting plan: FlexConsumption (serverless, scales to zero; the default in the public cloud) or Premium (Elastic Premium, always warm; the default in usgov and china, where Flex Consumption is not offered).')
@allowed([
  'FlexConsumption'
  'Premium'
])
param hostingPlan string = cloud == 'public' ? 'FlexConsumption' : 'Premium'

@description('Flex Consumption: memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Bounds and sources: modules/functionapp.bicep (the platform accepts 40..1000).
@description('Flex Consumption: most instances per scale group, 40..1000 (the platform\'s lowest allowed value is 40). Every instance shares the identity\'s upload quota (100 requests per minute); the handler retries the 429s that more instances cause.')
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

@description('Premium: most instances the plan scales out to.')
@minValue(1)
@maxValue(100)
param premiumMaximumElasticWorkerCount int = 10

// ---------------------------------------------------------------------------------------------
// Names and placement
// ---------------------------------------------------------------------------------------------

@description('Location of every resource.')
param location string = resourceGroup().location

@description('Prefix of the generated resource names.')
@minLength(2)
@maxLength(20)
param baseName string = 'ti-ingest'

@description('Function App name (globally unique host name).')
param functionAppName string = '${baseName}-${uniqueString(resourceGroup().id, baseName)}'

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param storageAccountName string = take('st${toLower(replace(baseName, '-', ''))}${uniqueString(resourceGroup().id, baseName)}', 24)

@description('User-assigned managed identity name.')
param identityName string = 'id-${functionAppName}'

@description('Hosting plan name.')
param planName string = 'plan-${functionAppName}'

@description('Application Insights name.')
param appInsightsName string = 'appi-${functionAppName}'

@description('Resource id of an existing Log Analytics workspace for Application Insights; empty = create one. (Not the Sentinel workspace: the app\'s own telemetry does not belong there.)')
param logAnalyticsWorkspaceResourceId string = ''

@description('Name of the Log Analytics workspace created for Application Insights when none is given.')
param logAnalyticsName string = 'log-${functionAppName}'

@description('Object id of a user, group or service principal who operates the app: gets Storage Blob Data Contributor (drop files, read reports, upload a Premium package) and Storage Queue Data Message Sender (post indicator messages). Empty = none.')
param operatorPrincipalId string = ''

@description('Kind of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('More app settings as name/value objects, for example the Key Vault references that PullFeeds credentials name (docs/PULL.md): [{"name": "FEED_X_PASSWORD", "value": "@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>/)"}]. The identity needs Key Vault Secrets User on that vault.')
param additionalAppSettings array = []

@description('Tags put on every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

// Parameter combinations Azure or the handler would refuse stop the deployment here, before
// anything is created (identity and storage wait for it; everything else waits for them).
module guard 'modules/guard.bicep' = {
  name: 'ti-ingest-guard'
  params: {
    cloud: cloud
    hostingPlan: hostingPlan
    target: target
    apiBaseUrl: apiBaseUrl
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
  dependsOn: [
    guard
  ]
}

module storage 'modules/storage.bicep' = {
  name: 'ti-ingest-storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    sku: storageSku
    containerNames: [
      inboxContainerName
      reportsContainerName
      configContainerName
      deploymentContainerName
    ]
    queueNames: [
      blobEventsQueueName
      '${blobEventsQueueName}-poison'
      inboxQueueName
      '${inboxQueueName}-poison'
      workQueueName
      '${workQueueName}-poison'
    ]
  }
  dependsOn: [
    guard
  ]
}

module storageRoles 'modules/storage-roles.bicep' = {
  name: 'ti-ingest-storage-roles'
  params: {
    storageAccountName: storage.outputs.name
    identityPrincipalId: identity.properties.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'ti-ingest-monitoring'
  params: {
    location: location
    tags: tags
    appInsightsName: appInsightsName
    logAnalyticsName: logAnalyticsName
    logAnalyticsWorkspaceResourceId: logAnalyticsWorkspaceResourceId
    identityPrincipalId: identity.properties.principalId
  }
}

// The Sentinel workspace may live in another resource group or subscription: the role assignment
// is deployed there. Skipped when no workspace name is given (graph and dry-run need none).
module sentinelRole 'modules/sentinel-role.bicep' = if (!empty(workspaceName)) {
  name: 'ti-ingest-sentinel-role-${uniqueString(resourceGroup().id, functionAppName)}'
  scope: resourceGroup(workspaceSubscriptionId, workspaceResourceGroup)
  params: {
    workspaceName: workspaceName
    identityPrincipalId: identity.properties.principalId
    identityResourceId: identity.id
  }
}

var sentinelTarget = contains(target, 'sentinel-')
var effectiveWorkspaceId = !empty(workspaceId) ? workspaceId : (!empty(workspaceName) ? sentinelRole.outputs.customerId : '')

// Every setting of docs/SETTINGS.md, in its order. Empty values are left out so the handler
// falls back to its own default (TI_WORKSPACE_ID for graph/dry-run, TI_API_BASE_URL,
// TI_SENTINEL_API_VERSION, TI_GRAPH_BASE_URL, TI_DRY_RUN_AS, TI_FORMAT, TI_SWEEP_STALE_SECS unless
// given).
// TI_RATE_WINDOW_SECS, TI_DRY_RUN_DIR and TI_CHECKPOINT_DIR are for the local simulator and the CLI, not for Azure
// (scripts/infra_lint.py NOT_FOR_AZURE).
var tiSettings = filter([
  {
    name: 'TI_TARGET'
    value: guard.outputs.target
  }
  {
    name: 'TI_CLOUD'
    value: cloud
  }
  {
    name: 'TI_WORKSPACE_ID'
    value: effectiveWorkspaceId
  }
  {
    name: 'TI_SOURCE_SYSTEM'
    value: sourceSystem
  }
  {
    name: 'TI_API_BASE_URL'
    value: apiBaseUrl
  }
  {
    name: 'TI_SENTINEL_API_VERSION'
    value: sentinelApiVersion
  }
  {
    name: 'TI_GRAPH_BASE_URL'
    value: graphBaseUrl
  }
  {
    name: 'TI_DRY_RUN_AS'
    value: dryRunAs
  }
  {
    name: 'TI_GRAPH_ACTION'
    value: graphAction
  }
  {
    name: 'TI_GRAPH_TARGET_PRODUCT'
    value: graphTargetProduct
  }
  {
    name: 'TI_DEFENDER_BASE_URL'
    value: defenderBaseUrl
  }
  {
    name: 'TI_DEFENDER_ACTION'
    value: defenderAction
  }
  {
    name: 'TI_DEFENDER_GENERATE_ALERT'
    value: string(defenderGenerateAlert)
  }
  {
    name: 'TI_DEFENDER_RBAC_GROUPS'
    value: defenderRbacGroups
  }
  {
    name: 'TI_DEFENDER_MAX_ACTIVE'
    value: string(defenderMaxActive)
  }
  {
    name: 'TI_DEFENDER_PRIORITY'
    value: defenderPriority
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  {
    name: 'TI_STORAGE_BLOB_URL'
    value: storage.outputs.blobEndpoint
  }
  {
    name: 'TI_STORAGE_QUEUE_URL'
    value: storage.outputs.queueEndpoint
  }
  {
    name: 'TI_INBOX_CONTAINER'
    value: inboxContainerName
  }
  {
    name: 'TI_REPORTS_CONTAINER'
    value: reportsContainerName
  }
  {
    name: 'TI_BLOB_EVENTS_QUEUE'
    value: blobEventsQueueName
  }
  {
    name: 'TI_INBOX_QUEUE'
    value: inboxQueueName
  }
  {
    name: 'TI_WORK_QUEUE'
    value: workQueueName
  }
  {
    name: 'TI_FORMAT'
    value: inputFormat
  }
  {
    name: 'TI_DEFAULT_VALID_DAYS'
    value: string(defaultValidDays)
  }
  {
    name: 'TI_DANGLING_RELATIONSHIPS'
    value: danglingRelationships
  }
  {
    name: 'TI_DEFAULT_CONFIDENCE'
    value: string(defaultConfidence)
  }
  {
    name: 'TI_DEFAULT_TLP'
    value: defaultTlp
  }
  {
    name: 'TI_ON_INVALID'
    value: onInvalid
  }
  {
    name: 'TI_MAX_REQUESTS_PER_MINUTE'
    value: string(maxRequestsPerMinute)
  }
  {
    name: 'TI_BATCH_SIZE'
    value: string(batchSize)
  }
  {
    name: 'TI_MAX_CONCURRENCY'
    value: string(maxConcurrency)
  }
  {
    name: 'TI_MAX_ATTEMPTS'
    value: string(maxAttempts)
  }
  {
    name: 'TI_MAX_RETRY_SECS'
    value: string(maxRetrySecs)
  }
  {
    name: 'TI_INVOCATION_DEADLINE_SECS'
    value: string(invocationDeadlineSecs)
  }
  {
    name: 'TI_WORK_ITEM_RECORDS'
    value: string(workItemRecords)
  }
  {
    name: 'TI_MAX_INPUT_BYTES'
    value: string(maxInputBytes)
  }
  {
    name: 'TI_MAX_HTTP_BYTES'
    value: string(maxHttpBytes)
  }
  {
    name: 'TI_FEEDS_CONFIG'
    value: feedsConfig
  }
  {
    name: 'TI_PULL_SCHEDULE'
    value: pullSchedule
  }
  {
    name: 'TI_SWEEP_SCHEDULE'
    value: sweepSchedule
  }
  {
    name: 'TI_SWEEP_GRACE_SECS'
    value: string(sweepGraceSecs)
  }
  {
    name: 'TI_SWEEP_STALE_SECS'
    value: sweepStaleSecs == 0 ? '' : string(sweepStaleSecs)
  }
  {
    name: 'TI_LOG'
    value: logLevel
  }
], setting => !empty(setting.value))

module functionApp 'modules/functionapp.bicep' = {
  name: 'ti-ingest-functionapp'
  params: {
    name: functionAppName
    location: location
    tags: tags
    planName: planName
    hostingPlan: guard.outputs.hostingPlan
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    premiumSku: premiumSku
    premiumMaximumElasticWorkerCount: premiumMaximumElasticWorkerCount
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    identityResourceId: identity.id
    identityClientId: identity.properties.clientId
    appInsightsConnectionString: monitoring.outputs.connectionString
    appSettings: concat(tiSettings, additionalAppSettings)
  }
  // The host starts as soon as the app exists: give it its storage roles first.
  dependsOn: [
    storageRoles
  ]
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'ti-ingest-eventgrid'
  params: {
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    systemTopicName: 'evgt-${storageAccountName}'
    identityResourceId: identity.id
    inboxContainerName: inboxContainerName
    blobEventsQueueName: blobEventsQueueName
  }
  // Event Grid delivers with the identity: its queue role must exist before the subscription.
  dependsOn: [
    storageRoles
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output hostingPlan string = guard.outputs.hostingPlan
output identityName string = identity.name
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output identityResourceId string = identity.id
output storageAccountName string = storage.outputs.name
output blobEndpoint string = storage.outputs.blobEndpoint
output queueEndpoint string = storage.outputs.queueEndpoint
output inboxContainerName string = inboxContainerName
output reportsContainerName string = reportsContainerName
output configContainerName string = configContainerName
output deploymentContainerName string = deploymentContainerName
output blobEventsQueueName string = blobEventsQueueName
output inboxQueueName string = inboxQueueName
output workQueueName string = workQueueName
output poisonQueueNames array = [
  '${blobEventsQueueName}-poison'
  '${inboxQueueName}-poison'
  '${workQueueName}-poison'
]
output target string = target
output workspaceId string = effectiveWorkspaceId
output sentinelRoleAssigned bool = !empty(workspaceName)
// true = the handler will refuse to start: a Sentinel target needs TI_WORKSPACE_ID (pass workspaceName or workspaceId).
output sentinelTargetWithoutWorkspace bool = sentinelTarget && empty(effectiveWorkspaceId)
// true = grant the identity the Graph application permission ThreatIndicators.ReadWrite.OwnedBy (docs/DEPLOY.md).
output graphPermissionNeeded bool = contains(target, 'graph')
output appInsightsName string = monitoring.outputs.appInsightsName
