-- resume: spec.suspend = false. The operator reconciles again (and corrects drift that
-- happened while suspended, under spec.driftPolicy: Correct).
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = false
return obj
