// Package objects reads Kubernetes objects the way the test harnesses take them:
// from JSON (one object, a JSON array of objects, a `...List` with items, or several
// JSON values one after another) or from YAML (one or more documents separated by
// `---`). Each object becomes an *unstructured.Unstructured, the type kstatus and
// Argo CD's Lua VM work on (integral numbers are int64, as when read from the API).
package objects

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Read returns every object in r, in order. An empty input is an error: a harness
// that silently reads nothing would let a broken pipe pass as "no objects".
func Read(r io.Reader) ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("no input: expected JSON or YAML objects on stdin")
	}
	var raws []json.RawMessage
	if trimmed[0] == '{' || trimmed[0] == '[' {
		raws, err = jsonValues(trimmed)
	} else {
		raws, err = yamlDocuments(trimmed)
	}
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for i, raw := range raws {
		objs, err := decode(raw)
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i+1, err)
		}
		out = append(out, objs...)
	}
	if len(out) == 0 {
		return nil, errors.New("the input holds no objects")
	}
	return out, nil
}

// FromYAMLOrJSON decodes exactly one object from a file's bytes.
func FromYAMLOrJSON(data []byte) (*unstructured.Unstructured, error) {
	objs, err := Read(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("expected one object, found %d", len(objs))
	}
	return objs[0], nil
}

func jsonValues(data []byte) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("JSON value %d: %w", len(out)+1, err)
		}
		out = append(out, raw)
	}
}

func yamlDocuments(data []byte) ([]json.RawMessage, error) {
	var out []json.RawMessage
	var doc strings.Builder
	flush := func() error {
		text := doc.String()
		doc.Reset()
		if strings.TrimSpace(stripComments(text)) == "" {
			return nil
		}
		j, err := yaml.YAMLToJSON([]byte(text))
		if err != nil {
			return fmt.Errorf("YAML document %d: %w", len(out)+1, err)
		}
		if string(j) != "null" {
			out = append(out, j)
		}
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		doc.WriteString(line)
		doc.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// decode turns one JSON value into objects: an array or a List contributes its items.
func decode(raw json.RawMessage) ([]*unstructured.Unstructured, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(t, &items); err != nil {
			return nil, err
		}
		var out []*unstructured.Unstructured
		for i, item := range items {
			objs, err := decode(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(t); err != nil {
		return nil, err
	}
	if u.IsList() {
		list, err := u.ToList()
		if err != nil {
			return nil, err
		}
		out := make([]*unstructured.Unstructured, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		return out, nil
	}
	return []*unstructured.Unstructured{u}, nil
}
