// Microsoft Sentinel Contributor for the app's identity on the Sentinel workspace: what both
// Sentinel upload APIs require. Deployed into the workspace's own resource group (and subscription).
// Also reads the workspace id (customerId) that TI_WORKSPACE_ID names.

@description('Log Analytics workspace that Microsoft Sentinel runs on.')
param workspaceName string

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Resource id of that identity (keeps the assignment name stable).')
param identityResourceId string

var sentinelContributorRoleId = 'ab8e14d6-4a74-4a29-9ba8-549422addade'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource sentinelContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identityResourceId, sentinelContributorRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelContributorRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ti-ingest: upload threat-intelligence indicators'
  }
}

output customerId string = workspace.properties.customerId
output workspaceResourceId string = workspace.id
