// Application Insights for the Function App, with local (key) authentication disabled: the app
// sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which
// needs Monitoring Metrics Publisher on the component.

param location string
param tags object = {}

@description('Application Insights component name.')
param appInsightsName string

@description('Name of the Log Analytics workspace created when none is given.')
param logAnalyticsName string

@description('Resource id of an existing Log Analytics workspace; empty = create one.')
param logAnalyticsWorkspaceResourceId string = ''

@description('Days the created workspace keeps the telemetry.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var createWorkspace = empty(logAnalyticsWorkspaceResourceId)

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (createWorkspace) {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: createWorkspace ? logAnalytics.id : logAnalyticsWorkspaceResourceId
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ti-ingest: send telemetry with Entra ID authentication'
  }
}

output appInsightsName string = appInsights.name
// The connection string names the component (instrumentation key and ingestion endpoint); with
// local authentication disabled it grants nothing by itself.
output connectionString string = appInsights.properties.ConnectionString
