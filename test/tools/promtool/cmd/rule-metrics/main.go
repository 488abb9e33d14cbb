// Command rule-metrics lists, for every rule of a Prometheus rules file, the series
// selectors its expression uses (metric name and the label names it matches on), parsed
// with Prometheus' own PromQL parser, so a test can check each name against the metrics
// our code registers.
//
//	rule-metrics RULES.yaml
//
// Output: one JSON line per rule:
//
//	{"group":..,"rule":..,"selectors":[{"name":..,"matchers":[{"label":..,"op":..,"value":..}]}],"grouping":[..]}
//
// where matchers are a selector's label matchers other than the metric name (op is =,
// !=, =~ or !~) and grouping the label names of every by/without/on/ignoring clause.
// Exit 1 when the file or an expression does not parse.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

type matcher struct {
	Label string `json:"label"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

type selector struct {
	Name     string    `json:"name"`
	Matchers []matcher `json:"matchers"`
}

type rule struct {
	Group     string     `json:"group"`
	Rule      string     `json:"rule"`
	Selectors []selector `json:"selectors"`
	Grouping  []string   `json:"grouping"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rule-metrics RULES.yaml")
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(os.Args[1], false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, "rule-metrics:", err)
		}
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "rule-metrics: %s: %v\n", name, err)
				os.Exit(1)
			}
			out := rule{Group: g.Name, Rule: name, Selectors: []selector{}, Grouping: []string{}}
			grouping := map[string]bool{}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				switch n := node.(type) {
				case *parser.AggregateExpr:
					for _, l := range n.Grouping {
						grouping[l] = true
					}
				case *parser.BinaryExpr:
					if n.VectorMatching != nil {
						for _, l := range n.VectorMatching.MatchingLabels {
							grouping[l] = true
						}
					}
				}
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				s := selector{Name: vs.Name, Matchers: []matcher{}}
				for _, m := range vs.LabelMatchers {
					if m.Name == labels.MetricName {
						if s.Name == "" && m.Type == labels.MatchEqual {
							s.Name = m.Value
						}
						continue
					}
					s.Matchers = append(s.Matchers, matcher{Label: m.Name, Op: m.Type.String(), Value: m.Value})
				}
				sort.Slice(s.Matchers, func(i, j int) bool { return s.Matchers[i].Label < s.Matchers[j].Label })
				out.Selectors = append(out.Selectors, s)
				return nil
			})
			for l := range grouping {
				out.Grouping = append(out.Grouping, l)
			}
			sort.Strings(out.Grouping)
			if err := enc.Encode(out); err != nil {
				os.Exit(2)
			}
		}
	}
}
