package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// progressRedraw is how often a terminal's progress line is redrawn.
const progressRedraw = 200 * time.Millisecond

// progressOptions configure a progress reporter.
type progressOptions struct {
	// Label names the work ("import", "replay"): it starts every line and
	// is the task label of the gauges.
	Label string
	// Unit is "bytes" (shown as kB, MB, GB) or the plural noun of what is
	// counted ("records").
	Unit string
	// Out receives the lines, usually stderr.
	Out io.Writer
	// Terminal redraws one line in place every 200 ms; otherwise a line is
	// printed every Interval.
	Terminal bool
	Interval time.Duration
	// Off prints nothing (the counters and gauges still work).
	Off bool
	// Detail, when set, is appended to every line, e.g. "1200 rows".
	Detail func() string
	// Registerer, when set, gets the gauges valora_progress_done,
	// valora_progress_total and valora_progress_rate (per second), in Unit,
	// with the constant labels task (Label) and unit (Unit).
	Registerer prometheus.Registerer
}

// progress reports how far some work has got: done out of total (0: not
// known), its rate and the time left. Workers update the counters from any
// goroutine; the reporter's own goroutine prints, until Stop.
type progress struct {
	opts  progressOptions
	done  atomic.Int64
	total atomic.Int64
	rate  atomic.Uint64 // float64 bits: smoothed units per second
	start time.Time

	mu       sync.Mutex // serialises writes to opts.Out
	drawn    bool       // a terminal line is on screen (no newline yet)
	lastAt   time.Time  // guarded by the reporter goroutine until Stop
	lastDone int64

	stopc    chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	gauges   []prometheus.Collector
}

// isTerminal reports whether w is a character device (a terminal), the
// test of golang.org/x/term without the dependency.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress starts a reporter with total units to do (0: unknown).
// The caller must call Stop, which prints the final line.
func startProgress(opts progressOptions, total int64) (*progress, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	p := &progress{opts: opts, start: time.Now(), stopc: make(chan struct{})}
	p.lastAt = p.start
	p.total.Store(total)
	if r := opts.Registerer; r != nil {
		labels := prometheus.Labels{"task": opts.Label, "unit": opts.Unit}
		for _, g := range []struct {
			name, help string
			fn         func() float64
		}{
			{"valora_progress_done", "Units of work done by a long task (import, replay), in the unit label.", func() float64 { return float64(p.done.Load()) }},
			{"valora_progress_total", "Units of work a long task has in all (0: unknown), in the unit label.", func() float64 { return float64(p.total.Load()) }},
			{"valora_progress_rate", "Units of work a long task does per second, smoothed over a few seconds.", p.rateNow},
		} {
			c := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help, ConstLabels: labels}, g.fn)
			if err := r.Register(c); err != nil {
				p.unregister()
				return nil, fmt.Errorf("progress gauge %s: %w", g.name, err)
			}
			p.gauges = append(p.gauges, c)
		}
	}
	if opts.Off {
		return p, nil
	}
	every := opts.Interval
	if opts.Terminal {
		every = progressRedraw
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case now := <-t.C:
				p.tick(now)
				p.print(p.line(now, false))
			}
		}
	})
	return p, nil
}

// Add counts n more units done.
func (p *progress) Add(n int64) { p.done.Add(n) }

// SetTotal changes the total (0: unknown).
func (p *progress) SetTotal(n int64) { p.total.Store(n) }

// Printf prints a message line, keeping a terminal's progress line below
// it.
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.opts.Out, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintln(p.opts.Out, strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
}

// Stop stops the reporter, waits for its goroutine and prints the final
// line (unless Off). It can be called more than once.
func (p *progress) Stop() {
	p.stopOnce.Do(func() {
		close(p.stopc)
		p.wg.Wait()
		if !p.opts.Off {
			p.print(p.line(time.Now(), true))
			p.mu.Lock()
			if p.drawn {
				fmt.Fprintln(p.opts.Out)
				p.drawn = false
			}
			p.mu.Unlock()
		}
	})
}

// unregister removes the gauges; a caller that registers a new reporter
// under the same labels calls it after Stop.
func (p *progress) unregister() {
	for _, g := range p.gauges {
		p.opts.Registerer.Unregister(g)
	}
	p.gauges = nil
}

func (p *progress) rateNow() float64 { return math.Float64frombits(p.rate.Load()) }

// progressSmoothing is the time constant of the rate's exponential
// smoothing.
const progressSmoothing = 3 * time.Second

// tick updates the smoothed rate (reporter goroutine only).
func (p *progress) tick(now time.Time) {
	dt := now.Sub(p.lastAt)
	if dt <= 0 {
		return
	}
	done := p.done.Load()
	inst := float64(done-p.lastDone) / dt.Seconds()
	r := inst
	if p.lastAt != p.start {
		old := p.rateNow()
		r = old + (inst-old)*(1-math.Exp(-dt.Seconds()/progressSmoothing.Seconds()))
	}
	p.rate.Store(math.Float64bits(r))
	p.lastAt, p.lastDone = now, done
}

// line formats the progress at now; final uses the average rate since the
// start and no ETA.
func (p *progress) line(now time.Time, final bool) string {
	done, total := p.done.Load(), p.total.Load()
	elapsed := now.Sub(p.start)
	rate := p.rateNow()
	if final {
		rate = 0
		if s := elapsed.Seconds(); s > 0 {
			rate = float64(done) / s
		}
	}
	var b strings.Builder
	b.WriteString(p.opts.Label)
	if !p.opts.Terminal || final {
		b.WriteString(":")
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		if p.opts.Terminal && !final {
			const width = 30
			n := int(frac * width)
			fmt.Fprintf(&b, " [%s%s]", strings.Repeat("=", n), strings.Repeat(" ", width-n))
		}
		fmt.Fprintf(&b, " %5.1f%% %s / %s", 100*frac, p.amount(done), p.amount(total))
	} else {
		fmt.Fprintf(&b, " %s", p.amount(done))
	}
	fmt.Fprintf(&b, ", %s/s", p.amount(int64(math.Round(rate))))
	switch {
	case final:
		fmt.Fprintf(&b, ", done in %v", elapsed.Round(time.Millisecond))
	case total > 0 && rate > 0:
		left := time.Duration(float64(max(total-done, 0)) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %v", left.Round(time.Second))
	default:
		b.WriteString(", ETA unknown")
	}
	if p.opts.Detail != nil {
		if d := p.opts.Detail(); d != "" {
			b.WriteString(", ")
			b.WriteString(d)
		}
	}
	return b.String()
}

// print writes a progress line: in place on a terminal, else as a line.
func (p *progress) print(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.Terminal {
		fmt.Fprint(p.opts.Out, "\r"+s+"\x1b[K")
		p.drawn = true
		return
	}
	fmt.Fprintln(p.opts.Out, s)
}

// amount formats n units: bytes in decimal multiples, counts as numbers.
func (p *progress) amount(n int64) string {
	if p.opts.Unit != "bytes" {
		return fmt.Sprintf("%d %s", n, p.opts.Unit)
	}
	v := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if v < 1000 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= 1000
	}
	return ""
}
