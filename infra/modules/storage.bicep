// The app's storage account: host storage (AzureWebJobsStorage), the indicator inbox and reports,
// the trigger queues and the deployment package. Reached only with Entra ID tokens: shared-key
// access is disabled, so no connection string or SAS can exist for it.

@description('Storage account name.')
param name string

param location string
param tags object = {}

@description('Replication SKU.')
param sku string = 'Standard_LRS'

@description('Blob containers to create (private).')
param containerNames array

@description('Queues to create (poison queues included).')
param queueNames array

@description('Days deleted blobs and containers stay recoverable.')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: sku
  }
  // Reviewed checkov findings (scripts/check-infra.sh fails on any other):
  // checkov:skip=CKV_AZURE_35:The Function App has no VNet integration in this template, so it reaches the account over the public endpoint; access is Entra ID only (shared keys disabled, no anonymous blobs). A private deployment adds VNet integration and private endpoints, then sets defaultAction Deny.
  // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public network access is needed without VNet integration; every request still needs an Entra ID token with a data role.
  // checkov:skip=CKV_AZURE_206:Standard_LRS by default because the account holds transient inbox files and reports that can be re-dropped and regenerated; the storageSku parameter selects ZRS, GRS or GZRS.
  properties: {
    accessTier: 'Hot'
    // Entra ID only: no account keys, no SAS, no anonymous reads.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    // A report or an inbox file deleted by mistake can be recovered for a while.
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-01-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

output name string = account.name
output id string = account.id
// Service URLs without a trailing '/' (the storage SDK would otherwise request '//container').
output blobEndpoint string = 'https://${account.name}.blob.${environment().suffixes.storage}'
output queueEndpoint string = 'https://${account.name}.queue.${environment().suffixes.storage}'
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
