package main

import (
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection checks that dependencies point one way: cmd over the
// library packages, calibrate over txcsv and the scoring packages, the
// processor over its changelog package, which knows only the store, and
// over its group protocol and data structures (leaves), which know nothing
// of the project, and no library package reaching back. The HTTP API
// (httpapi) sits beside the processor: it knows the processor only as the
// interface it declares, the commands wire the two, and the processor does
// not know it. It reads the
// import lists of the packages' non-test files, so it needs no build and
// no network.
func TestImportDirection(t *testing.T) {
	root := filepath.Join("..", "..")
	deps := moduleImports(t, root, "valora")
	for _, rule := range []struct {
		from   string // a package, or a prefix ending in "/..."
		banned string
	}{
		{"valora/processor/...", "valora/cmd/..."},
		{"valora/state/...", "valora/processor/..."},
		{"valora/state/...", "valora/cmd/..."},
		{"valora/schemas/...", "valora/processor/..."},
		{"valora/schemas/...", "valora/cmd/..."},
		{"valora/processor/txcsv", "valora/processor/calibrate"},
		{"valora/processor/calibrate", "valora/processor"},
		{"valora/processor/txcsv", "valora/processor"},
		{"valora/processor/changelog", "valora/processor"},
		{"valora/processor/changelog", "valora/cmd/..."},
		{"valora/processor", "valora/processor/httpapi"},
	} {
		for pkg := range deps {
			if !matchPkg(rule.from, pkg) {
				continue
			}
			for dep, via := range reach(deps, pkg) {
				if matchPkg(rule.banned, dep) {
					t.Errorf("%s imports %s (via %s); %s must not depend on %s", pkg, dep, via, rule.from, rule.banned)
				}
			}
		}
	}
	// Direct imports: the changelog package builds on the store (and the
	// schemas) only, and the commands reach it through the processor; the
	// HTTP API needs only the customer and the policy's profile of it.
	for _, rule := range []struct {
		from    string
		allowed []string
	}{
		{"valora/processor/changelog", []string{"valora/state", "valora/schemas"}},
		// The memory budget is arithmetic over sizes: cmd plans it, the
		// processor takes its sizes.
		{"valora/processor/budget", nil},
		{"valora/processor/httpapi", []string{"valora/processor/score", "valora/schemas"}},
	} {
		for _, dep := range deps[rule.from] {
			if !slices.Contains(rule.allowed, dep) {
				t.Errorf("%s imports %s; it may import only %s", rule.from, dep, strings.Join(rule.allowed, ", "))
			}
		}
	}
	// The processor's packages are below it.
	for pkg := range deps {
		if pkg == "valora/processor" || !matchPkg("valora/processor/...", pkg) {
			continue
		}
		if via, ok := reach(deps, pkg)["valora/processor"]; ok {
			t.Errorf("%s imports valora/processor (via %s); the processor's packages are below it", pkg, via)
		}
	}
	for _, leaf := range leaves {
		if len(deps[leaf]) > 0 {
			t.Errorf("%s imports %s; it may import no package of the project", leaf, strings.Join(deps[leaf], ", "))
		}
	}
	// The commands reach the processor's own packages through it.
	internal := append([]string{"valora/processor/changelog"}, leaves...)
	for pkg, imports := range deps {
		for _, dep := range internal {
			if matchPkg("valora/cmd/...", pkg) && slices.Contains(imports, dep) {
				t.Errorf("%s imports %s; the commands reach it through the processor", pkg, dep)
			}
		}
	}
	for _, want := range append([]string{"valora/processor/txcsv", "valora/processor/calibrate", "valora/processor/changelog",
		"valora/processor/budget", "valora/processor/httpapi", "valora/cmd/valora"}, leaves...) {
		if _, ok := deps[want]; !ok {
			t.Errorf("package %s not found under %s", want, root)
		}
	}
	for _, leaf := range leaves {
		if !slices.Contains(deps["valora/processor"], leaf) {
			t.Errorf("valora/processor does not import %s: the rules above check nothing", leaf)
		}
	}
	if !slices.Contains(deps["valora/cmd/valora"], "valora/processor/httpapi") || !slices.Contains(deps["valora/cmd/valora"], "valora/processor") {
		t.Error("valora/cmd/valora does not wire valora/processor/httpapi to valora/processor: the rules above check nothing")
	}
	if !reachable(deps, "valora/processor/calibrate", "valora/processor/txcsv") {
		t.Error("valora/processor/calibrate does not import valora/processor/txcsv: the rules above check nothing")
	}
	if !reachable(deps, "valora/processor/changelog", "valora/state") || !reachable(deps, "valora/processor", "valora/processor/changelog") {
		t.Error("valora/processor/changelog is not between valora/processor and valora/state: the rules above check nothing")
	}
}

// matchPkg reports whether pkg is pattern, or under it when pattern ends
// in "/...".
func matchPkg(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

// leaves are the processor's packages that import nothing of the project:
// the group protocol and the data structures its tasks use.
var leaves = []string{
	"valora/processor/group",
	"valora/processor/knownids",
	"valora/processor/histogram",
	"valora/processor/partition",
}

// moduleImports returns, for every package of the module under root, the
// module's packages its non-test files import.
func moduleImports(t *testing.T, root, module string) map[string][]string {
	t.Helper()
	deps := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		pkg := path.Join(module, filepath.ToSlash(rel))
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := deps[pkg]; !ok {
			deps[pkg] = nil
		}
		for _, imp := range f.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if matchPkg(module+"/...", ip) {
				deps[pkg] = append(deps[pkg], ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return deps
}

// reach returns every module package pkg depends on, directly or not, each
// with the package that imports it on one path from pkg.
func reach(deps map[string][]string, pkg string) map[string]string {
	seen := map[string]string{}
	stack := []string{pkg}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range deps[p] {
			if _, ok := seen[d]; !ok && d != pkg {
				seen[d] = p
				stack = append(stack, d)
			}
		}
	}
	return seen
}

func reachable(deps map[string][]string, from, to string) bool {
	_, ok := reach(deps, from)[to]
	return ok
}
