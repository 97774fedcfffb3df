package signals

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
)

func TestExplain(t *testing.T) {
	f, err := config.Parse("hikeshi.yaml", []byte(incidentYAML))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Explain(f, []byte(`{"source":"alertmanager","kind":"alert","fingerprint":"f","status":"firing","title":"DiskFull",
		"severity":"critical","starts_at":"2025-06-04T11:02:30Z","group_key":"g"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d.Describe(&out)
	for _, want := range []string{"matched: page", "action: incident", "playbook: https://runbooks.acme.internal/disk"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := Explain(f, []byte(`{"source":"x"}`)); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("invalid signal: %v", err)
	}
}
