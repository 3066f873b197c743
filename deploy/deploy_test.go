package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"valora/internal/buildtest"
	"valora/processor/score"
)

// The deployment files checked here: this package's directory.
var (
	deployDir       = "."
	dashboardFile   = filepath.Join(deployDir, "grafana", "valora-dashboard.json")
	alertsFile      = filepath.Join(deployDir, "prometheus", "alerts.yml")
	ruleCRFile      = filepath.Join(deployDir, "k8s", "prometheusrule.yaml")
	composeFile     = filepath.Join(deployDir, "docker-compose.yml")
	statefulSetFile = filepath.Join(deployDir, "k8s", "statefulset.yaml")
	policyMapFile   = filepath.Join(deployDir, "k8s", "configmap-policy.yaml")
	dockerfile      = filepath.Join(deployDir, "Dockerfile")
)

// pendingMetrics are contract metrics (DESIGN.md, Metrics) that the dashboard
// and the alert rules already use but valora does not export yet; their panels
// stay empty and their rules never fire until it does. The list only shrinks:
// TestDeployMetricNames fails when a metric listed here is exported, so that
// it is then removed from the list. It is empty now.
var pendingMetrics = []string{}

// prometheusSeries are series that Prometheus adds to every scrape target
// itself; valora cannot export them.
var prometheusSeries = map[string]bool{"up": true}

// TestDeployMetricNames checks that every metric named by a PromQL
// expression of the Grafana dashboard and of the alert rules is one that
// valora exports (exportedMetricsFile).
func TestDeployMetricNames(t *testing.T) {
	uses := map[string][]string{} // metric name -> where it is used
	add := func(where, expr string) {
		names, err := promqlMetricNames(expr)
		if err != nil {
			t.Errorf("%s: %v in %q", where, err, expr)
			return
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			uses[n] = append(uses[n], where)
		}
	}
	dash := loadDashboard(t)
	exprs := dashboardExprs(dash)
	if len(exprs) < 40 {
		t.Errorf("dashboard: only %d PromQL expressions found", len(exprs))
	}
	for _, e := range exprs {
		add("dashboard "+e.where, e.expr)
	}
	for _, r := range loadRules(t, alertsFile) {
		add("alerts.yml "+r.Alert, r.Expr)
	}

	exported := exportedMetricNames(t)
	pending := map[string]bool{}
	for _, n := range pendingMetrics {
		pending[n] = true
	}
	var used []string
	for n := range uses {
		used = append(used, n)
	}
	sort.Strings(used)
	for _, n := range used {
		switch {
		case isExported(n, exported), prometheusSeries[n], pending[n]:
		default:
			where := uses[n]
			if len(where) > 3 {
				where = append(where[:3:3], fmt.Sprintf("and %d more", len(uses[n])-3))
			}
			t.Errorf("%s is not a metric valora exports (used by %s)", n, strings.Join(where, "; "))
		}
	}
	var still []string
	for _, n := range pendingMetrics {
		if exported[n] {
			t.Errorf("%s is exported now: remove it from pendingMetrics in deploy_test.go", n)
			continue
		}
		still = append(still, n)
	}
	t.Logf("%d metric names used by the dashboard and alert rules, %d exported by valora", len(used), len(exported))
	if len(still) > 0 {
		t.Logf("contract metrics not exported yet (pendingMetrics): %s", strings.Join(still, ", "))
	}
}

// isExported reports whether name is exported, mapping the series of a
// histogram or summary (_bucket, _sum, _count) to its family's name.
func isExported(name string, exported map[string]bool) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}

// valoraBin is the valora binary the tests run, built once, the release
// way (buildtest), on first use; TestMain removes it.
var valoraBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if valoraBin.dir != "" {
		os.RemoveAll(valoraBin.dir)
	}
	os.Exit(code)
}

// valora returns the path of the valora binary.
func valora(t *testing.T) string {
	t.Helper()
	valoraBin.once.Do(func() {
		valoraBin.dir, valoraBin.err = os.MkdirTemp("", "valora-deploy-test-")
		if valoraBin.err == nil {
			valoraBin.path, valoraBin.err = buildtest.Build(valoraBin.dir)
		}
	})
	if valoraBin.err != nil {
		t.Fatal(valoraBin.err)
	}
	return valoraBin.path
}

