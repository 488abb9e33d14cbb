package main

// The Lua VM as Argo CD sets it up for resource customizations (argo-cd util/lua,
// VM.runLua and friends), re-implemented here in a few lines so the scripts run the
// way the application controller and the API server run them:
//
//   - gopher-lua (Lua 5.1). Scripts from argocd-cm run with SkipOpenLibs (unless
//     resource.customizations.useOpenLibs is set); then only the package, base and table
//     libraries are opened, plus a "safe" os library with just time and date that Argo CD
//     registers into the table module and preloads for `require("os")`. So string, math,
//     io and the full os library are absent: a script that uses them fails here as it
//     would there. Built-in customizations (resource_customizations/ in the Argo CD
//     tree) and Argo CD's own discovery tests run with the standard libraries opened:
//     --open-libs.
//   - The object is the global `obj`, converted from the unstructured object (numbers
//     become Lua numbers, JSON null becomes nil). The chunk runs with a 1 s deadline.
//   - The chunk's return value is encoded with layeh.com/gopher-json (as Argo CD does),
//     so an empty Lua table becomes `[]`; for action output, a `[]` where the input had a
//     map is put back to the map (Argo CD's cleanReturnedObj).

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

const scriptTimeout = time.Second

// safeOsFuncs is the os subset Argo CD offers scripts (time and date). Simplified: date
// returns RFC 3339 UTC whatever format it is given (Argo CD implements strftime); the
// EventLog scripts use neither.
var safeOsFuncs = map[string]lua.LGFunction{
	"time": func(L *lua.LState) int {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	},
	"date": func(L *lua.LState) int {
		t := time.Now()
		if L.GetTop() >= 2 {
			t = time.Unix(L.CheckInt64(2), 0)
		}
		L.Push(lua.LString(t.UTC().Format(time.RFC3339)))
		return 1
	},
}

// runLua evaluates script with obj as the global `obj` and returns what the chunk returned.
func runLua(obj *unstructured.Unstructured, script string, openLibs bool) (lua.LValue, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer L.Close()
	libs := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		// Argo CD registers its safe os functions under the table module's name and
		// preloads "os": without the standard libraries, `os` exists only via require.
		{lua.OsLibName, func(L *lua.LState) int {
			L.Push(L.RegisterModule(lua.TabLibName, safeOsFuncs))
			return 1
		}},
	}
	for _, lib := range libs {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening the %s library: %w", lib.name, err)
		}
	}
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		L.Push(L.SetFuncs(L.NewTable(), safeOsFuncs))
		return 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj.Object))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	return L.Get(-1), nil
}

// toLua converts an unstructured value to Lua the way Argo CD's decodeValue does.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case json.Number:
		return lua.LString(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(L, item))
		}
		return t
	}
	return lua.LNil
}

// encodeTable JSON-encodes a returned table, failing like Argo CD on anything else.
func encodeTable(v lua.LValue) ([]byte, error) {
	if v.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", v.Type().String())
	}
	return luajson.Encode(v)
}

// HealthStatus is gitops-engine's health.HealthStatus.
type HealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var healthCodes = map[string]bool{"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true}

func executeHealth(obj *unstructured.Unstructured, script string, openLibs bool) (*HealthStatus, error) {
	ret, err := runLua(obj, script, openLibs)
	if err != nil {
		return nil, err
	}
	data, err := encodeTable(ret)
	if err != nil {
		return nil, err
	}
	hs := &HealthStatus{}
	if err := json.Unmarshal(data, hs); err != nil {
		return nil, fmt.Errorf("the health table is not {status, message}: %w (%s)", err, data)
	}
	if !healthCodes[hs.Status] {
		return &HealthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// ResourceAction is the part of Argo CD's v1alpha1.ResourceAction a discovery script sets.
type ResourceAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled"`
	IconClass   string `json:"iconClass,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

func executeDiscovery(obj *unstructured.Unstructured, script string, openLibs bool) ([]ResourceAction, error) {
	ret, err := runLua(obj, script, openLibs)
	if err != nil {
		return nil, err
	}
	data, err := encodeTable(ret)
	if err != nil {
		return nil, err
	}
	actions := []ResourceAction{}
	if string(data) == "[]" { // an empty table: no actions
		return actions, nil
	}
	byName := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &byName); err != nil {
		return nil, fmt.Errorf("discovery must return a table keyed by action name: %w (%s)", err, data)
	}
	for name, raw := range byName {
		a := ResourceAction{}
		if string(raw) != "[]" { // {} for "no options" encodes as []
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("action %q: %w (%s)", name, err, raw)
			}
		}
		a.Name = name
		actions = append(actions, a)
	}
	sortActions(actions)
	return actions, nil
}

// executeAction runs an action script and returns the object it produced (Argo CD's
// "old-style" action output: the modified object, applied as a merge patch).
func executeAction(obj *unstructured.Unstructured, script string, openLibs bool) (map[string]any, error) {
	ret, err := runLua(obj, script, openLibs)
	if err != nil {
		return nil, err
	}
	data, err := encodeTable(ret)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 && data[0] == '[' {
		return nil, fmt.Errorf("the action returned a list (Argo CD's new-style impacted-resources output), which this harness does not run: %s", data)
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("the action did not return an object: %w", err)
	}
	return restoreEmptyMaps(out, obj.Object), nil
}

// restoreEmptyMaps puts back maps that came out of Lua as empty lists (Lua has one
// table type; an empty one encodes as []), as Argo CD's cleanReturnedObj does.
func restoreEmptyMaps(next, prev map[string]any) map[string]any {
	for k, old := range prev {
		nv, ok := next[k]
		if !ok {
			continue
		}
		switch n := nv.(type) {
		case map[string]any:
			if o, ok := old.(map[string]any); ok {
				next[k] = restoreEmptyMaps(n, o)
			}
		case []any:
			switch o := old.(type) {
			case map[string]any:
				if len(n) == 0 {
					next[k] = o
				}
			case []any:
				next[k] = restoreEmptyMapsInList(n, o)
			}
		}
	}
	return next
}

func restoreEmptyMapsInList(next, prev []any) []any {
	for i := range next {
		if i >= len(prev) {
			break
		}
		switch n := next[i].(type) {
		case map[string]any:
			if o, ok := prev[i].(map[string]any); ok {
				next[i] = restoreEmptyMaps(n, o)
			}
		case []any:
			if o, ok := prev[i].([]any); ok {
				next[i] = restoreEmptyMapsInList(n, o)
			}
		}
	}
	return next
}
