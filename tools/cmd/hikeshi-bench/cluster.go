package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// The cluster scenario appends on a 3-node JetStream cluster (in process,
// routes on loopback, every stream R3): raw publishes with the hub's
// options, the domain core, one hub over HTTP and two hubs at once.

// clusterScenario runs one round of the cluster scenario.
func clusterScenario(ctx context.Context, cfg config, run int, col *collector) error {
	cl, err := startCluster(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer cl.close()
	measure := []struct {
		name string
		f    func() (float64, error)
	}{
		{"raw R3", func() (float64, error) { return publishRaw(ctx, cfg, cl.bus.js) }},
		{"core R3", func() (float64, error) { return appendCore(ctx, cfg, cl.bus) }},
		{"http R3", func() (float64, error) { return cl.appendHubs(ctx, cfg, 1) }},
		{"2 hubs R3", func() (float64, error) { return cl.appendHubs(ctx, cfg, 2) }},
	}
	for _, m := range measure {
		rate, err := m.f()
		if err != nil {
			return fmt.Errorf("cluster %s: %w", m.name, err)
		}
		col.add("cluster", m.name, "events/s", rate)
		progress("run %d/%d cluster %-9s %8.0f events/s", run, cfg.runs, m.name+":", rate)
	}
	col.compare("cluster", "core R3", "raw R3", "≥ 0.80× raw", "command.Handler.Execute(AddNote) on the R3 cluster")
	col.compare("cluster", "http R3", "raw R3", "", "POST /notes, one hub (api+timeline) on the cluster")
	col.compare("cluster", "2 hubs R3", "raw R3", "", "POST /notes through two hubs at once, writers split between them")
	return nil
}

// benchCluster is three nats-server nodes in this process and the hub's
// topology on them, R3.
type benchCluster struct {
	dir     string
	keep    bool
	servers []*server.Server
	bus     *bus
}

func startCluster(ctx context.Context, cfg config) (*benchCluster, error) {
	dir, err := tempDir("cluster")
	if err != nil {
		return nil, err
	}
	cl := &benchCluster{dir: dir, keep: cfg.keep}
	routes := make([]string, 3)
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			cl.close()
			return nil, err
		}
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
	}
	for i := range 3 {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("bench-%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprint(i+1)), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			cl.close()
			return nil, err
		}
		go ns.Start()
		cl.servers = append(cl.servers, ns)
	}
	for _, ns := range cl.servers {
		if !ns.ReadyForConnections(30 * time.Second) {
			cl.close()
			return nil, errors.New("a node was not ready after 30 s")
		}
	}
	cl.bus = &bus{dir: dir, keep: true} // the cluster removes the dir
	if cl.bus.nc, err = natsjs.Connect(nil, cl.urls(), "hikeshi-bench"); err != nil {
		cl.close()
		return nil, err
	}
	if cl.bus.js, err = jetstream.New(cl.bus.nc); err != nil {
		cl.close()
		return nil, err
	}
	// The topology needs the cluster's meta leader: retry until elected.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err := natsjs.EnsureTopology(ctx, cl.bus.js, natsjs.Topology{Replicas: 3})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cl.close()
			return nil, fmt.Errorf("R3 topology: %w", err)
		}
	}
	if cl.bus.store, err = natsjs.NewStore(ctx, cl.bus.js); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (cl *benchCluster) urls() string {
	var u []string
	for _, ns := range cl.servers {
		u = append(u, ns.ClientURL())
	}
	return strings.Join(u, ",")
}

func (cl *benchCluster) close() {
	if cl.bus != nil {
		cl.bus.close()
	}
	for _, ns := range cl.servers {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	if !cl.keep {
		_ = os.RemoveAll(cl.dir)
	}
}

// appendHubs starts n hubs (api+timeline, each its own --node-name) on
// the cluster and appends cfg.n notes through them over HTTP, writer i
// through hub i mod n.
func (cl *benchCluster) appendHubs(ctx context.Context, cfg config, n int) (float64, error) {
	var hubs []*runningHub
	defer func() {
		for _, rh := range hubs {
			rh.close()
		}
	}()
	for i := range n {
		rh, err := startHubOn(ctx, cfg, "cluster-hub", cfg.c, hub.Config{NATSURL: cl.urls(), Replicas: 3, NodeName: fmt.Sprintf("bench%d", i+1)})
		if err != nil {
			return 0, err
		}
		hubs = append(hubs, rh)
	}
	ids, err := hubs[0].declare(ctx, cfg.c)
	if err != nil {
		return 0, err
	}
	return postNotes(ctx, cfg, hubs, ids)
}

// postNotes appends cfg.n notes over HTTP to the incidents ids, writer i
// on ids[i] through hubs[i mod len(hubs)], and returns the rate.
func postNotes(ctx context.Context, cfg config, hubs []*runningHub, ids []string) (float64, error) {
	body, err := json.Marshal(map[string]string{"text": noteText(cfg.noteSize)})
	if err != nil {
		return 0, err
	}
	counts := split(cfg.n, cfg.c)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i, id := range ids {
		rh := hubs[i%len(hubs)]
		g.Go(func() error {
			path := "/api/v1/incidents/" + id + "/notes"
			for range counts[i] {
				if err := rh.post(gctx, path, body, nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(cfg.n) / time.Since(start).Seconds(), nil
}
