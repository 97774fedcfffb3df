package notify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/notify"
)

func TestConfigErrors(t *testing.T) {
	t.Setenv("HIKESHI_TEST_HOOK_SECRET", hookSecret)
	const smtp = "  smtp: {host: mail.acme.test, from: incidents@acme.test}\n"
	const oncall = "  recipients:\n    oncall: {email: oncall@acme.test}\n"
	for _, c := range []struct{ name, yaml, want string }{
		{"no rules", smtp + oncall, "notify.rules: no rules"},
		{"unknown key", smtp + oncall + "  rules: [{name: a, on: [declared], to: [oncall], colour: red}]\n", "colour"},
		{"both channels", smtp + "  recipients:\n    x: {email: a@acme.test, webhook: https://h.test/}\n  rules: [{name: a, on: [declared], to: [x]}]\n", "exactly one of email, webhook and slack"},
		{"display name", smtp + "  recipients:\n    x: {email: 'Ops <ops@acme.test>'}\n  rules: [{name: a, on: [declared], to: [x]}]\n", "bare address"},
		{"webhook scheme", "  recipients:\n    x: {webhook: 'ftp://h.test/', secret_env: HIKESHI_TEST_HOOK_SECRET}\n  rules: [{name: a, on: [declared], to: [x]}]\n", "http(s) URL"},
		{"webhook secret unset", "  recipients:\n    x: {webhook: 'https://h.test/', secret_env: HIKESHI_TEST_UNSET}\n  rules: [{name: a, on: [declared], to: [x]}]\n", "HIKESHI_TEST_UNSET is not set"},
		{"no smtp", oncall + "  rules: [{name: a, on: [declared], to: [oncall]}]\n", "notify.smtp.host"},
		{"smtp tls", "  smtp: {host: m, from: a@acme.test, tls: maybe}\n" + oncall + "  rules: [{name: a, on: [declared], to: [oncall]}]\n", "starttls, tls, none"},
		{"smtp password", "  smtp: {host: m, from: a@acme.test, username: u, password_env: HIKESHI_TEST_UNSET}\n" + oncall + "  rules: [{name: a, on: [declared], to: [oncall]}]\n", "HIKESHI_TEST_UNSET is not set"},
		{"unnamed rule", smtp + oncall + "  rules: [{on: [declared], to: [oncall]}]\n", "name the rule"},
		{"duplicate rule", smtp + oncall + "  rules: [{name: a, on: [declared], to: [oncall]}, {name: a, on: [closed], to: [oncall]}]\n", "used twice"},
		{"severity", smtp + oncall + "  rules: [{name: a, severity: SEV9, on: [declared], to: [oncall]}]\n", "SEV9"},
		{"no trigger", smtp + oncall + "  rules: [{name: a, to: [oncall]}]\n", "notify.rules.a.on"},
		{"bad trigger", smtp + oncall + "  rules: [{name: a, on: [paged], to: [oncall]}]\n", `"paged" is not one of`},
		{"bad status", smtp + oncall + "  rules: [{name: a, on: [status_updated], statuses: [closed], to: [oncall]}]\n", "closing is the trigger closed"},
		{"statuses without trigger", smtp + oncall + "  rules: [{name: a, on: [declared], statuses: [resolved], to: [oncall]}]\n", "only used with"},
		{"template", smtp + oncall + "  rules: [{name: a, on: [declared], template: board, to: [oncall]}]\n", `no template "board"`},
		{"no recipients", smtp + oncall + "  rules: [{name: a, on: [declared]}]\n", "no recipients"},
		{"unknown recipient", smtp + oncall + "  rules: [{name: a, on: [declared], to: [cto]}]\n", `no recipient named "cto"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := config.Parse("hikeshi.yaml", []byte("notify:\n"+c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = notify.Load(f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestSignature is the README's verification example, checked.
func TestSignature(t *testing.T) {
	body := []byte(`{"id":"5a8c1f3e-2d7b-8946-b0c5-e3f1a9d72b04"}`)
	secret := []byte("whsec-example")
	const ts = "1741945693"
	sig := notify.Sign(secret, ts, body)
	// Computed independently: printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac whsec-example
	if sig != "sha256=40a3447dd54b2117ec5139957013edb51af7c742406f51ecc8b5bfc06c6bd3a0" {
		t.Fatalf("signature %q", sig)
	}
	at := time.Unix(1741945693, 0)
	if err := notify.Verify(secret, ts, sig, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a fresh delivery: %v", err)
	}
	for name, c := range map[string]struct {
		secret, ts, sig string
		body            []byte
		now             time.Time
	}{
		"other secret": {"whsec-other", ts, sig, body, at},
		"changed body": {string(secret), ts, sig, []byte(`{"id":"x"}`), at},
		"old":          {string(secret), ts, sig, body, at.Add(6 * time.Minute)},
		"from future":  {string(secret), ts, sig, body, at.Add(-6 * time.Minute)},
		"bad ts":       {string(secret), "yesterday", sig, body, at},
		"other ts":     {string(secret), "1741945694", sig, body, at},
	} {
		if err := notify.Verify([]byte(c.secret), c.ts, c.sig, c.body, c.now, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestExampleConfig: the notify: section of deploy/hikeshi.yaml loads.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "hikeshi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("deploy/hikeshi.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HIKESHI_SMTP_PASSWORD", "x")
	t.Setenv("HIKESHI_STATUSPAGE_SECRET", "y")
	cfg, _, err := notify.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) == 0 {
		t.Fatal("deploy/hikeshi.yaml has no notify rules")
	}
}
