//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace joined to the test's by one veth pair:
// cutting the pair partitions what runs inside from what runs outside.
type netns struct {
	name, hostIf        string
	hostAddr, innerAddr string
}

// newNetns makes the namespace, or says why it cannot.
func newNetns(t *testing.T) (*netns, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root")
	}
	id := os.Getpid() % 100000
	n := &netns{name: fmt.Sprintf("hkchaos%d", id), hostIf: fmt.Sprintf("hkc%d", id),
		hostAddr: "10.251.0.1", innerAddr: "10.251.0.2"}
	if err := ip("netns", "add", n.name); err != nil {
		return nil, err
	}
	t.Cleanup(func() { ip("netns", "del", n.name) }) // takes the veth pair with it
	for _, args := range [][]string{
		{"link", "add", n.hostIf, "type", "veth", "peer", "name", "inner", "netns", n.name},
		{"addr", "add", n.hostAddr + "/30", "dev", n.hostIf},
		{"link", "set", n.hostIf, "up"},
		{"-n", n.name, "addr", "add", n.innerAddr + "/30", "dev", "inner"},
		{"-n", n.name, "link", "set", "inner", "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// wrap runs a command line inside the namespace.
func (n *netns) wrap(args []string) []string {
	return append([]string{"ip", "netns", "exec", n.name}, args...)
}

// cut and heal take the link between the namespace and the test down
// and up.
func (n *netns) cut() error  { return ip("link", "set", n.hostIf, "down") }
func (n *netns) heal() error { return ip("link", "set", n.hostIf, "up") }

// client is an HTTP client whose connections are made inside the
// namespace: it reaches a hub listening on the namespace's loopback
// whatever the partition.
func (n *netns) client() *http.Client {
	path := "/var/run/netns/" + n.name
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The thread switches namespace for good and is never unlocked:
			// it ends with this goroutine. The socket stays in the namespace.
			runtime.LockOSThread()
			f, err := os.Open(path)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", path, err)}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	return &http.Client{Timeout: apiClient.Timeout, Transport: &http.Transport{DialContext: dial}}
}

// TestMinorityPartition cuts one node, the incident stream's leader, off
// from the other two, with a hub that can reach only that node. Writes
// through that hub are answered 503 and never 2xx while cut off; the
// majority goes on; after the partition heals, every acknowledged note,
// through either hub, is on the stream exactly once.
func TestMinorityPartition(t *testing.T) {
	ns, err := newNetns(t)
	if err != nil {
		t.Skipf("the partition test needs root and a working `ip netns add` (it runs in CI as root): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// n1 and n2 outside, n3 in the namespace.
	c := newCluster(t, []string{ns.hostAddr, ns.hostAddr, ns.innerAddr}, func(i int, args []string) []string {
		if i == 2 {
			return ns.wrap(args)
		}
		return args
	})
	t.Cleanup(c.dump)
	minority := c.nodes[2]
	// Hub a knows every node; its write connection is on the node to be
	// cut off, so that it has to notice the silence and move.
	var a *hub
	for attempt := 0; a == nil; attempt++ {
		h := c.startHub("a", nil)
		if c.connections(minority, "hikeshi") == 1 {
			a = h
		} else if h.kill(); attempt == 20 {
			t.Fatalf("hub a's connection never landed on %s in 20 starts", minority.name)
		}
	}
	m := c.startHubWith("m", hubOptions{nats: minority.url(), wrap: ns.wrap, client: ns.client()})
	c.leadOn(minority)

	var incidents []string
	for i := range 4 {
		incidents = append(incidents, declare(t, ctx, a, fmt.Sprintf("partition %d", i)))
	}
	// Clients 0 and 2 write through a, 1 and 3 through m, each staying there.
	l := startLoad(t, ctx, []*hub{a, m}, incidents, true)
	t.Cleanup(l.stop)
	l.waitAcks(100, 60*time.Second)

	t.Logf("cutting %s and hub m off from the other two nodes", minority.name)
	if err := ns.cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	m503 := l.n503[m].Load()
	// Long enough for hub a to find its node stale (pings every 2 s,
	// three unanswered) and move to the majority even on a loaded machine,
	// where that took up to 10 s.
	time.Sleep(30 * time.Second)
	healAt := time.Now()
	m503 = l.n503[m].Load() - m503
	if err := ns.heal(); err != nil {
		t.Fatal(err)
	}
	c.replicasCurrent(90 * time.Second)
	l.waitAcks(100, 60*time.Second)
	l.stop()
	l.report()

	// What each hub acknowledged while the partition lasted: a note sent
	// to m once the cut had taken hold cannot have been stored, so m must
	// not have answered 2xx for it.
	const settle = 5 * time.Second
	l.mu.Lock()
	var byA, byM int
	var firstA time.Time
	for _, n := range l.notes {
		if n.acked.Before(cutAt) || n.acked.After(healAt) {
			continue
		}
		switch n.ackedBy {
		case a:
			byA++
			if n.sent.After(cutAt) && (firstA.IsZero() || n.acked.Before(firstA)) {
				firstA = n.acked
			}
		case m:
			byM++
			if n.sent.After(cutAt.Add(settle)) {
				t.Errorf("hub m acknowledged %s, sent %.1f s into the partition", n.key, n.sent.Sub(cutAt).Seconds())
			}
		}
	}
	l.mu.Unlock()
	t.Logf("during the %.0f s partition: hub a acknowledged %d notes; hub m acknowledged %d (all sent before the cut took hold) and answered %d times 503",
		healAt.Sub(cutAt).Seconds(), byA, byM, m503)
	// Hub a's connection was on the node cut off: it must notice and
	// write through the majority while the partition lasts.
	if firstA.IsZero() {
		t.Errorf("hub a acknowledged no write sent during the %.0f s partition: it stayed on the node cut off", healAt.Sub(cutAt).Seconds())
	} else {
		t.Logf("hub a's first acknowledgement of a write sent after the cut came %.1f s after it", firstA.Sub(cutAt).Seconds())
	}
	if m503 == 0 {
		t.Error("hub m did not answer 503 to any write during the partition")
	}
	l.verify(ctx, c, []*hub{a})
}

// connections is how many client connections named name node has.
func (c *cluster) connections(n *node, name string) int {
	c.t.Helper()
	resp, err := apiClient.Get(fmt.Sprintf("http://%s:%d/connz?limit=1024", n.host, n.monitor))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var connz struct {
		Connections []struct{ Name string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		c.t.Fatal(err)
	}
	count := 0
	for _, conn := range connz.Connections {
		if conn.Name == name {
			count++
		}
	}
	return count
}

// leadOn moves the incident stream's leadership to n: the partition
// then cuts the leader off, the case where a stale leader could answer.
func (c *cluster) leadOn(n *node) {
	c.t.Helper()
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": n.serverName}})
	for range 20 {
		if lead, _ := c.leader(); lead == n {
			return
		}
		c.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN.INCIDENTS", req, 5*time.Second)
		time.Sleep(time.Second)
	}
	c.t.Fatalf("the incident stream's leader did not move to %s", n.name)
}
