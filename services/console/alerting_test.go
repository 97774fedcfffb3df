package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/githubtest"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/signals"
)

// alertingHub runs a hub with the signals module: findings open GitHub
// alert tickets, leaks open a confidential incident, the rest goes
// nowhere. Callers need a token (adminToken is the service token).
func alertingHub(t *testing.T) string {
	t.Helper()
	t.Setenv("CONSOLE_SIG_TOKEN", "sig-token")
	t.Setenv("CONSOLE_SIG_GH", "gh-token")
	gh := githubtest.New(t, "gh-token", "acme/alerts")
	file, err := config.Parse("hikeshi.yaml", fmt.Appendf(nil, `
signals:
  token_env: CONSOLE_SIG_TOKEN
  github: {base_url: %s, repo: acme/alerts, token_env: CONSOLE_SIG_GH}
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket
    - name: leaks
      when: 'signal.labels["kind"] == "leak"'
      route: incident
      incident: {service: auth, confidential: true}
  default: {route: none}
`, gh.URL))
	if err != nil {
		t.Fatal(err)
	}
	return startHub(t, hub.Config{File: file, Token: adminToken, Modules: []module.Module{signals.Module}})
}

const adminToken = "console-admin-token"

// send posts signals to the generic endpoint, one at a time, in order.
func send(t *testing.T, base string, sigs ...string) {
	t.Helper()
	for _, s := range sigs {
		call(t, base, http.MethodPost, "/api/v1/signals", "sig-token", s, http.StatusAccepted)
	}
}

// call sends body to path with a bearer token and wants status; it
// returns the answer's body.
func call(t *testing.T, base, method, path, token, body string, want int) string {
	t.Helper()
	status, out := request(t, base, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, out)
	}
	return out
}

func request(t *testing.T, base, method, path, token, body string) (int, string) {
	t.Helper()
	r, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// mint creates an API token of role and returns its secret.
func mint(t *testing.T, base, role string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	out := call(t, base, http.MethodPost, "/api/v1/tokens", adminToken, `{"name":"console-`+role+`","role":"`+role+`"}`, http.StatusCreated)
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %v %s", err, out)
	}
	return tok.Token
}

// waitDecided waits until the decisions log lists n signals.
func waitDecided(t *testing.T, base string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d signals decided", n), func() bool {
		var got struct {
			Signals []json.RawMessage `json:"signals"`
		}
		// 503 while the projector starts.
		status, out := request(t, base, http.MethodGet, "/api/v1/signals?limit=100", adminToken, "")
		return status == http.StatusOK && json.Unmarshal([]byte(out), &got) == nil && len(got.Signals) == n
	})
}

// signal is the n-th occurrence of fingerprint (each starts at another
// minute: a repeat of the same one would be the same signal).
func signal(fingerprint string, n int, extra string) string {
	return fmt.Sprintf(`{"source":"aws","fingerprint":%q,"title":"%s seen","severity":"high","starts_at":"2026-12-03T10:%02d:00Z"%s}`,
		fingerprint, fingerprint, n, extra)
}

// TestDashboardOpenAlertTickets: the dashboard lists the alert tickets
// still open (the last signal of their fingerprint fired), once each, and
// not one a resolved signal closed.
func TestDashboardOpenAlertTickets(t *testing.T) {
	base := alertingHub(t)
	finding := `,"kind":"finding"`
	send(t, base,
		signal("f-open", 1, finding), signal("f-closed", 1, finding), signal("f-open", 2, finding),
		signal("f-closed", 1, finding+`,"status":"resolved"`), signal("cpu-web3", 1, ""))
	waitDecided(t, base, 5)
	dash := call(t, base, http.MethodGet, "/dashboard", adminToken, "", http.StatusOK)
	if n := strings.Count(dash, "<strong>acme/alerts#1</strong> f-open seen"); n != 1 {
		t.Errorf("the open ticket of f-open is listed %d times, want once:\n%s", n, dash)
	}
	if strings.Contains(dash, "acme/alerts#2") || !strings.Contains(dash, `id="tickets"`) {
		t.Errorf("the ticket closed by a resolved signal is listed, or the section is missing:\n%s", dash)
	}
}

// TestDashboardNoisiest: the dashboard counts the last week's signals by
// rule and by fingerprint, noisiest first; a confidential incident's
// signals are counted only for those who may read it.
func TestDashboardNoisiest(t *testing.T) {
	base := alertingHub(t)
	leak := `,"labels":{"kind":"leak"}`
	send(t, base, signal("leak-1", 1, leak), signal("leak-1", 2, leak), signal("leak-1", 3, leak),
		signal("cpu-web3", 1, ""), signal("cpu-web3", 2, ""), signal("disk-db1", 1, ""))
	waitDecided(t, base, 6)
	row := func(name, url string, n int) string {
		return fmt.Sprintf(`<tr><td><a href="%s">%s</a></td><td>%d</td></tr>`, url, name, n)
	}
	rules := func(dash string) string { return between(t, dash, `id="noisy-rules"`, "</table>") }
	fingerprints := func(dash string) string { return between(t, dash, `id="noisy-fingerprints"`, "</table>") }

	security := call(t, base, http.MethodGet, "/dashboard", adminToken, "", http.StatusOK)
	if got, want := rules(security), row("default", "/signals?rule=default", 3)+row("leaks", "/signals?rule=leaks", 3); !strings.Contains(got, want) {
		t.Errorf("noisiest rules for security:\n%s\nwant\n%s", got, want)
	}
	if got, want := fingerprints(security), row("<code>aws leak-1</code>", "/signals?fingerprint=leak-1&amp;source=aws", 3)+
		row("<code>aws cpu-web3</code>", "/signals?fingerprint=cpu-web3&amp;source=aws", 2)+
		row("<code>aws disk-db1</code>", "/signals?fingerprint=disk-db1&amp;source=aws", 1); !strings.Contains(got, want) {
		t.Errorf("noisiest fingerprints for security:\n%s\nwant\n%s", got, want)
	}

	viewer := call(t, base, http.MethodGet, "/dashboard", mint(t, base, "viewer"), "", http.StatusOK)
	if got := rules(viewer); strings.Contains(got, "leaks") || !strings.Contains(got, row("default", "/signals?rule=default", 3)) {
		t.Errorf("noisiest rules for a viewer:\n%s", got)
	}
	if strings.Contains(viewer, "leak-1") {
		t.Errorf("a viewer sees the confidential incident's signals counted:\n%s", fingerprints(viewer))
	}
}

// between is the part of s from the first from to the next to.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	if i < 0 {
		t.Fatalf("no %s in:\n%s", from, s)
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}