// valoraCmd is a command running the valora binary with args, in an
// environment without VALORA_* variables (which set its flags).
func valoraCmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(valora(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VALORA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// exportedMetricsFile lists the metric families valora exports, one a
// line; cmd/valora's TestExportedMetricsFile keeps it equal to what the
// registry of `valora run` and `valora dev` exports after traffic has been
// processed (its collectors' descriptors and a scrape of /metrics).
var exportedMetricsFile = filepath.Join("testdata", "exported-metrics.txt")

// exportedMetricNames returns the names exportedMetricsFile lists.
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(exportedMetricsFile)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range strings.Fields(string(b)) {
		names[n] = true
	}
	for _, want := range []string{"valora_records_applied_total", "valora_kafka_fetch_bytes_total",
		"valora_pebble_disk_usage_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Errorf("%s lacks %s: the exported set is incomplete", exportedMetricsFile, want)
		}
	}
	return names
}

// TestDeployPromQLMetricNames checks the extraction of metric names from
// PromQL expressions with Grafana variables.
func TestDeployPromQLMetricNames(t *testing.T) {
	f := func(expr string, want ...string) {
		t.Helper()
		got, err := promqlMetricNames(expr)
		if err != nil {
			t.Errorf("%q: %v", expr, err)
			return
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %q, want %q", expr, got, want)
		}
	}
	f(`up == 0`, "up")
	f(`up{job="valora"} == 0`, "up")
	f(`sum by (topic) (rate(valora_records_consumed_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))`,
		"valora_records_consumed_total")
	f(`sum(rate(x_total[5m])) by (job, instance) / on (job) group_left (tier) y`, "x_total", "y")
	f(`histogram_quantile(0.99, sum by (le) (rate(h_seconds_bucket{a="}{\"b"}[${__rate_interval}])))`, "h_seconds_bucket")
	f(`a > 40 * 1024 * 1024 * 1024 and ignoring(x) b offset 1d unless c @ start()`, "a", "b", "c")
	f(`max_over_time(deriv(g[10m:1m])[1h:]) > bool 1e3`, "g")
	f(`label_replace(m, "dst", "$1", "src", "(.*)") or vector(0) + Inf - NaN`, "m")
	f(`sum without (instance) (m) / count(m)`, "m")
	f(`topk(10, sum by (from, to) (increase(t_total[$__range]))) > 0`, "t_total")
	f(`predict_linear(d[6h], 3 * 24 * 3600) > 0x10`, "d")
	f(`{__name__="x"}`)
	f(`sum(a:recorded:rate5m) - sum(b) by (le)`, "a:recorded:rate5m", "b")
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b"`, `"open`, `x)`} {
		if _, err := promqlMetricNames(bad); err == nil {
			t.Errorf("%q: no error for an unbalanced expression", bad)
		}
	}
}

// promqlMetricNames returns the metric names that the selectors of a PromQL
// expression name, sorted and without repeats. It strips string literals,
// label matchers, range and subquery brackets, numbers and durations, Grafana
// variables ($x, ${x}, $__rate_interval), function and aggregation names,
// keywords, and the label lists of by, without, on, ignoring, group_left and
// group_right.
func promqlMetricNames(expr string) ([]string, error) {
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }
	keywords := map[string]bool{
		"and": true, "or": true, "unless": true, "offset": true, "bool": true, "atan2": true,
		"inf": true, "nan": true,
		// Aggregation operators may be followed by a by or without clause
		// rather than by their arguments: "sum by (topic) (rate(m[5m]))".
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
		"quantile": true, "limitk": true, "limit_ratio": true,
	}
	labelLists := map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
	// skipString returns the index after the string literal starting at i.
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	// skipBlock returns the index after the block opened at i, which may
	// hold strings but no nested block of the same kind.
	skipBlock := func(i int, close byte) (int, error) {
		for j := i + 1; j < len(expr); {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k
			case c == close:
				return j + 1, nil
			case c == '$' && j+1 < len(expr) && expr[j+1] == '{':
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return 0, fmt.Errorf("unterminated ${ at %d", j)
				}
				j += k + 1
			default:
				j++
			}
		}
		return 0, fmt.Errorf("unclosed %q at %d", expr[i], i)
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && strings.IndexByte(" \t\r\n", expr[i]) >= 0 {
			i++
		}
		return i
	}
	seen := map[string]bool{}
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipBlock(i, '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipBlock(i, ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				k := strings.IndexByte(expr[i:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at %d", i-1)
				}
				i += k + 1
				break
			}
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case '0' <= c && c <= '9' || c == '.':
			// A number (1e9, 0x1f, 1.5) or a duration (5m, 1h30m).
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := nextNonSpace(j)
			switch {
			case labelLists[word]:
				if next < len(expr) && expr[next] == '(' {
					k, err := skipBlock(next, ')')
					if err != nil {
						return nil, err
					}
					j = k
				}
			case keywords[strings.ToLower(word)]:
			case next < len(expr) && expr[next] == '(':
				// A function or an aggregation; its arguments follow.
			default:
				seen[word] = true
			}
			i = j
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced (")
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// dashboardExpr is one PromQL expression of the dashboard and where it is.
type dashboardExpr struct{ where, expr string }

func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return dash
}

// dashboardExprs returns the expr of every panel target, in rows and nested
// panels too, and the metric selector of every label_values() variable query.
func dashboardExprs(dash map[string]any) []dashboardExpr {
	var out []dashboardExpr
	var walkPanels func([]any)
	walkPanels = func(panels []any) {
		for _, p := range panels {
			pm, _ := p.(map[string]any)
			title, _ := pm["title"].(string)
			targets, _ := pm["targets"].([]any)
			for _, tg := range targets {
				tm, _ := tg.(map[string]any)
				if e, ok := tm["expr"].(string); ok && e != "" {
					out = append(out, dashboardExpr{fmt.Sprintf("panel %q", title), e})
				}
			}
			nested, _ := pm["panels"].([]any)
			walkPanels(nested)
		}
	}
	panels, _ := dash["panels"].([]any)
	walkPanels(panels)
	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		q := vm["query"]
		if qm, ok := q.(map[string]any); ok {
			q = qm["query"]
		}
		qs, _ := q.(string)
		if sel, ok := labelValuesSelector(qs); ok {
			out = append(out, dashboardExpr{fmt.Sprintf("variable %q", vm["name"]), sel})
		}
	}
	return out
}

// labelValuesSelector returns the series selector of a Grafana
// label_values(selector, label) query.
func labelValuesSelector(q string) (string, bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	if i := strings.LastIndexByte(inner, ','); i >= 0 && !strings.ContainsAny(inner[i:], "}\"") {
		return strings.TrimSpace(inner[:i]), true
	}
	return "", false
}

// TestDashboardStructure checks what Grafana needs to load the dashboard and
// what makes it portable: a Prometheus data source variable used by every
// panel and target, unique panel ids, and the schema version.
func TestDashboardStructure(t *testing.T) {
	dash := loadDashboard(t)
	if v, _ := dash["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want at least 36", dash["schemaVersion"])
	}
	if dash["uid"] != "valora" || dash["title"] == "" {
		t.Errorf("uid %v, title %v", dash["uid"], dash["title"])
	}
	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	hasDS := false
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		if vm["name"] == "datasource" && vm["type"] == "datasource" && vm["query"] == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no datasource variable of type prometheus")
	}
	ids := map[float64]string{}
	panels := 0
	var walk func([]any)
	walk = func(ps []any) {
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			title, _ := pm["title"].(string)
			id, _ := pm["id"].(float64)
			if prev, dup := ids[id]; dup {
				t.Errorf("panels %q and %q share id %v", prev, title, id)
			}
			ids[id] = title
			if _, ok := pm["gridPos"].(map[string]any); !ok {
				t.Errorf("panel %q has no gridPos", title)
			}
			if pm["type"] != "row" {
				panels++
				checkDS := func(what string, ds any) {
					dm, _ := ds.(map[string]any)
					if dm["uid"] != "${datasource}" {
						t.Errorf("panel %q: %s data source %v, want uid ${datasource}", title, what, ds)
					}
				}
				checkDS("panel", pm["datasource"])
				targets, _ := pm["targets"].([]any)
				if len(targets) == 0 {
					t.Errorf("panel %q has no targets", title)
				}
				for _, tg := range targets {
					tm, _ := tg.(map[string]any)
					checkDS("target", tm["datasource"])
				}
			}
			nested, _ := pm["panels"].([]any)
			walk(nested)
		}
	}
	ps, _ := dash["panels"].([]any)
	walk(ps)
	if panels < 30 {
		t.Errorf("%d panels, want the full dashboard", panels)
	}
}

// alertRule is one rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleGroup struct {
	Name     string      `yaml:"name"`
	Interval string      `yaml:"interval"`
	Rules    []alertRule `yaml:"rules"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T, path string) []alertRule {
	t.Helper()
	var f struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	decodeStrict(t, path, &f)
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

var promDurationRE = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// TestAlertRules checks that the alert rules parse and that every rule has
// an expression, a for duration, a severity and a summary and description;
// and that the PrometheusRule of deploy/k8s carries the same groups.
func TestAlertRules(t *testing.T) {
	rules := loadRules(t, alertsFile)
	if len(rules) < 10 {
		t.Fatalf("%d rules in %s", len(rules), alertsFile)
	}
	names := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule without an alert name (expr %q)", r.Expr)
			continue
		}
		if names[r.Alert] {
			t.Errorf("%s: defined twice", r.Alert)
		}
		names[r.Alert] = true
		if strings.TrimSpace(r.Expr) == "" {
			t.Errorf("%s: no expr", r.Alert)
		}
		if !promDurationRE.MatchString(r.For) {
			t.Errorf("%s: for %q is not a Prometheus duration", r.Alert, r.For)
		}
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs annotations summary and description", r.Alert)
		}
	}

	var alerts, cr struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	decodeStrict(t, alertsFile, &alerts)
	var crFile struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec *struct {
			Groups []ruleGroup `yaml:"groups"`
		} `yaml:"spec"`
	}
	decodeStrict(t, ruleCRFile, &crFile)
	if crFile.Kind != "PrometheusRule" || crFile.APIVersion != "monitoring.coreos.com/v1" || crFile.Spec == nil {
		t.Fatalf("%s: kind %q, apiVersion %q", ruleCRFile, crFile.Kind, crFile.APIVersion)
	}
	cr.Groups = crFile.Spec.Groups
	a, _ := json.Marshal(alerts)
	c, _ := json.Marshal(cr)
	if !bytes.Equal(a, c) {
		t.Errorf("%s differs from %s: regenerate it (see deploy/README.md)", ruleCRFile, alertsFile)
	}
}

