-- approve-repair: sets the annotation eventlog.dev/approve-repair to the corruption id
-- the operator reports in status.recovery.corruption.id. The operator then asks the log
-- server to cut the log at the corrupt record (the cut bytes are kept aside on the
-- volume) and records the result in status.recovery.repair. Refuses to run when there
-- is no corruption to approve, so a stale or empty approval is never written.
local corruption = nil
if obj.status ~= nil and obj.status.recovery ~= nil and obj.status.recovery.corruption ~= nil then
  corruption = obj.status.recovery.corruption.id
end
if corruption == nil or corruption == "" then
  error("approve-repair: status.recovery.corruption.id is empty: the log reports no corruption to repair", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["eventlog.dev/approve-repair"] = corruption
return obj
