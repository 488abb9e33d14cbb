// Command argocd-lua runs Argo CD resource customizations for a kind (health.lua,
// actions/discovery.lua, actions/<name>/action.lua) under gopher-lua, set up the way
// Argo CD sets up its Lua VM (see vm.go), against objects on stdin or against the
// health_test.yaml / actions/action_test.yaml files of an Argo CD
// resource_customizations/<group>/<Kind>/ directory.
//
//	argocd-lua health    [--open-libs] SCRIPT < objects   {"status":..,"message":..} per object
//	argocd-lua discovery [--open-libs] SCRIPT < objects   {"actions":[{name,disabled,iconClass,displayName}]} per object
//	argocd-lua action    [--open-libs] SCRIPT < objects   {"object":..,"mergePatch":..} per object
//	argocd-lua test      [--open-libs] DIR                one line per test case, then a summary line
//
// Objects: JSON (object, array, List, or values in a row) or YAML documents. Output is
// one JSON line per object; a script error prints {"error": ".."} for that object.
// Exit codes: 0 all ran (test: all passed), 1 a script failed (test: a case failed),
// 2 usage or unreadable input.
//
// mergePatch is the JSON merge patch from the input to the action's output, which is
// what Argo CD sends to the API server when an action runs (for an old-style action).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"eventlog.dev/testtools/internal/objects"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: argocd-lua health|discovery|action [--open-libs] SCRIPT < objects\n       argocd-lua test [--open-libs] DIR")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	mode := os.Args[1]
	args := os.Args[2:]
	openLibs := false
	if len(args) > 0 && args[0] == "--open-libs" {
		openLibs = true
		args = args[1:]
	}
	if len(args) != 1 {
		usage()
	}
	if mode == "test" {
		os.Exit(runTests(os.Stdout, args[0], openLibs))
	}
	script, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-lua: %v\n", err)
		os.Exit(2)
	}
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-lua: %v\n", err)
		os.Exit(2)
	}
	enc := newEncoder(os.Stdout)
	code := 0
	for _, obj := range objs {
		var out any
		var err error
		switch mode {
		case "health":
			out, err = executeHealth(obj, string(script), openLibs)
		case "discovery":
			var actions []ResourceAction
			actions, err = executeDiscovery(obj, string(script), openLibs)
			out = map[string]any{"actions": actions}
		case "action":
			var next map[string]any
			next, err = executeAction(obj, string(script), openLibs)
			if err == nil {
				var patch json.RawMessage
				patch, err = mergePatch(obj.Object, next)
				out = map[string]any{"object": next, "mergePatch": patch}
			}
		default:
			usage()
		}
		if err != nil {
			out = map[string]string{"error": err.Error()}
			code = 1
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "argocd-lua: writing output: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(code)
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

func mergePatch(from, to map[string]any) (json.RawMessage, error) {
	a, err := json.Marshal(from)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(to)
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreateMergePatch(a, b)
}

func sortActions(actions []ResourceAction) {
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
}
