package natstest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of embedded servers in this process,
// each with its own client port, route port and store directory on
// loopback, like three machines: a test stops a node to see what its loss
// does, and starts it again on the same files.
type Cluster struct {
	t       testing.TB
	name    string
	opts    []*server.Options
	servers []*server.Server // nil while a node is stopped
}

// ClusterSize is how many nodes StartCluster runs: the smallest cluster
// that keeps a majority (and so takes writes) with one node lost.
const ClusterSize = 3

// StartCluster runs ClusterSize nodes in temporary directories and waits
// until JetStream has a leader. It creates no stream: a hub started with
// Replicas: ClusterSize does, as natsjs.EnsureTopology. The nodes stop when
// the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: "hikeshi-test"}
	var routes []string
	clientPorts, routePorts := freePorts(t, ClusterSize), freePorts(t, ClusterSize)
	for i := range ClusterSize {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	dir := t.TempDir()
	for i := range ClusterSize {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:      true,
			NoSigs:     true,
		})
		c.servers = append(c.servers, nil)
	}
	t.Cleanup(c.StopAll)
	for i := range ClusterSize {
		c.Start(i)
	}
	c.WaitReady()
	return c
}

// freePorts finds n free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Start starts node i (0-based), again after Stop, on its files and ports.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.servers[i] != nil {
		return
	}
	o := *c.opts[i]
	ns, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("node %d: %v", i, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		c.t.Fatalf("node %d not ready for connections", i)
	}
	c.servers[i] = ns
}

// Stop shuts node i down, as a machine lost.
func (c *Cluster) Stop(i int) {
	if ns := c.servers[i]; ns != nil {
		c.servers[i] = nil
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// StopAll stops every node; the test's cleanup calls it.
func (c *Cluster) StopAll() {
	for i := range c.servers {
		c.Stop(i)
	}
}

// Server is node i's server; nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server { return c.servers[i] }

// URL is node i's client URL; for i < 0, every node's, comma-separated,
// as a client that may fail over is given them.
func (c *Cluster) URL(i int) string {
	if i >= 0 {
		return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
	}
	var urls []string
	for n := range c.opts {
		urls = append(urls, c.URL(n))
	}
	return strings.Join(urls, ",")
}

// Node is the index of the node named name (a server name, such as a
// connection's ConnectedServerName), or -1.
func (c *Cluster) Node(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// Connect connects to node i (every node for i < 0) with the hub's
// options (reconnecting for ever), closed when the test ends.
func (c *Cluster) Connect(i int, name string) *nats.Conn {
	c.t.Helper()
	nc, err := natsjs.Connect(nil, c.URL(i), name)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// JS is JetStream on nc.
func (c *Cluster) JS(nc *nats.Conn) jetstream.JetStream {
	c.t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// WaitReady waits until the running nodes have a JetStream leader that
// counts every one of them among its peers, so that a stream with a
// replica on each can be placed.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	eventually(c.t, "a JetStream leader with every node", func() error {
		running := 0
		for _, ns := range c.servers {
			if ns != nil {
				running++
			}
		}
		for _, ns := range c.servers {
			if ns != nil && ns.JetStreamIsLeader() {
				if peers := ns.JetStreamClusterPeers(); len(peers) < running {
					return fmt.Errorf("the leader sees %d of %d nodes", len(peers), running)
				}
				return nil
			}
		}
		return errors.New("no meta leader")
	})
}

// StreamLeader is the index of the node leading stream, or -1 while none
// does.
func (c *Cluster) StreamLeader(stream string) int {
	for i, ns := range c.servers {
		if ns != nil && ns.JetStreamIsStreamLeader(ns.GlobalAccount().Name, stream) {
			return i
		}
	}
	return -1
}

// ConsumerLeader is the index of the node leading the stream's consumer,
// or -1 while none does.
func (c *Cluster) ConsumerLeader(stream, consumer string) int {
	for i, ns := range c.servers {
		if ns != nil && ns.JetStreamIsConsumerLeader(ns.GlobalAccount().Name, stream, consumer) {
			return i
		}
	}
	return -1
}

// Lead makes node i the leader of stream and of the stream's consumers
// named, by asking their leaders to step down in its favour: a test then
// loses every leader at once by stopping node i.
func (c *Cluster) Lead(i int, stream string, consumers ...string) {
	c.t.Helper()
	nc := c.Connect(-1, "natstest-lead")
	defer nc.Close()
	placement := fmt.Sprintf(`{"placement":{"preferred":%q}}`, c.opts[i].ServerName)
	lead := func(what, subject string, leader func() int) {
		eventually(c.t, fmt.Sprintf("node %d to lead %s", i, what), func() error {
			if leader() == i {
				return nil
			}
			if _, err := nc.Request(subject, []byte(placement), 2*time.Second); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			if l := leader(); l != i {
				return fmt.Errorf("node %d leads", l)
			}
			return nil
		})
	}
	lead("stream "+stream, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, func() int { return c.StreamLeader(stream) })
	for _, name := range consumers {
		lead("consumer "+name, "$JS.API.CONSUMER.LEADER.STEPDOWN."+stream+"."+name, func() int { return c.ConsumerLeader(stream, name) })
	}
}

// WaitStreamLeader waits until a running node leads stream, and returns
// its index.
func (c *Cluster) WaitStreamLeader(stream string) int {
	c.t.Helper()
	var leader int
	eventually(c.t, "a leader of stream "+stream, func() error {
		if leader = c.StreamLeader(stream); leader < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return leader
}

// eventually retries f for up to 30 s (elections take seconds) and fails
// the test with its last error.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