// composeService is a service of deploy/docker-compose.yml, as far as the
// tests read it.
type composeService struct {
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
}

// loadCompose returns the services of deploy/docker-compose.yml by name.
func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return compose.Services
}

var envRE = regexp.MustCompile(`\bVALORA_[A-Z0-9_]+\b`)

// commandFlags returns the flag names of a valora command, from its --help.
func commandFlags(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	var stderr bytes.Buffer
	help := valoraCmd(t, cmd, "--help")
	help.Stderr = &stderr
	_ = help.Run() // --help exits with a usage status
	flags := map[string]bool{}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			flags[strings.Fields(rest)[0]] = true
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flags in valora %s --help:\n%s", cmd, stderr.String())
	}
	return flags
}

// TestDeployConfigMatchesFlags checks that every VALORA_* variable and every
// --flag that the deployment files pass is a flag of the command they run, and
// that the policy of the Kubernetes ConfigMap is valid.
func TestDeployConfigMatchesFlags(t *testing.T) {
	runFlags := commandFlags(t, "run")
	genFlags := commandFlags(t, "gen")
	envOf := func(flags map[string]bool) map[string]bool {
		m := map[string]bool{}
		for f := range flags {
			m[envName(f)] = true // as --help says: VALORA_<NAME>
		}
		return m
	}
	checkEnv := func(where string, vars []string, flags map[string]bool) {
		t.Helper()
		env := envOf(flags)
		for _, v := range vars {
			if !env[v] {
				t.Errorf("%s: %s is not the variable of any flag", where, v)
			}
		}
	}

	valoraServices := 0
	for name, svc := range loadCompose(t) {
		if !strings.HasPrefix(svc.Image, "valora") {
			continue
		}
		valoraServices++
		cmd := "run"
		if len(svc.Entrypoint) == 2 && strings.HasSuffix(svc.Entrypoint[0], "/valora") {
			cmd = svc.Entrypoint[1]
		}
		flags := map[string]map[string]bool{"run": runFlags, "gen": genFlags}[cmd]
		if flags == nil {
			t.Errorf("compose service %s runs valora %s, which this test does not know", name, cmd)
			continue
		}
		var vars []string
		for k := range svc.Environment {
			if strings.HasPrefix(k, "VALORA_") {
				vars = append(vars, k)
			}
		}
		checkEnv("compose service "+name, vars, flags)
		for _, arg := range svc.Command {
			if f, ok := strings.CutPrefix(arg, "--"); ok && !flags[strings.SplitN(f, "=", 2)[0]] {
				t.Errorf("compose service %s: valora %s has no flag %s", name, cmd, arg)
			}
		}
	}
	if valoraServices != 2 {
		t.Errorf("%d valora services in %s, want 2 (scorer and traffic)", valoraServices, composeFile)
	}
	for _, path := range []string{statefulSetFile, dockerfile} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkEnv(path, envRE.FindAllString(string(b), -1), runFlags)
	}

	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	b, err := os.ReadFile(policyMapFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatalf("%s: %v", policyMapFile, err)
	}
	if _, err := score.ParsePolicy([]byte(cm.Data["policy.yaml"])); err != nil {
		t.Errorf("%s: policy.yaml: %v", policyMapFile, err)
	}
}

