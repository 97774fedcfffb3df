package signals

import (
	"os"
	"path/filepath"
	"testing"
)

const testToken = "s3cret-token"

func setSecrets(t *testing.T) {
	t.Setenv("SIG_TOKEN", testToken)
	t.Setenv("SIG_GRAFANA_HMAC", "grafana-hmac")
	t.Setenv("SIG_AWS_SECRET", "aws-secret")
}

const incidentYAML = `
signals:
  token_env: SIG_TOKEN
  count_every: 50
  rules:
    - name: drop-canaries
      when: 'signal.title.startsWith("Canary")'
      drop: true
    - name: page
      when: 'signal.severity in ["critical", "high"]'
      route: incident
      annotate:
        playbook: https://runbooks.acme.internal/disk
`

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("ingest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t testing.TB, cond bool, format string, a ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, a...)
	}
}
