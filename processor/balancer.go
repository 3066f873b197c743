package processor

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"valora/processor/group"
)

// balancers returns the group balancers in order of preference (package
// group): the plan is the group package's, the member's state is the
// processor's, reported by warmTasks and acted on by setStandbys.
func (p *Processor) balancers() []kgo.GroupBalancer {
	return group.Balancers(group.Balancer{
		Advertise: strings.TrimSuffix(p.cfg.AdvertiseURL, "/"),
		Replicas:  p.cfg.StandbyReplicas,
		Warm:      p.warmTasks,
		OnStandby: p.setStandbys,
	})
}