// envName is the environment variable of a flag, as valora's --help
// describes it: --state-dir from VALORA_STATE_DIR.
func envName(flag string) string {
	return "VALORA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ciScrapeFile is the CI check that builds valora and scrapes it with a real
// Prometheus server.
var ciScrapeFile = filepath.Join(deployDir, "prometheus", "ci-scrape.sh")

// TestDockerfileBuildFlags checks that deploy/Dockerfile builds the binary
// with the environment and flags of buildtest.Env and buildtest.Flags,
// which the real-process crash test builds with, and that
// deploy/prometheus/ci-scrape.sh builds it the same way; it first checks
// the parsing of `go build` commands.
func TestDockerfileBuildFlags(t *testing.T) {
	parse := func(line string, want ...goBuildCmd) {
		t.Helper()
		got, err := goBuildCommands(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			return
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
	parse(`CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/x ./cmd/x && mkdir -p y`,
		goBuildCmd{env: []string{"CGO_ENABLED=0", "GOOS=linux"}, flags: []string{"-trimpath", "-ldflags=-s -w"}})
	parse(`cd /src; env A=1 go build --tags=a,b -o=x -ldflags='-X main.v=1' . | tee log # go build -race`,
		goBuildCmd{env: []string{"A=1"}, flags: []string{"-tags=a,b", "-ldflags=-X main.v=1"}})
	parse(`echo go build -race && go vet ./...`)
	for _, bad := range []string{`go build -ldflags='-s -w`, `go build -ldflags="-s`} {
		if _, err := goBuildCommands(bad); err == nil {
			t.Errorf("%q: no error for an unterminated quote", bad)
		}
	}

	// compare reports where the go build of a file differs from buildtest's.
	compare := func(file string, got goBuildCmd) {
		t.Helper()
		for _, part := range []struct {
			what      string
			got, want []string
		}{{"environment", got.env, buildtest.Env}, {"flag", got.flags, buildtest.Flags}} {
			for _, g := range part.got {
				if !slices.Contains(part.want, g) {
					t.Errorf("%s: go build has %s %q, which buildtest.Env and buildtest.Flags have not", file, part.what, g)
				}
			}
			for _, w := range part.want {
				if !slices.Contains(part.got, w) {
					t.Errorf("%s: go build lacks %s %q of buildtest.Env and buildtest.Flags", file, part.what, w)
				}
			}
		}
	}

	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var builds []goBuildCmd
	for _, run := range dockerfileRuns(string(b)) {
		cmds, err := goBuildCommands(run)
		if err != nil {
			t.Fatalf("%s: RUN %s: %v", dockerfile, run, err)
		}
		builds = append(builds, cmds...)
	}
	if len(builds) != 1 {
		t.Fatalf("%s: %d go build commands in RUN instructions, want 1", dockerfile, len(builds))
	}
	compare(dockerfile, builds[0])

	b, err = os.ReadFile(ciScrapeFile)
	if err != nil {
		t.Fatal(err)
	}
	words := slices.Clone(buildtest.Env)
	words = append(words, "go", "build")
	for _, f := range buildtest.Flags {
		words = append(words, shellWord(f))
	}
	if want := strings.Join(words, " "); !strings.Contains(string(b), want) {
		t.Errorf("%s does not build valora with %s", ciScrapeFile, want)
	}
	builds = nil
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "go build") {
			cmds, err := goBuildCommands(line)
			if err != nil {
				t.Fatalf("%s: %q: %v", ciScrapeFile, line, err)
			}
			builds = append(builds, cmds...)
		}
	}
	if len(builds) != 1 {
		t.Fatalf("%s: %d go build commands, want 1", ciScrapeFile, len(builds))
	}
	compare(ciScrapeFile, builds[0])
}

// goBuildCmd is a `go build` command: its environment assignments
// (NAME=value) and its flags (-flag or -flag=value, as the go command
// receives them), without -o and the packages.
type goBuildCmd struct{ env, flags []string }

// goBuildValueFlags are the go build flags that take a value, which may be
// the next word.
var goBuildValueFlags = map[string]bool{
	"-C": true, "-o": true, "-p": true, "-asmflags": true, "-buildmode": true, "-compiler": true,
	"-gccgoflags": true, "-gcflags": true, "-installsuffix": true, "-ldflags": true, "-mod": true,
	"-modfile": true, "-overlay": true, "-pgo": true, "-pkgdir": true, "-tags": true, "-toolexec": true,
	"-covermode": true, "-coverpkg": true,
}

var shellAssignRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// goBuildCommands returns the `go build` commands of one line of shell
// (continuations joined), optionally run through env.
func goBuildCommands(line string) ([]goBuildCmd, error) {
	cmds, err := shellCommands(line)
	if err != nil {
		return nil, err
	}
	var out []goBuildCmd
	for _, words := range cmds {
		i := 0
		if i < len(words) && words[i] == "env" {
			i++
		}
		for i < len(words) && shellAssignRE.MatchString(words[i]) {
			i++
		}
		if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
			continue
		}
		c := goBuildCmd{env: slices.DeleteFunc(slices.Clone(words[:i]), func(w string) bool { return w == "env" })}
		for j := i + 2; j < len(words); j++ {
			w := words[j]
			if !strings.HasPrefix(w, "-") {
				continue // a package
			}
			w = "-" + strings.TrimLeft(w, "-")
			name, _, hasValue := strings.Cut(w, "=")
			if !hasValue && goBuildValueFlags[name] && j+1 < len(words) {
				j++
				w += "=" + words[j]
			}
			if name != "-o" {
				c.flags = append(c.flags, w)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// shellCommands splits one line of POSIX shell into its simple commands (at
// ;, &, &&, | and ||) and each command into words, quotes removed. It knows
// quotes, backslashes and comments, not expansions or redirections.
func shellCommands(line string) ([][]string, error) {
	var cmds [][]string
	var words []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' at %d", i)
			}
			w.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += 1 + j
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) && strings.IndexByte("$`\"\\", line[j+1]) >= 0 {
					j++
				}
				w.WriteByte(line[j])
			}
			if j == len(line) {
				return nil, fmt.Errorf("unterminated \" at %d", i)
			}
			inWord = true
			i = j
		case c == '\\':
			if i+1 < len(line) {
				i++
				w.WriteByte(line[i])
				inWord = true
			}
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case c == ';' || c == '&' || c == '|':
			endCmd()
			if i+1 < len(line) && line[i+1] == c && c != ';' {
				i++
			}
		case c == '#' && !inWord:
			endCmd()
			return cmds, nil
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds, nil
}

// shellSpecial are the characters that a shell word must quote.
const shellSpecial = " \t\n'\"$\\`*?[]{}();&|<>#~"

// shellWord returns s as one shell word: as it is when it needs no quotes,
// else with its value (after the first =) or all of it in single quotes.
func shellWord(s string) string {
	if !strings.ContainsAny(s, shellSpecial) {
		return s
	}
	prefix := ""
	if i := strings.IndexByte(s, '='); i > 0 && !strings.ContainsAny(s[:i], shellSpecial) {
		prefix, s = s[:i+1], s[i+1:]
	}
	return prefix + "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dockerfileRuns returns the shell form of every RUN instruction of a
// Dockerfile, continuation lines joined and comment lines dropped, without
// the RUN keyword and its --options.
func dockerfileRuns(text string) []string {
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t\r"), `\`); ok {
			cur.WriteString(body)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		instrs = append(instrs, cur.String())
	}
	var runs []string
	for _, in := range instrs {
		f := strings.Fields(in)
		if len(f) == 0 || !strings.EqualFold(f[0], "RUN") {
			continue
		}
		rest := strings.TrimSpace(in)[len(f[0]):]
		for _, opt := range f[1:] {
			if !strings.HasPrefix(opt, "--") {
				break
			}
			rest = strings.TrimPrefix(strings.TrimSpace(rest), opt)
		}
		runs = append(runs, strings.TrimSpace(rest))
	}
	return runs
}

// k8sDoc is one document of a deploy/k8s manifest: its header, where it is,
// and the document itself, to decode by kind.
type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	where string // file and document number
	node  *yaml.Node
}

