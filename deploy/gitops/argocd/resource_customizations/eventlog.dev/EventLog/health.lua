-- Argo CD health check for eventlog.dev/EventLog.
-- Installed through argocd-cm (key resource.customizations.health.eventlog.dev_EventLog,
-- deploy/gitops/argocd/argocd-cm-patch.yaml carries this exact text), or built into
-- Argo CD from resource_customizations/eventlog.dev/EventLog/health.lua.
-- Uses only what Argo CD gives a script from argocd-cm (base and table libraries, no
-- string/math): test/tools/cmd/argocd-lua runs it under gopher-lua both ways.
--   metadata.deletionTimestamp                    -> Progressing (being deleted)
--   spec.suspend                                  -> Suspended
--   status not yet for metadata.generation        -> Progressing (the CRD defaults
--                                                    status.observedGeneration to 0)
--   Stalled=True                                  -> Degraded
--   Ready=True                                    -> Healthy
--   anything else                                 -> Progressing (Ready's message)
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == kind then return c end
  end
  return nil
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "being deleted: the operator removes its finalizer once the log's objects are handled"
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the operator leaves the log's objects alone"
  return hs
end

local generation = nil
if obj.metadata ~= nil then generation = obj.metadata.generation end
local status = obj.status
if status == nil or status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- A condition written for an older generation says nothing about this one.
local function current(c)
  return c ~= nil and (generation == nil or c.observedGeneration == nil or c.observedGeneration >= generation)
end

local stalled = condition(status.conditions, "Stalled")
if current(stalled) and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = tostring(stalled.reason) .. ": " .. tostring(stalled.message)
  return hs
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and not current(ready) then
  hs.status = "Progressing"
  hs.message = "Ready is for generation " .. tostring(ready.observedGeneration) .. ", the object is at " .. tostring(generation)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = tostring(ready.message)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message)
else
  hs.message = "waiting for the Ready condition"
end
return hs
