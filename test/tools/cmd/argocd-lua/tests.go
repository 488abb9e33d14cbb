package main

// `argocd-lua test DIR`: the test files of an Argo CD resource customization, in the
// format Argo CD's own tests read (util/lua: health_test.yaml with tests[].inputPath and
// healthStatus; actions/action_test.yaml with discoveryTests and actionTests). The files
// are decoded strictly (an unknown or misspelt key is an error), so a layout that passes
// here is one Argo CD's test runner can read.
//
// Stricter than Argo CD's runner in two places: a discovery test must list exactly the
// actions discovered (Argo CD only checks that each discovered one is listed), and an
// action's output must equal the expected object exactly (after a JSON round trip, so
// 1 and 1.0 are the same number).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"eventlog.dev/testtools/internal/objects"
)

type healthTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []ResourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

type caseResult struct {
	Case  string `json:"case"`
	OK    bool   `json:"ok"`
	Got   any    `json:"got,omitempty"`
	Want  any    `json:"want,omitempty"`
	Error string `json:"error,omitempty"`
}

type summary struct {
	Summary bool `json:"summary"`
	Passed  int  `json:"passed"`
	Failed  int  `json:"failed"`
}

func readStrict(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readObject(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, err := objects.FromYAMLOrJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

func readScript(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}

// normalise makes two JSON-able values comparable (numbers as float64, no nil/empty ambiguity from Go types).
func normalise(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<unencodable: %v>", err)
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&out); err != nil {
		return fmt.Sprintf("<undecodable: %v>", err)
	}
	return out
}

func runTests(w io.Writer, dir string, openLibs bool) int {
	enc := newEncoder(w)
	var results []caseResult
	add := func(r caseResult) { results = append(results, r) }
	fail := func(name string, err error) { add(caseResult{Case: name, Error: err.Error()}) }

	ran := 0
	if _, err := os.Stat(filepath.Join(dir, "health.lua")); err == nil {
		ran++
		script, err := readScript(filepath.Join(dir, "health.lua"))
		var tests healthTests
		if err == nil {
			err = readStrict(filepath.Join(dir, "health_test.yaml"), &tests)
		}
		if err != nil {
			fail("health", err)
		} else if len(tests.Tests) == 0 {
			fail("health", fmt.Errorf("%s has no tests", filepath.Join(dir, "health_test.yaml")))
		}
		for _, t := range tests.Tests {
			name := "health/" + t.InputPath
			obj, err := readObject(filepath.Join(dir, t.InputPath))
			if err != nil {
				fail(name, err)
				continue
			}
			got, err := executeHealth(obj, script, openLibs)
			if err != nil {
				fail(name, err)
				continue
			}
			add(caseResult{Case: name, OK: *got == t.HealthStatus, Got: got, Want: t.HealthStatus})
		}
	}

	actionsDir := filepath.Join(dir, "actions")
	if _, err := os.Stat(filepath.Join(actionsDir, "action_test.yaml")); err == nil {
		ran++
		var tests actionTests
		if err := readStrict(filepath.Join(actionsDir, "action_test.yaml"), &tests); err != nil {
			fail("actions", err)
		}
		discovery, err := readScript(filepath.Join(actionsDir, "discovery.lua"))
		if err != nil && len(tests.DiscoveryTests) > 0 {
			fail("discovery", err)
		}
		for _, t := range tests.DiscoveryTests {
			name := "discovery/" + t.InputPath
			obj, err := readObject(filepath.Join(actionsDir, t.InputPath))
			if err != nil {
				fail(name, err)
				continue
			}
			got, err := executeDiscovery(obj, discovery, openLibs)
			if err != nil {
				fail(name, err)
				continue
			}
			want := append([]ResourceAction(nil), t.Result...)
			sortActions(want)
			add(caseResult{Case: name, OK: reflect.DeepEqual(got, want), Got: got, Want: want})
		}
		for _, t := range tests.ActionTests {
			name := "action/" + t.Action + "/" + t.InputPath
			script, err := readScript(filepath.Join(actionsDir, t.Action, "action.lua"))
			if err != nil {
				fail(name, err)
				continue
			}
			obj, err := readObject(filepath.Join(actionsDir, t.InputPath))
			if err != nil {
				fail(name, err)
				continue
			}
			want, err := readObject(filepath.Join(actionsDir, t.ExpectedOutputPath))
			if err != nil {
				fail(name, err)
				continue
			}
			got, err := executeAction(obj, script, openLibs)
			if err != nil {
				fail(name, err)
				continue
			}
			g, wn := normalise(got), normalise(want.Object)
			add(caseResult{Case: name, OK: reflect.DeepEqual(g, wn), Got: g, Want: wn})
		}
	}
	if ran == 0 {
		fail("layout", fmt.Errorf("%s has neither health.lua nor actions/action_test.yaml", dir))
	}

	s := summary{Summary: true}
	for _, r := range results {
		if r.OK {
			s.Passed++
		} else {
			s.Failed++
		}
		_ = enc.Encode(r)
	}
	_ = enc.Encode(s)
	if s.Failed > 0 {
		return 1
	}
	return 0
}
