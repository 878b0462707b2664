// Event Grid: BlobCreated events of the inbox container become messages on the blob-events queue,
// which triggers IngestBlobEvent (docs/ARCHITECTURE.md: the handler then streams the blob itself).
// Delivery uses the app's user-assigned identity (Storage Queue Data Message Sender on the account),
// so no key or SAS is involved and it keeps working behind the storage firewall's
// trusted-services exception.

param location string
param tags object = {}

@description('Storage account whose events are published (and that holds the queue).')
param storageAccountName string

@description('Name of the system topic on the storage account.')
param systemTopicName string

@description('Resource id of the user-assigned identity Event Grid delivers with.')
param identityResourceId string

@description('Container whose new blobs are announced.')
param inboxContainerName string

@description('Queue the events are delivered to.')
param blobEventsQueueName string

@description('Seconds a delivered event may wait on the queue (the queue trigger and the Sweep pick it up long before).')
param queueMessageTimeToLiveInSeconds int = 604800

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource inboxBlobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: 'inbox-blob-created'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    deliveryWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityResourceId
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: account.id
          queueName: blobEventsQueueName
          queueMessageTimeToLiveInSeconds: queueMessageTimeToLiveInSeconds
        }
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${inboxContainerName}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output systemTopicName string = systemTopic.name
output subscriptionName string = inboxBlobCreated.name
