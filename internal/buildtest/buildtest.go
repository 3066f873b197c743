// Package buildtest builds the valora binary for the tests that run it as
// a process, the way the release image does: deploy/Dockerfile's `go
// build` has the environment Env and the flags Flags, which the deploy
// tests check it (and deploy/prometheus/ci-scrape.sh) still uses.
package buildtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Env and Flags are the environment (NAME=value) and the flags (as the go
// command receives them, after shell quoting) of the release build,
// without -o and the package.
var (
	Env   = []string{"CGO_ENABLED=0"}
	Flags = []string{"-trimpath", "-ldflags=-s -w"}
)

// Build builds valora/cmd/valora with Env and Flags into dir and returns
// the binary's path. The go command's errors go to the test's stderr.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "valora")
	args := append(append([]string{"build"}, Flags...), "-o", bin, "valora/cmd/valora")
	build := exec.Command("go", args...)
	build.Env = append(os.Environ(), Env...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return bin, nil
}

// Valora builds the binary with Build into a temporary directory of t.
func Valora(t testing.TB) string {
	t.Helper()
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
