package hub

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go"
)

// Hub replicas on one bus. Each replica that runs the timeline keeps a
// complete timeline of its own, so it reads the incident stream through a
// consumer of its own, named after the replica: a shared consumer would
// split the events between them, and one replica realigning it to its own
// store would move the other's. Side-effect projectors keep one shared
// consumer each, so every event is handled once across the replicas.

// DefaultNodeRetireAfter is how long the server keeps a named replica's
// timeline consumer once no process reads it: a replica gone for good is
// cleaned up; one that comes back later refills its consumer from its
// store's checkpoint.
const DefaultNodeRetireAfter = 72 * time.Hour

// maxNodeName keeps timeline-<name> well inside a consumer name's limits.
const maxNodeName = 64

// ReplicaDurable is the timeline consumer of the replica named name;
// timeline's own name for the unnamed single hub.
func ReplicaDurable(name string) string {
	if name == "" {
		return timeline.Name
	}
	return timeline.Name + "-" + name
}

// ValidNodeName accepts letters, digits, '-' and '_' (what a consumer
// name may hold, and a file name too): a node name is part of one.
func ValidNodeName(name string) error {
	if len(name) > maxNodeName {
		return fmt.Errorf("node name %q is longer than %d characters", name, maxNodeName)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("node name %q may hold only letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

// timelineDurable is this hub's timeline consumer.
func (c *Config) timelineDurable() string { return ReplicaDurable(c.NodeName) }

// timelineProjection is the timeline projector on this replica's own
// consumer; a named replica's is removed by the server after
// NodeRetireAfter without a reader.
func (h *Hub) timelineProjection() projection.Projector {
	p := timeline.New(h.timeline).CatchUp(h.bus.Events)
	p.Durable = h.cfg.timelineDurable()
	if h.cfg.NodeName != "" {
		p.InactiveThreshold = h.cfg.NodeRetireAfter
	}
	return p
}

// warnReplicas says when a hub connected to a NATS cluster keeps one copy of
// its streams: losing the node that holds one stops the hub.
func warnReplicas(c *Config, nc *nats.Conn) {
	if cluster := nc.ConnectedClusterName(); cluster != "" && c.Replicas < 3 {
		logger := c.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("connected to a NATS cluster with --replicas below 3: each stream and bucket this hub creates lives on fewer nodes, and losing one of them stops writes; start every hub with --replicas 3",
			"cluster", cluster, "replicas", max(c.Replicas, 1))
	}
}
