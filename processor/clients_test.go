package processor

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClientOpts builds a client of every role, with Config.ClientOpts
// that set a client id and fetch size of their own, and checks what each
// role promises: the group consumer and the readers take ClientOpts over
// their settings, the transactional producer keeps its client id and its
// call's transactional id, the hooks go on the group consumer and the
// transactional producer only, and every reader reads read_committed with
// control records.
func TestClientOpts(t *testing.T) {
	p := &Processor{cfg: Config{
		Brokers:        []string{"127.0.0.1:1"},
		Group:          "g",
		SessionTimeout: 45 * time.Second,
		Topics:         Topics{Interactions: "i", Purchases: "p", Changelog: "c"},
		ClientOpts:     []kgo.Opt{kgo.ClientID("user"), kgo.FetchMaxBytes(12345)},
		Hooks:          []kgo.Hook{optsHook{}},
		FetchBytes:     DefaultFetchBytes,
		QueueBytes:     DefaultQueueBytes,
	}}
	for _, tc := range []struct {
		role      clientRole
		extra     []kgo.Opt
		id        string
		fetch     int32
		hooks     int
		group     string
		committed bool
	}{
		{roleGroup, nil, "user", 12345, 1, "g", true},
		{roleTxn, []kgo.Opt{kgo.TransactionalID("g-k")}, "valora-txn", 12345, 1, "", false},
		{roleRestore, []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"c": {0: kgo.NewOffset().At(3)}})}, "user", 12345, 0, "", true},
		{roleStandby, []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"c": {0: kgo.NewOffset().AtStart()}})}, "user", 12345, 0, "", true},
		{roleAdmin, nil, "user", 12345, 0, "", false},
	} {
		cl, err := kgo.NewClient(p.clientOpts(tc.role, tc.extra...)...)
		if err != nil {
			t.Fatalf("role %d: %v", tc.role, err)
		}
		if got := cl.OptValue(kgo.ClientID); got != tc.id {
			t.Errorf("role %d: client id %v, want %s", tc.role, got, tc.id)
		}
		if got := cl.OptValue(kgo.FetchMaxBytes); got != tc.fetch {
			t.Errorf("role %d: fetch max bytes %v, want %d", tc.role, got, tc.fetch)
		}
		if got := reflect.ValueOf(cl.OptValue(kgo.WithHooks)).Len(); got != tc.hooks {
			t.Errorf("role %d: %d hooks, want %d", tc.role, got, tc.hooks)
		}
		if got := cl.OptValue(kgo.ConsumerGroup); got != tc.group {
			t.Errorf("role %d: group %q, want %q", tc.role, got, tc.group)
		}
		if tc.committed && cl.OptValue(kgo.KeepControlRecords) != true {
			t.Errorf("role %d: control records dropped", tc.role)
		}
		if tc.role == roleTxn {
			if got := cl.OptValue(kgo.TransactionalID); got != "g-k" {
				t.Errorf("transactional id %v, want g-k", got)
			}
		}
		cl.Close()
	}
}

// optsHook is a hook that does nothing.
type optsHook struct{}

func (optsHook) OnNewClient(*kgo.Client) {}