// loadManifests decodes every document of every deploy/k8s/*.yaml.
func loadManifests(t *testing.T) []k8sDoc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", filepath.Join(deployDir, "k8s"), err)
	}
	var docs []k8sDoc
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 1; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", path, i, err)
			}
			if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
				continue // an empty document
			}
			d := k8sDoc{where: fmt.Sprintf("%s document %d", path, i), node: &n}
			if err := n.Decode(&d); err != nil {
				t.Fatalf("%s: %v", d.where, err)
			}
			if d.APIVersion == "" || d.Kind == "" {
				t.Errorf("%s: apiVersion %q, kind %q: want both", d.where, d.APIVersion, d.Kind)
			}
			if d.Metadata.Name == "" && d.Kind != "Kustomization" {
				t.Errorf("%s: %s has no metadata.name", d.where, d.Kind)
			}
			docs = append(docs, d)
		}
	}
	return docs
}

// k8sProbe is a container probe, as far as the test reads it.
type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// TestDeployManifests checks the deployment files as a whole. deploy/k8s:
// every kind the deployment needs is there (StatefulSet, Service,
// PodDisruptionBudget, ServiceMonitor, PrometheusRule, ConfigMap, and the
// Kustomization, which lists every other manifest); the Service is headless
// and the StatefulSet's serviceName; the StatefulSet has volume claim
// templates, and its valora container probes /healthz (liveness) and /readyz
// (readiness) over HTTP and has resource requests and limits; the
// PodDisruptionBudget selects the StatefulSet's pods. docker-compose.yml:
// services kafka (KRaft: process.roles set), valora, prometheus and grafana,
// and Grafana mounts the provisioning whose dashboard provider loads
// deploy/grafana/valora-dashboard.json.
func TestDeployManifests(t *testing.T) {
	t.Run("k8s", func(t *testing.T) {
		byKind := map[string][]k8sDoc{}
		for _, d := range loadManifests(t) {
			byKind[d.Kind] = append(byKind[d.Kind], d)
		}
		want := []string{"StatefulSet", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "ConfigMap"}
		kustomization := filepath.Join(deployDir, "k8s", "kustomization.yaml")
		var kz struct {
			Kind      string   `yaml:"kind"`
			Resources []string `yaml:"resources"`
		}
		b, err := os.ReadFile(kustomization)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &kz); err != nil {
			t.Fatalf("%s: %v", kustomization, err)
		}
		if kz.Kind != "" {
			want = append(want, "Kustomization")
		}
		for _, k := range want {
			if len(byKind[k]) == 0 {
				t.Errorf("deploy/k8s has no %s", k)
			}
		}
		// one returns the only document of a kind, or fails.
		one := func(kind string, v any) string {
			t.Helper()
			if len(byKind[kind]) != 1 {
				t.Fatalf("deploy/k8s has %d documents of kind %s, want 1", len(byKind[kind]), kind)
			}
			d := byKind[kind][0]
			if err := d.node.Decode(v); err != nil {
				t.Fatalf("%s: %v", d.where, err)
			}
			return d.where
		}

		listed := map[string]bool{}
		for _, r := range kz.Resources {
			listed[r] = true
			if _, err := os.Stat(filepath.Join(deployDir, "k8s", r)); err != nil {
				t.Errorf("%s: resource %s: %v", kustomization, r, err)
			}
		}
		files, _ := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
		for _, f := range files {
			if base := filepath.Base(f); base != "kustomization.yaml" && !listed[base] {
				t.Errorf("%s does not list %s in resources", kustomization, base)
			}
		}

		var svc struct {
			Spec struct {
				ClusterIP string `yaml:"clusterIP"`
			} `yaml:"spec"`
		}
		svcWhere := one("Service", &svc)
		if svc.Spec.ClusterIP != "None" {
			t.Errorf("%s: Service spec.clusterIP %q, want None (headless)", svcWhere, svc.Spec.ClusterIP)
		}

		var sts struct {
			Spec struct {
				ServiceName string `yaml:"serviceName"`
				Template    struct {
					Metadata struct {
						Labels map[string]string `yaml:"labels"`
					} `yaml:"metadata"`
					Spec struct {
						Containers []struct {
							Name           string    `yaml:"name"`
							LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
							ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
							Resources      struct {
								Requests map[string]string `yaml:"requests"`
								Limits   map[string]string `yaml:"limits"`
							} `yaml:"resources"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
				VolumeClaimTemplates []any `yaml:"volumeClaimTemplates"`
			} `yaml:"spec"`
		}
		stsWhere := one("StatefulSet", &sts)
		if name := byKind["Service"][0].Metadata.Name; sts.Spec.ServiceName != name {
			t.Errorf("%s: StatefulSet spec.serviceName %q, want the headless Service %q", stsWhere, sts.Spec.ServiceName, name)
		}
		if len(sts.Spec.VolumeClaimTemplates) == 0 {
			t.Errorf("%s: StatefulSet has no spec.volumeClaimTemplates", stsWhere)
		}
		podLabels := sts.Spec.Template.Metadata.Labels
		if len(podLabels) == 0 {
			t.Errorf("%s: StatefulSet spec.template.metadata.labels is empty", stsWhere)
		}
		found := false
		for _, c := range sts.Spec.Template.Spec.Containers {
			if c.Name != "valora" {
				continue
			}
			found = true
			for _, p := range []struct {
				field, path string
				probe       *k8sProbe
			}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
				switch {
				case p.probe == nil || p.probe.HTTPGet == nil:
					t.Errorf("%s: container valora has no %s.httpGet", stsWhere, p.field)
				case p.probe.HTTPGet.Path != p.path:
					t.Errorf("%s: container valora %s.httpGet.path %q, want %s", stsWhere, p.field, p.probe.HTTPGet.Path, p.path)
				}
			}
			if len(c.Resources.Requests) == 0 {
				t.Errorf("%s: container valora has no resources.requests", stsWhere)
			}
			if len(c.Resources.Limits) == 0 {
				t.Errorf("%s: container valora has no resources.limits", stsWhere)
			}
		}
		if !found {
			t.Errorf("%s: StatefulSet has no container named valora", stsWhere)
		}

		var pdb struct {
			Spec struct {
				Selector struct {
					MatchLabels      map[string]string `yaml:"matchLabels"`
					MatchExpressions []any             `yaml:"matchExpressions"`
				} `yaml:"selector"`
			} `yaml:"spec"`
		}
		pdbWhere := one("PodDisruptionBudget", &pdb)
		sel := pdb.Spec.Selector
		if len(sel.MatchExpressions) > 0 {
			t.Errorf("%s: PodDisruptionBudget spec.selector.matchExpressions: this test only knows matchLabels", pdbWhere)
		}
		if len(sel.MatchLabels) == 0 {
			t.Errorf("%s: PodDisruptionBudget spec.selector.matchLabels is empty", pdbWhere)
		}
		for k, v := range sel.MatchLabels {
			if podLabels[k] != v {
				t.Errorf("%s: PodDisruptionBudget selects %s=%s, which the StatefulSet's pod labels %v lack", pdbWhere, k, v, podLabels)
			}
		}
	})

	t.Run("compose", func(t *testing.T) {
		services := loadCompose(t)
		for _, name := range []string{"kafka", "valora", "prometheus", "grafana"} {
			if _, ok := services[name]; !ok {
				t.Errorf("%s: no service %s", composeFile, name)
			}
		}

		kafka := services["kafka"]
		kraft := kafka.Environment["KAFKA_PROCESS_ROLES"] != ""
		for k, v := range kafka.Environment {
			kraft = kraft || strings.Contains(k, "process.roles") || strings.Contains(v, "process.roles")
		}
		for _, a := range append(slices.Clone(kafka.Entrypoint), kafka.Command...) {
			kraft = kraft || strings.Contains(a, "process.roles")
		}
		if !kraft {
			t.Errorf("%s: service kafka sets neither KAFKA_PROCESS_ROLES nor process.roles: not KRaft", composeFile)
		}

		// mounts maps Grafana's container paths to their host paths.
		mounts := map[string]string{}
		for _, v := range services["grafana"].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: service grafana: volume %q is not host:container", composeFile, v)
				continue
			}
			mounts[path.Clean(parts[1])] = filepath.Join(deployDir, parts[0])
		}
		prov, ok := mounts["/etc/grafana/provisioning"]
		if !ok {
			t.Fatalf("%s: service grafana does not mount the provisioning at /etc/grafana/provisioning", composeFile)
		}
		providerFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.y*ml"))
		if len(providerFiles) == 0 {
			t.Fatalf("%s: no dashboard provider", filepath.Join(prov, "dashboards"))
		}
		var dirs []string
		for _, f := range providerFiles {
			var pf struct {
				Providers []struct {
					Type    string `yaml:"type"`
					Options struct {
						Path string `yaml:"path"`
					} `yaml:"options"`
				} `yaml:"providers"`
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &pf); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, p := range pf.Providers {
				if p.Type == "file" && p.Options.Path != "" {
					dirs = append(dirs, path.Clean(p.Options.Path))
				}
			}
		}
		loaded := false
		for dst, src := range mounts {
			if filepath.Clean(src) == filepath.Clean(dashboardFile) && slices.Contains(dirs, path.Dir(dst)) {
				loaded = true
			}
		}
		if !loaded {
			t.Errorf("%s: service grafana does not mount %s into a directory of its file dashboard providers %q",
				composeFile, dashboardFile, dirs)
		}
	})
}
