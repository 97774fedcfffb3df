package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const crashSignalsToken = "crash-signals-token"

// signalsConfig is a hikeshi.yaml whose signals open incidents.
func signalsConfig(t *testing.T) string {
	t.Helper()
	t.Setenv("CRASH_SIGNALS_TOKEN", crashSignalsToken)
	path := filepath.Join(t.TempDir(), "hikeshi.yaml")
	yaml := "signals:\n  token_env: CRASH_SIGNALS_TOKEN\n  default:\n    route: incident\n    incident: {service: checkout}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type readiness struct {
	Status  string            `json:"status"`
	Standby map[string]string `json:"standby"`
}

func (h *hubProc) readyz(t *testing.T, ctx context.Context) readiness {
	t.Helper()
	var r readiness
	getJSON(t, ctx, h.base+"/readyz", &r)
	return r
}

// waitStandby waits until the hub's /readyz names what its signal
// projector waits for, and returns it.
func (h *hubProc) waitStandby(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last readiness
	for time.Now().Before(deadline) {
		last = h.readyz(t, ctx)
		if d := last.Standby["signals projector"]; strings.Contains(d, want) {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz never named %q as the lease holder the signal projector waits for: %+v; output:\n%s", want, last, h.output)
	return ""
}

func postSignal(t *testing.T, ctx context.Context, base, fingerprint string) {
	t.Helper()
	body := fmt.Sprintf(`{"source":"crash","fingerprint":%q,"title":"Disk full on db-1","severity":"high","starts_at":"2026-12-03T00:00:00Z"}`, fingerprint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/signals", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+crashSignalsToken)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/signals: %s", resp.Status)
	}
}

// waitIncidents waits until the hub lists n incidents.
func (h *hubProc) waitIncidents(t *testing.T, ctx context.Context, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var list struct {
			Incidents []struct {
				ID string `json:"id"`
			} `json:"incidents"`
		}
		getJSON(t, ctx, h.base+"/api/v1/incidents", &list)
		items := list.Incidents
		if len(items) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d incidents after %s, want %d: the signal projector is not running; output:\n%s", len(items), within, n, h.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A hub killed with SIGKILL leaves the signal projector's lease in the
// bucket. Restarted on the same data dir it holds that data dir's lock
// again, so the lease's holder, recorded under the data dir's identity, is
// its dead predecessor: it takes the lease at once, where it used to wait
// out the lease's 30 s with a log line blaming another process. A hub on
// another data dir sharing the bus waits as a standby, and says so on
// /readyz (200: its API serves meanwhile).
func TestSignalsLeaseTakenAtOnceAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: lease-crash test, builds and kills the hikeshi binary; runs in make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := signalsConfig(t)
	natsAddr := freeAddr(t)
	dataDir := t.TempDir()
	flags := []string{"--config", cfg, "--nats-listen", natsAddr, "--log-level", "info"}
	a := startHub(t, dataDir, flags...)
	postSignal(t, ctx, a.base, "db-1/disk")
	a.waitIncidents(t, ctx, 1, 30*time.Second)

	// Another data dir on the same bus: a standby, ready, naming the holder.
	standby := startHub(t, t.TempDir(), "--config", cfg, "--nats", "nats://"+natsAddr)
	detail := standby.waitStandby(t, ctx, fmt.Sprintf("pid %d, data dir %s", a.cmd.Process.Pid, dataDir))
	t.Logf("standby /readyz: %s", detail)
	if !strings.Contains(standby.output.String(), "waits as a standby") {
		t.Errorf("the standby did not log whom it waits for; output:\n%s", standby.output)
	}
	standby.kill() // it would take over after 30 s; this test is about a's restart

	a.kill()
	a = startHub(t, dataDir, flags...)
	postSignal(t, ctx, a.base, "db-2/disk")
	// Well within the lease's 30 s time to live: the lease was taken at once.
	a.waitIncidents(t, ctx, 2, 10*time.Second)
	if r := a.readyz(t, ctx); len(r.Standby) > 0 {
		t.Errorf("restarted hub still reports a standby: %+v", r)
	}
	out := a.output.String()
	if !strings.Contains(out, "took over the signal projector lease at once from the previous process of this data dir") {
		t.Errorf("restarted hub did not log the takeover from its dead predecessor; output:\n%s", out)
	}
	if strings.Contains(out, "waits as a standby") {
		t.Errorf("restarted hub waited for its dead predecessor; output:\n%s", out)
	}
}
