package processor

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"valora/schemas"
)

// reasonConsts parses the non-test Go files of dir and returns the values
// of the string constants that keep declares.
func reasonConsts(t *testing.T, dir string, keep func(name string, typ ast.Expr) bool) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !keep(name.Name, vs.Type) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: constant %s is not a string literal", path, name.Name)
					}
					out[name.Name] = constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
				}
			}
		}
	}
	return out
}

// TestDeadLetterReasonsComplete fails when a reason constant of the
// processor (Reason*) or of schemas (type Reason) is missing from
// DeadLetterReasons, so that no reason the code uses can go without its
// series created at start, or without its documentation.
func TestDeadLetterReasonsComplete(t *testing.T) {
	all := DeadLetterReasons()
	if len(all) != len(slices.Compact(slices.Sorted(slices.Values(all)))) {
		t.Fatalf("DeadLetterReasons has repeats: %v", all)
	}
	proc := reasonConsts(t, ".", func(name string, _ ast.Expr) bool { return strings.HasPrefix(name, "Reason") })
	dec := reasonConsts(t, filepath.Join("..", "schemas"), func(_ string, typ ast.Expr) bool {
		id, ok := typ.(*ast.Ident)
		return ok && id.Name == "Reason"
	})
	if len(proc) < 9 || len(dec) != 4 {
		t.Fatalf("found %d processor and %d schemas reason constants: %v %v", len(proc), len(dec), proc, dec)
	}
	for name, v := range proc {
		if !slices.Contains(all, v) {
			t.Errorf("processor.%s = %q is not in DeadLetterReasons", name, v)
		}
	}
	for name, v := range dec {
		if !slices.Contains(schemas.Reasons(), schemas.Reason(v)) || !slices.Contains(all, v) {
			t.Errorf("schemas.%s = %q is not in schemas.Reasons or DeadLetterReasons", name, v)
		}
	}
	if want := len(proc) + len(dec); len(all) != want {
		t.Errorf("DeadLetterReasons has %d reasons, the code declares %d: %v", len(all), want, all)
	}

	// Every reason is documented: in doc.go's Dead letters section and in
	// the table of reasons of docs/operations.md.
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "# Dead letters")
	section, _, _ = strings.Cut(section, "# Erasure")
	readme, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if _, isDecode := dec["Reason"+camel(r)]; !isDecode && !strings.Contains(section, r) {
			t.Errorf("doc.go's Dead letters section does not name %s", r)
		}
		if !strings.Contains(string(readme), "| `"+r+"` |") {
			t.Errorf("docs/operations.md's table of reasons has no row for %s", r)
		}
	}
}

// camel turns a reason code into the suffix of its constant's name.
func camel(r string) string {
	var b strings.Builder
	for _, w := range strings.Split(r, "_") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// TestRecordSeriesAtStart checks that a new processor exposes, at 0, the
// dead-letter counter of every input topic and reason, the late counter of
// the event topics, and the consumed and applied counters of every input.
func TestRecordSeriesAtStart(t *testing.T) {
	for _, replay := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		newMetricsProcessor(t, reg, replay)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string]map[string]bool{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if m.GetCounter().GetValue() != 0 {
					t.Errorf("%s %v starts at %v", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue())
				}
				if series[mf.GetName()] == nil {
					series[mf.GetName()] = map[string]bool{}
				}
				series[mf.GetName()][labelString(m.GetLabel())] = true
			}
		}
		topics := DefaultTopics()
		inputs := []string{topics.Interactions, topics.Purchases, topics.Erasures}
		want := map[string][]string{}
		for _, topic := range inputs {
			want["valora_records_consumed_total"] = append(want["valora_records_consumed_total"], "topic="+topic)
			want["valora_records_applied_total"] = append(want["valora_records_applied_total"], "topic="+topic)
			for _, r := range DeadLetterReasons() {
				want["valora_records_dead_lettered_total"] = append(want["valora_records_dead_lettered_total"], "reason="+r+",topic="+topic)
			}
		}
		want["valora_records_late_total"] = []string{"topic=" + topics.Interactions, "topic=" + topics.Purchases}
		for name, labels := range want {
			if len(series[name]) != len(labels) {
				t.Errorf("replay %t: %s has %d series at start, want %d", replay, name, len(series[name]), len(labels))
			}
			for _, l := range labels {
				if !series[name][l] {
					t.Errorf("replay %t: %s{%s} is not created at start", replay, name, l)
				}
			}
		}
	}
}

func labelString(ls []*dto.LabelPair) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}
