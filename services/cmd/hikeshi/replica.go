package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go/jetstream"
)

const replicaUsage = "list | retire NAME [--nats URL | --data-dir DIR]"

// replicaCmd dispatches hikeshi replica list|retire: the timeline
// consumers of the hub replicas (serve --node-name) on a bus.
func replicaCmd(ctx context.Context, args []string, w io.Writer) error {
	return dispatch(ctx, args, w, subcommand{[]string{"list", "ls"}, replicaList}, subcommand{[]string{"retire"}, replicaRetire})
}

// openReplicas opens the bus a replica command works on.
func openReplicas(ctx context.Context, name, usage string, args []string) (*record, []string, error) {
	cfg := hub.Config{}
	f := newFlags(name, usage)
	hubFlags(f, &cfg)
	pos, err := f.parse(args)
	if err != nil {
		return nil, nil, err
	}
	rec, err := openRecord(ctx, &cfg)
	return rec, pos, err
}

func replicaList(ctx context.Context, args []string, w io.Writer) error {
	rec, pos, err := openReplicas(ctx, "replica list", "[--nats URL | --data-dir DIR]", args)
	if err != nil {
		return err
	}
	defer rec.close()
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, strings.Join(pos, " "))
	}
	stream, err := rec.js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.IncidentStream, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCONSUMER\tREADING\tBEHIND\tRETIRED AFTER")
	prefix := hub.ReplicaDurable("x")
	prefix = prefix[:len(prefix)-1]
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		durable := info.Config.Durable
		node, named := strings.CutPrefix(durable, prefix)
		if !named && durable != hub.ReplicaDurable("") {
			continue
		}
		if !named {
			node = "(single hub)"
		}
		retire := "never"
		if t := info.Config.InactiveThreshold; t > 0 {
			retire = t.String() + " without a reader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", node, durable, info.PushBound, info.NumPending+uint64(info.NumAckPending), retire)
	}
	if err := list.Err(); err != nil {
		return fmt.Errorf("consumers: %w", err)
	}
	return tw.Flush()
}

func replicaRetire(ctx context.Context, args []string, w io.Writer) error {
	rec, pos, err := openReplicas(ctx, "replica retire", "NAME [--nats URL | --data-dir DIR]", args)
	if err != nil {
		return err
	}
	defer rec.close()
	if len(pos) != 1 || pos[0] == "" {
		return fmt.Errorf("%w: name the replica to retire (its --node-name; 'hikeshi replica list' shows them)", errUsage)
	}
	name := pos[0]
	if err := hub.ValidNodeName(name); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	durable := hub.ReplicaDurable(name)
	c, err := rec.js.PushConsumer(ctx, events.IncidentStream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("no replica %s: there is no consumer %s ('hikeshi replica list' shows the replicas)", name, durable)
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", durable, err)
	}
	if c.CachedInfo().PushBound {
		return fmt.Errorf("replica %s is running (its consumer %s has a reader): stop that hub first", name, durable)
	}
	if err := rec.js.DeleteConsumer(ctx, events.IncidentStream, durable); err != nil {
		return fmt.Errorf("delete consumer %s: %w", durable, err)
	}
	fmt.Fprintf(w, "retired replica %s: deleted its timeline consumer %s (a hub started again with --node-name %s rebuilds it from its own timeline's checkpoint)\n", name, durable, name)
	return nil
}

// readingTimelines names the replicas' timeline consumers that have a
// reader: the hubs running a timeline.
func readingTimelines(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	stream, err := js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.IncidentStream, err)
	}
	prefix := strings.TrimSuffix(hub.ReplicaDurable("x"), "x")
	var reading []string
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		d := info.Config.Durable
		if info.PushBound && (d == hub.ReplicaDurable("") || strings.HasPrefix(d, prefix)) {
			reading = append(reading, d)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("consumers: %w", err)
	}
	return reading, nil
}
