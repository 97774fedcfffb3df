//go:build chaos

// Package chaos holds fault tests with real processes: three nats-server
// nodes in a JetStream cluster and hub processes on it, killed, restarted
// and partitioned while clients write. Run them with `make chaos`.
package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bins are the binaries every test runs, built once.
var bins struct{ hikeshi, nats string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hikeshi-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.hikeshi, bins.nats = filepath.Join(dir, "hikeshi"), filepath.Join(dir, "nats-server")
	for bin, pkg := range map[string]string{bins.hikeshi: "github.com/hikeshi/hikeshi/services/cmd/hikeshi", bins.nats: "github.com/nats-io/nats-server/v2"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a process's output, safe to read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a child process: started, then SIGKILLed or SIGTERMed.
type proc struct {
	name string
	args []string
	env  []string
	dir  string
	out  *syncBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.out = &syncBuffer{}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Dir, p.cmd.Env = p.dir, append(cleanEnv(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.done = done
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(p.kill)
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return p.cmd != nil
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// stop sends SIGTERM, as an operator's restart does, and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		t.Errorf("%s did not stop within 60 s of SIGTERM", p.name)
	}
}

// cleanEnv is the environment without HIKESHI_* settings, which would
// override the hubs' flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HIKESHI_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitHTTP waits until url answers 200 through c, or p stops.
func waitHTTP(t *testing.T, p *proc, c *http.Client, url string, timeout time.Duration) {
	t.Helper()
	if err := answers(p, c, url, timeout); err != nil {
		t.Fatal(err)
	}
}

// answers waits until url answers 200 through c; an error says why not.
func answers(p *proc, c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s stopped (%v); output:\n%s", p.name, p.cmd.ProcessState, tail(p.out.String(), 40))
		}
		if resp, err := c.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not 200 after %s; output:\n%s", p.name, url, timeout, tail(p.out.String(), 40))
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// node is one nats-server of the cluster.
type node struct {
	proc
	serverName           string
	host                 string // the address it listens on and others reach it at
	port, route, monitor int
}

func (n *node) url() string { return fmt.Sprintf("nats://%s:%d", n.host, n.port) }

// cluster is three nats-server nodes and the hubs on them.
type cluster struct {
	t     *testing.T
	dir   string
	nodes []*node
	hubs  []*hub
	nc    *nats.Conn
	js    jetstream.JetStream
}

// newCluster writes three nodes' configs and starts them. hosts gives
// each node's address (loopback when nil); wrap, when set, wraps each
// node's command line (to run it in a network namespace).
func newCluster(t *testing.T, hosts []string, wrap func(i int, args []string) []string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	for i := range 3 {
		host := "127.0.0.1"
		if hosts != nil {
			host = hosts[i]
		}
		c.nodes = append(c.nodes, &node{serverName: fmt.Sprintf("n%d", i+1), host: host,
			port: freePort(t), route: freePort(t), monitor: freePort(t)})
	}
	var routes []string
	for _, n := range c.nodes {
		routes = append(routes, fmt.Sprintf("nats-route://%s:%d", n.host, n.route))
	}
	for i, n := range c.nodes {
		conf := filepath.Join(c.dir, n.serverName+".conf")
		// With addresses given, a node listens on all of its own (in its
		// network namespace) and is reached at the one given.
		listen := n.host
		if hosts != nil {
			listen = "0.0.0.0"
		}
		// no_advertise: clients know the nodes they were given, no others.
		text := fmt.Sprintf(`server_name: %s
listen: %s:%d
http: %s:%d
jetstream { store_dir: %q }
cluster {
  name: chaos
  listen: %s:%d
  no_advertise: true
  routes: [%s]
}
`, n.serverName, listen, n.port, listen, n.monitor, filepath.Join(c.dir, n.serverName), listen, n.route, strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		n.name, n.dir = "nats "+n.serverName, c.dir
		n.args = []string{bins.nats, "-c", conf}
		if wrap != nil {
			n.args = wrap(i, n.args)
		}
		n.start(t)
	}
	for _, n := range c.nodes {
		c.waitNode(n)
	}
	var err error
	c.nc, err = nats.Connect(c.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitNode waits until the node's JetStream is current with the cluster.
func (c *cluster) waitNode(n *node) {
	c.t.Helper()
	waitHTTP(c.t, &n.proc, apiClient, fmt.Sprintf("http://%s:%d/healthz", n.host, n.monitor), 60*time.Second)
}

func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

// restart starts a stopped node again on its store and waits until it
// has caught up.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	n.start(c.t)
	c.waitNode(n)
}

// leader is the node leading the incident stream's raft group, and the
// others.
func (c *cluster) leader() (*node, []*node) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := c.js.Stream(ctx, events.IncidentStream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			var others []*node
			var lead *node
			for _, n := range c.nodes {
				if n.serverName == info.Cluster.Leader {
					lead = n
				} else {
					others = append(others, n)
				}
			}
			if lead != nil {
				return lead, others
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatal("the incident stream has no leader after 30 s")
	return nil, nil
}

// replicasCurrent waits until every replica of the incident stream is
// current: a node restarted has caught up before the next is stopped.
func (c *cluster) replicasCurrent(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := c.js.Stream(ctx, events.IncidentStream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == 2 {
			ok := true
			for _, r := range info.Cluster.Replicas {
				ok = ok && r.Current && !r.Offline
			}
			if ok {
				return
			}
			last = fmt.Sprintf("leader %s, replicas %+v", info.Cluster.Leader, info.Cluster.Replicas)
		} else if err != nil {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("the incident stream's replicas are not all current after %s: %s", timeout, last)
}

// hub is a `hikeshi serve` process on the cluster.
type hub struct {
	proc
	base   string
	client *http.Client // the client that reaches it
}

// startHub starts a hub named name (--node-name) on every node of the
// cluster, with more flags and environment when given, and waits until
// it is ready.
func (c *cluster) startHub(name string, env []string, flags ...string) *hub {
	c.t.Helper()
	return c.startHubWith(name, hubOptions{env: env, flags: flags})
}

// hubOptions are a hub's settings beyond the usual.
type hubOptions struct {
	env, flags []string
	nats       string                       // NATS URLs; default: every node
	wrap       func(args []string) []string // wraps the command line
	client     *http.Client                 // reaches the hub; default apiClient
}

func (c *cluster) startHubWith(name string, o hubOptions) *hub {
	c.t.Helper()
	dataDir := filepath.Join(c.dir, "hub-"+name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	if o.nats == "" {
		o.nats = c.urls()
	}
	if o.client == nil {
		o.client = apiClient
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	h := &hub{base: "http://" + addr, client: o.client}
	h.name, h.dir, h.env = "hub "+name, dataDir, o.env
	h.args = append([]string{bins.hikeshi, "serve", "--nats", o.nats, "--replicas", "3", "--node-name", name,
		"--data-dir", dataDir, "--listen", addr, "--log-level", "warn"}, o.flags...)
	if o.wrap != nil {
		h.args = o.wrap(h.args)
	}
	h.start(c.t)
	// A hub process has, rarely, stopped at once without a word: say so,
	// and start it once more.
	if err := answers(&h.proc, h.client, h.base+"/readyz", 90*time.Second); err != nil {
		if h.running() {
			c.t.Fatal(err)
		}
		c.t.Logf("starting again: %v", err)
		h.start(c.t)
		waitHTTP(c.t, &h.proc, h.client, h.base+"/readyz", 90*time.Second)
	}
	c.hubs = append(c.hubs, h)
	return h
}

// dump logs every process's output tail when the test failed, and keeps
// the whole of each in a file it names.
func (c *cluster) dump() {
	if !c.t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "hikeshi-chaos-"+c.t.Name()+"-")
	if err != nil {
		c.t.Log(err)
	}
	for _, p := range c.procs() {
		c.t.Logf("--- %s:\n%s", p.name, tail(p.out.String(), 30))
		if dir != "" {
			os.WriteFile(filepath.Join(dir, strings.ReplaceAll(p.name, " ", "-")+".log"), []byte(p.out.String()), 0o600)
		}
	}
	c.t.Logf("every process's whole output: %s", dir)
}

func (c *cluster) procs() []*proc {
	var ps []*proc
	for _, n := range c.nodes {
		ps = append(ps, &n.proc)
	}
	for _, h := range c.hubs {
		ps = append(ps, &h.proc)
	}
	return ps
}
