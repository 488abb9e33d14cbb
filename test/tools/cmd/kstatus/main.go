// Command kstatus prints the kstatus verdict of Kubernetes objects, computed by the
// real library Flux's `wait: true`, kpt, `kubectl apply --prune` tooling and the
// cli-utils applier use: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute.
//
//	kstatus < objects.json     # one object, a JSON array, a List, or JSON values in a row
//	kstatus < objects.yaml     # one or more YAML documents
//
// Every object needs apiVersion and kind (as the API serves them).
//
// Output: one JSON line per object, in input order:
//
//	{"name":"orders","status":"InProgress","message":"...","conditions":[...]}
//
// where status is Current, InProgress, Failed, Terminating (or Unknown/NotFound, which
// Compute does not return for an object it can read) and conditions are the kstatus
// conditions the library derived. A Compute error is printed as {"error": "..."} for
// that object and makes the exit code 1; unreadable input exits 2.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"eventlog.dev/testtools/internal/objects"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type verdict struct {
	Kind       string      `json:"kind,omitempty"`
	Namespace  string      `json:"namespace,omitempty"`
	Name       string      `json:"name,omitempty"`
	Status     string      `json:"status,omitempty"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
	Error      string      `json:"error,omitempty"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < objects (JSON or YAML on stdin)")
		os.Exit(2)
	}
	objs, err := objects.Read(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	code := 0
	for _, u := range objs {
		v := verdict{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Conditions: []condition{}}
		res, err := status.Compute(u)
		if err != nil {
			v.Error = err.Error()
			code = 1
		} else {
			v.Status = res.Status.String()
			v.Message = res.Message
			for _, c := range res.Conditions {
				v.Conditions = append(v.Conditions, condition{Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message})
			}
		}
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: writing output: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(code)
}
