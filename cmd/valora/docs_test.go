package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocLinks checks every relative link of the README, docs/ and
// BENCHMARKS.md: the file it names exists, and so does the heading its
// fragment names (GitHub's anchors), so that moving a section cannot
// leave a link behind.
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{"README.md", "BENCHMARKS.md", "deploy/README.md"}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, rel)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	link := regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	fence := regexp.MustCompile("(?s)```.*?```")
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		a := map[string]bool{}
		for _, ln := range strings.Split(fence.ReplaceAllString(string(b), ""), "\n") {
			if h := strings.TrimLeft(ln, "#"); len(h) < len(ln) && strings.HasPrefix(h, " ") {
				a[githubAnchor(h)] = true
			}
		}
		anchors[path] = a
		return a
	}
	for _, f := range files {
		path := filepath.Join(root, f)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(fence.ReplaceAllString(string(b), ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dst := path
			if file != "" {
				dst = filepath.Join(filepath.Dir(path), file)
			}
			if _, err := os.Stat(dst); err != nil {
				t.Errorf("%s: link %s: %v", f, target, err)
				continue
			}
			if frag != "" && strings.HasSuffix(dst, ".md") && !anchorsOf(dst)[frag] {
				t.Errorf("%s: link %s: no such heading", f, target)
			}
		}
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading's text.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
