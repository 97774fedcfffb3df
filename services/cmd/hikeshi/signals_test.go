package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
)

// A hub with the signals module, as a user runs it: alerts posted to the
// generic endpoint go to an incident, a JIRA ticket, nowhere (none) or are
// dropped, and `hikeshi signals` shows each with the rule that decided and
// where it went.
func TestSignalsCommandListsDecisions(t *testing.T) {
	t.Setenv("SIG_TOKEN", "ingest-token")
	t.Setenv("SIG_JIRA", "jira-token")
	jira := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu") // alerts@acme.test:jira-token
	file, err := config.Parse("hikeshi.yaml", []byte(fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  jira: {base_url: %s, email: alerts@acme.test, token_env: SIG_JIRA, project: OPS}
  rules:
    - name: canaries
      when: 'signal.title.startsWith("Canary")'
      drop: true
    - name: page
      when: 'signal.severity == "critical"'
      route: incident
      incident: {service: payments}
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket
  default: {route: none}
`, jira.URL)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	server := "http://" + runHub(t, hub.Config{Token: "api-token", File: file})

	now := time.Now().UTC().Format(time.RFC3339)
	for _, s := range []string{
		`{"source":"datadog","fingerprint":"db-1","title":"Payments DB down","severity":"critical"}`,
		`{"source":"datadog","fingerprint":"iam-1","kind":"finding","title":"Root login","severity":"high"}`,
		`{"source":"datadog","fingerprint":"canary-1","title":"Canary probe","severity":"critical"}`,
		`{"source":"datadog","fingerprint":"disk-1","title":"Disk 70%","severity":"low"}`,
	} {
		body := strings.Replace(s, "}", `,"starts_at":"`+now+`"}`, 1)
		req, _ := http.NewRequest(http.MethodPost, server+"/api/v1/signals", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer ingest-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d", body, resp.StatusCode)
		}
	}

	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(args, "--server", server, "--token", "api-token"), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var code int
		out, code = cli("signals")
		if code == 0 && strings.Count(out, "datadog") == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hikeshi signals never listed the 4 signals: exit %d\n%s", code, out)
		}
	}
	lines := strings.Split(out, "\n")
	for _, want := range []struct{ fingerprint, rule, route, wentTo string }{
		{"db-1", "page", "incident", "INC-1"},
		{"iam-1", "findings", "ticket", "OPS-1"},
		{"canary-1", "canaries", "drop", "-"},
		{"disk-1", "default", "none", "-"},
	} {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && f[len(f)-1] == want.fingerprint {
				found = true
				n := len(f)
				if got := strings.Join(f[n-4:n-1], " "); got != want.rule+" "+want.route+" "+want.wentTo {
					t.Errorf("%s: rule, route, went to = %q, want %s %s %s", want.fingerprint, got, want.rule, want.route, want.wentTo)
				}
			}
		}
		if !found {
			t.Errorf("%s not listed:\n%s", want.fingerprint, out)
		}
	}
	if out, code := cli("signals", "--route", "drop"); code != 0 || !strings.Contains(out, "canary-1") || strings.Contains(out, "db-1") {
		t.Errorf("--route drop: exit %d\n%s", code, out)
	}
	if out, code := cli("signals", "--route", "page"); code != 1 || !strings.Contains(out, `route "page" must be`) {
		t.Errorf("--route page: exit %d\n%s", code, out)
	}
	var errOut bytes.Buffer
	if code := run(ctx, []string{"signals", "--server", server}, &bytes.Buffer{}, &errOut); code != 1 || !strings.Contains(errOut.String(), "bearer token") {
		t.Errorf("without the API token: exit %d %s", code, errOut.String())
	}
}
