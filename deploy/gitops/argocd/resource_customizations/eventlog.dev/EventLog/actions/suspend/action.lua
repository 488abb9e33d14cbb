-- suspend: spec.suspend = true. The operator leaves the log's PVC, pod and Service as
-- they are (drift is only reported) until resume. If Git sets spec.suspend, Argo CD's
-- self-heal puts Git's value back: change it in Git instead.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = true
return obj
