// Deployment-time checks of parameter combinations that Azure or the handler would refuse, so the
// deployment stops with a message that names the combination before anything is created (main.bicep
// makes every other resource wait for this module). It declares no resources.
//
// fail() (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-flow-control#fail)
// is not in the grammar of pycep, checkov's Bicep parser, so checkov cannot read this file;
// it holds no resources for checkov to check, and scripts/infra_lint.py accepts exactly that.

@description('Azure cloud (main.bicep cloud).')
param cloud string

@description('Requested hosting plan (main.bicep hostingPlan).')
param hostingPlan string

@description('Upload target(s) (main.bicep target).')
param target string

@description('TI_API_BASE_URL override (main.bicep apiBaseUrl).')
param apiBaseUrl string

// Flex Consumption is not offered in every cloud: not in Azure US Government (Azure support's
// answer quoted in polymind-inc/acmebot#1102, 2026-06: "Flex Consumption accounts will not be
// available for at least 4-5 months ... in USGovCloud"); for Azure China no Flex Consumption
// region is published either (the regions are those `az functionapp list-flexconsumption-locations`
// lists: https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#view-currently-supported-regions).
// Region support inside the public cloud is checked by Azure itself.
var flexConsumptionOffered = cloud == 'public'

// The legacy Upload Indicators API has no published host outside the public cloud (sources at
// Cloud::sentinel_base_url in src/settings.rs): the handler would refuse to start without
// TI_API_BASE_URL.
var legacyApiHostKnown = cloud == 'public' || !empty(apiBaseUrl)

output hostingPlan string = hostingPlan == 'FlexConsumption' && !flexConsumptionOffered ? fail('hostingPlan=FlexConsumption is not offered in cloud=${cloud} (Flex Consumption is not available there): deploy with hostingPlan=Premium') : hostingPlan

output target string = contains(target, 'sentinel-indicators') && !legacyApiHostKnown ? fail('target=${target}: sentinel-indicators (the legacy Upload Indicators API) has no published host in cloud=${cloud}: use sentinel-stix, or pass apiBaseUrl') : target
