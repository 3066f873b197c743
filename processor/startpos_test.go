package processor

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"valora/internal/deliverytest"
	"valora/internal/kafkatest"
)

// warnLog records the warnings and errors franz-go logs.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *warnLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l *warnLog) Log(level kgo.LogLevel, msg string, _ ...any) {
	if level > kgo.LogLevelWarn {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
}

// TestStartPositionsCommitted crashes an instance before the group's
// offsets caught up with its state, and starts another on the same state
// directory with no new input: the group's offsets reach the restored
// positions all the same (lag tooling follows the state), and the client
// logs no warning on the way (a commit sent before the client took the
// new session's offsets came back to "a group session that has ended").
func TestStartPositionsCommitted(t *testing.T) {
	h := newHarness(t, 4)
	dir := filepath.Join(t.TempDir(), "a")
	group := h.topics.Purchases + "-g"
	var recs []*kgo.Record
	for i := range 40 {
		recs = append(recs, h.buy(fmt.Sprintf("start-%d", i), day(i%7), int64(1000+i)))
	}
	r := h.start(dir, group)
	r.send(recs...)
	if err := r.shutdown(t, true); err != nil {
		t.Logf("crashed instance: %v", err)
	}

	logs := &warnLog{}
	r2 := h.start(dir, group, func(c *Config) {
		c.ClientOpts = append(c.ClientOpts, kgo.WithLogger(logs))
	})
	adm := kadm.NewClient(h.b.Client(t))
	kafkatest.Eventually(t, time.Minute, func() error {
		if got := deliverytest.GroupHandled(adm, group, h.topics.Interactions, h.topics.Purchases); got != int64(len(recs)) {
			return fmt.Errorf("the group's offsets cover %d of %d records", got, len(recs))
		}
		return nil
	})
	if err := r2.shutdown(t, false); err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, m := range logs.msgs {
		if strings.Contains(m, "group session has ended") {
			t.Errorf("franz-go warned: %s", m)
		}
	}
}
