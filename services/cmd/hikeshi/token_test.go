package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// TestCLITokensAndActors: an admin creates a token with the CLI (printed
// once), a CLI action with it is recorded as the token's identity, the
// list shows its last use, and once revoked it is refused; the service
// token of earlier versions (HIKESHI_TOKEN) still works.
func TestCLITokensAndActors(t *testing.T) {
	ctx := t.Context()
	server := "http://" + runHub(t, hub.Config{Token: "the-service-token"})
	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(args, "--server", server), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	t.Setenv("HIKESHI_TOKEN", "the-service-token")
	out, code := cli("token", "create", "--name", "ci", "--role", "responder", "--expires", "30d")
	secret, _, _ := strings.Cut(out, "\n")
	if code != 0 || !strings.HasPrefix(secret, "hks_") || !strings.Contains(out, "only time the token is shown") {
		t.Fatalf("token create: exit %d %q", code, out)
	}
	id := field(out, "id")
	if out, code := cli("declare", "--title", "Queue backlog", "--service", "jobs", "--severity", "SEV3", "--token", secret); code != 0 {
		t.Fatalf("declare with the new token: exit %d %q", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ = cli("timeline", "INC-1")
		if strings.Contains(out, "token:"+id) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "token:"+id) {
		t.Fatalf("timeline does not name the token's identity token:%s:\n%s", id, out)
	}
	if out, _ := cli("token", "list"); !strings.Contains(out, id) || strings.Contains(out, secret) {
		t.Fatalf("token list: %q", out)
	}
	if out, code := cli("token", "revoke", id); code != 0 || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("token revoke: exit %d %q", code, out)
	}
	if out, code := cli("ls", "--token", secret); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("ls with a revoked token: exit %d %q", code, out)
	}
	if out, code := cli("token", "create", "--name", "x", "--role", "root"); code != 1 || !strings.Contains(out, "role") {
		t.Fatalf("a wrong role: exit %d %q", code, out)
	}
}

// field is the value after "name" on a line of out.
func field(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
