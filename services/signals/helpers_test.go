package signals

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hikeshi/hikeshi/services/signals/signaltest"
)

// The token and secrets are signaltest's.
const testToken = signaltest.Token

var setSecrets = signaltest.SetSecrets

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
