package signals

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	contract "github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
)

// In a running hub, /metrics shows the signal counters (a duplicate
// delivery counted as such) and the signals consumer's lag.
func TestMetricsInTheHub(t *testing.T) {
	setSecrets(t)
	file, err := config.Parse("hikeshi.yaml", []byte("signals:\n  token_env: SIG_TOKEN\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", File: file, Modules: []contract.Module{Module},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + h.Addr()
	body := fixture(t, "alertmanager-v4.json")
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, base+ingest.PathAlertmanager, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		must(t, resp.StatusCode == http.StatusAccepted, "status %d", resp.StatusCode)
	}
	want := []string{"hikeshi_signals_received_total 4", "hikeshi_signals_stored_total 2", "hikeshi_signals_duplicate_total 2",
		`hikeshi_consumer_lag{consumer="signals"} 0`, "hikeshi_signals_handled_total 2"}
	var text string
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w+"\n") {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", missing, grepLines(text, "signal"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
