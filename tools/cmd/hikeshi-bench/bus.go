package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bus is a fresh embedded JetStream server with the hub's topology.
type bus struct {
	dir   string
	keep  bool
	ns    *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *natsjs.Store
}

func tempDir(name string) (string, error) {
	return os.MkdirTemp("", "hikeshi-bench-"+name+"-")
}

func startBus(ctx context.Context, cfg config, name string) (*bus, error) {
	dir, err := tempDir(name)
	if err != nil {
		return nil, err
	}
	return openBus(ctx, &bus{dir: dir, keep: cfg.keep}, filepath.Join(dir, "nats"))
}

// openBus starts b's embedded server on storeDir (new or kept from an
// earlier run), connects and ensures the hub's topology; b is closed on
// failure.
func openBus(ctx context.Context, b *bus, storeDir string) (*bus, error) {
	var err error
	if b.ns, err = natsjs.StartEmbedded(natsjs.EmbeddedConfig{StoreDir: storeDir}); err != nil {
		b.close()
		return nil, err
	}
	if b.nc, err = natsjs.Connect(b.ns, "", "hikeshi-bench"); err != nil {
		b.close()
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.close()
		return nil, err
	}
	if err := natsjs.EnsureTopology(ctx, b.js, natsjs.Topology{}); err != nil {
		b.close()
		return nil, err
	}
	if b.store, err = natsjs.NewStore(ctx, b.js); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bus) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if !b.keep {
		_ = os.RemoveAll(b.dir)
	}
}

// runningHub is a whole hub (api + timeline) on 127.0.0.1:0 in a temp dir.
type runningHub struct {
	h      *hub.Hub
	dir    string
	keep   bool
	base   string
	cancel context.CancelFunc
	done   chan error
	client *http.Client
}

func startHub(ctx context.Context, cfg config, name string, conns int) (*runningHub, error) {
	return startHubOn(ctx, cfg, name, conns, hub.Config{})
}

// startHubOn starts a hub with on's settings (an external NATS, replicas,
// a node name) in a new temp dir.
func startHubOn(ctx context.Context, cfg config, name string, conns int, on hub.Config) (*runningHub, error) {
	dir, err := tempDir(name)
	if err != nil {
		return nil, err
	}
	on.DataDir, on.Listen, on.Logger = dir, "127.0.0.1:0", slog.Default()
	if on.Store == "" {
		on.Store = cfg.store
	}
	h, err := hub.Start(ctx, on)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	rh := &runningHub{
		h: h, dir: dir, keep: cfg.keep, base: "http://" + h.Addr(), cancel: cancel, done: make(chan error, 1),
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        conns * 2,
				MaxIdleConnsPerHost: conns * 2,
				MaxConnsPerHost:     0,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
			},
		},
	}
	go func() { rh.done <- h.Run(rctx) }()
	return rh, nil
}

func (rh *runningHub) close() error {
	rh.cancel()
	err := <-rh.done
	rh.client.CloseIdleConnections()
	if !rh.keep {
		_ = os.RemoveAll(rh.dir)
	}
	return err
}

// post sends a JSON body and decodes a JSON answer into out.
func (rh *runningHub) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rh.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return rh.do(req, out)
}

func (rh *runningHub) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rh.base+path, nil)
	if err != nil {
		return err
	}
	return rh.do(req, out)
}

func (rh *runningHub) do(req *http.Request, out any) error {
	resp, err := rh.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// declare opens n incidents through the API and returns their ids.
func (rh *runningHub) declare(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		body := fmt.Sprintf(`{"title":"bench incident %d","service":"bench","severity":"SEV3","declared_by":"bench"}`, i)
		var st struct {
			ID string `json:"id"`
		}
		if err := rh.post(ctx, "/api/v1/incidents", []byte(body), &st); err != nil {
			return nil, err
		}
		ids[i] = st.ID
	}
	return ids, nil
}

func noteText(size int) string {
	const alphabet = "the quick brown fox jumps over the lazy dog; "
	return strings.Repeat(alphabet, size/len(alphabet)+1)[:size]
}

// split divides n events among c writers.
func split(n, c int) []int {
	out := make([]int, c)
	for i := range out {
		out[i] = n / c
		if i < n%c {
			out[i]++
		}
	}
	return out
}
