-- Argo CD resource actions for eventlog.dev/EventLog: which ones the UI offers.
-- Installed through argocd-cm (resource.customizations.actions.eventlog.dev_EventLog,
-- see deploy/gitops/argocd/argocd-cm-patch.yaml), or built into Argo CD from
-- resource_customizations/eventlog.dev/EventLog/actions/. Base and table libraries only.
--   approve-repair  enabled while status.recovery.corruption.id names a corruption that
--                   the eventlog.dev/approve-repair annotation does not approve yet
--   suspend         enabled unless spec.suspend is true
--   resume          enabled while spec.suspend is true
local actions = {}

local suspended = obj.spec ~= nil and obj.spec.suspend == true

local corruption = nil
if obj.status ~= nil and obj.status.recovery ~= nil and obj.status.recovery.corruption ~= nil then
  corruption = obj.status.recovery.corruption.id
end
if corruption == "" then corruption = nil end

local approved = nil
if obj.metadata ~= nil and obj.metadata.annotations ~= nil then
  approved = obj.metadata.annotations["eventlog.dev/approve-repair"]
end

local repair = { ["disabled"] = corruption == nil or approved == corruption, ["iconClass"] = "fa fa-fw fa-wrench" }
if corruption ~= nil then
  repair["displayName"] = "Approve repair of " .. corruption
end
actions["approve-repair"] = repair
actions["suspend"] = { ["disabled"] = suspended, ["iconClass"] = "fa fa-fw fa-pause-circle" }
actions["resume"] = { ["disabled"] = not suspended, ["iconClass"] = "fa fa-fw fa-play-circle" }
return actions
