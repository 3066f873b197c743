package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// changelogMaxCompactionLag is the max.compaction.lag.ms of the topics
// valora keeps compacted: it bounds how long a superseded value (an erased
// customer's last state or profile, before its tombstone) may stay in the
// log: a week, then the active segment rolls and is compacted.
const changelogMaxCompactionLag = "604800000"

// compactedTopic is a topic valora keeps compacted, so that reading it
// from the start gives every live customer's latest record.
type compactedTopic struct {
	kind  string // "changelog" or "profile", in errors and logs
	name  string
	parts int // the inputs' partition count, for a topic valora creates
	// samePartitions refuses an existing topic with another partition
	// count than parts, saying how to recover.
	samePartitions string
	// createHint follows a failed creation's error; loss says what is lost
	// without compaction.
	createHint, loss string
}

// checkChangelog makes sure the changelog topic exists with one partition
// per task and compaction on: a changelog partition is a task's state, so
// a wrong partition count or a delete policy would lose it.
func (p *Processor) checkChangelog(ctx context.Context, adm *kadm.Client, parts int) error {
	if p.cfg.Topics.Changelog == "" {
		return nil
	}
	return p.ensureCompacted(ctx, adm, compactedTopic{
		kind: "changelog", name: p.cfg.Topics.Changelog, parts: parts,
		samePartitions: "each task needs its own partition; point --changelog-topic at a new topic (valora creates it) and the tasks publish their state there",
		loss:           "or old state is deleted by retention",
	})
}

// checkProfiles makes sure the profile topic, if any, exists and is
// compacted, so that a reader from its start gets every live customer's
// latest profile.
func (p *Processor) checkProfiles(ctx context.Context, adm *kadm.Client, parts int) error {
	if !p.profilesOn() {
		return nil
	}
	return p.ensureCompacted(ctx, adm, compactedTopic{
		kind: "profile", name: p.cfg.Topics.Profiles, parts: parts,
		createHint: ` (create it compacted, or run without profiles: --profiles-topic "")`,
		loss:       "or customers whose profile has not changed for the retention time disappear from it",
	})
}

// ensureCompacted creates topic t if it is missing (whatever
// Config.CreateTopics says: valora owns it), and refuses an existing one
// whose cleanup.policy lacks compact or, with t.samePartitions, whose
// partition count is not t.parts. A policy it cannot read is logged, not
// refused: some brokers deny DescribeConfigs to a client that may write.
func (p *Processor) ensureCompacted(ctx context.Context, adm *kadm.Client, t compactedTopic) error {
	details, err := adm.ListTopics(ctx, t.name)
	if err != nil {
		return fmt.Errorf("list %s topic: %w", t.kind, err)
	}
	d, ok := details[t.name]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return p.createCompacted(ctx, adm, t)
	}
	if d.Err != nil {
		return fmt.Errorf("describe %s topic %q: %w", t.kind, t.name, d.Err)
	}
	if t.samePartitions != "" && len(d.Partitions) != t.parts {
		return fmt.Errorf("%s topic %q has %d partitions, but the inputs have %d: %s", t.kind, t.name, len(d.Partitions), t.parts, t.samePartitions)
	}
	policy, found, err := cleanupPolicy(ctx, adm, t.name)
	if err != nil {
		p.log.Warn("cannot check the topic's cleanup policy", "topic", t.name, "err", err)
		return nil
	}
	if found && !strings.Contains(policy, "compact") {
		return fmt.Errorf("%s topic %q has cleanup.policy=%s: it must include compact, %s", t.kind, t.name, policy, t.loss)
	}
	return nil
}

// createCompacted creates t compacted, with max.compaction.lag.ms, or
// without it on a broker that does not know the setting.
func (p *Processor) createCompacted(ctx context.Context, adm *kadm.Client, t compactedTopic) error {
	cfg := map[string]*string{
		"cleanup.policy":        kadm.StringPtr("compact"),
		"max.compaction.lag.ms": kadm.StringPtr(changelogMaxCompactionLag),
	}
	err := createTopic(ctx, adm, t.name, int32(t.parts), cfg)
	if errors.Is(err, kerr.InvalidConfig) {
		p.log.Warn("the broker refused max.compaction.lag.ms; creating the topic without it", "topic", t.name, "err", err)
		delete(cfg, "max.compaction.lag.ms")
		err = createTopic(ctx, adm, t.name, int32(t.parts), cfg)
	}
	if err != nil {
		return fmt.Errorf("create %s topic %q%s: %w", t.kind, t.name, t.createHint, err)
	}
	lag := "broker default"
	if v := cfg["max.compaction.lag.ms"]; v != nil {
		lag = *v
	}
	p.log.Info("created "+t.kind+" topic", "topic", t.name, "partitions", t.parts, "cleanup.policy", "compact", "max.compaction.lag.ms", lag)
	return nil
}

// cleanupPolicy returns topic's cleanup.policy, and whether the broker
// named one.
func cleanupPolicy(ctx context.Context, adm *kadm.Client, topic string) (policy string, found bool, err error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", false, err
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return "", false, err
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			return *c.Value, true, nil
		}
	}
	return "", false, nil
}

// createTopic creates a topic with the broker's default replication
// factor; one that exists already is fine. A broker that has just started
// (or is too loaded to have renewed its registration) refuses with
// INVALID_REPLICATION_FACTOR or a retriable error for a while: those are
// retried for up to 30s.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, parts int32, configs map[string]*string) error {
	return retry(ctx, 30*time.Second, 500*time.Millisecond, func(err error) bool {
		return kerr.IsRetriable(err) || errors.Is(err, kerr.InvalidReplicationFactor)
	}, func(ctx context.Context) error {
		resp, err := adm.CreateTopic(ctx, parts, -1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	})
}

// retry calls op until it succeeds, fails with an error passing does not
// accept, ctx ends, or within has passed since the first call, waiting
// every between calls. It returns op's last error, or ctx's.
func retry(ctx context.Context, within, every time.Duration, passing func(error) bool, op func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !passing(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
