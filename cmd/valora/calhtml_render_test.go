package main

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// envRequireChromium set to 1 makes a missing Chromium fail
// TestCalibrateHTMLRenders instead of skipping it (CI installs Chromium).
const envRequireChromium = "VALORA_REQUIRE_CHROMIUM"

// TestCalibrateHTMLRenders renders the --report file with headless
// Chromium, from the file alone (it has no external resource), and checks
// in the screenshot that the charts were drawn: the pixels of the MBG/NBD
// line colour (#d62728) and of the darkest P(alive) cells (near pure blue)
// are there in numbers a chart's lines and cells make, not a stray pixel.
func TestCalibrateHTMLRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		msg := "no chromium on PATH"
		if os.Getenv(envRequireChromium) == "1" {
			t.Fatalf("%s (%s=1 forbids skipping)", msg, envRequireChromium)
		}
		t.Skipf("%s (set %s=1 to fail instead of skipping)", msg, envRequireChromium)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	calRunJSON(t, "--csv", calCDNOWSample, "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
		"--time-unit", "week", "--model", "mbgnbd", "--out", filepath.Join(dir, "p.yaml"), "--report", report)
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1000,3000", "--screenshot="+shot, "file://"+report)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	near := func(r, g, b, R, G, B uint32) bool {
		d := func(a, b uint32) uint32 {
			if a > b {
				return a - b
			}
			return b - a
		}
		return d(r, R)+d(g, G)+d(b, B) < 60
	}
	var red, blue int
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			if near(r, g, b, 0xd6, 0x27, 0x28) {
				red++
			}
			if near(r, g, b, 0, 0, 255) {
				blue++
			}
		}
	}
	if red < 500 || blue < 2000 {
		t.Errorf("screenshot %v: %d pixels of the MBG/NBD line colour, %d of the darkest P(alive) cells; want at least 500 and 2000", bounds, red, blue)
	}
	t.Logf("rendered %v: %d line pixels, %d dark cell pixels", bounds.Size(), red, blue)
}
