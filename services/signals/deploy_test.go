package signals

import (
	"os"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
)

// The example configuration stays valid: its section decodes strictly
// and its rules compile.
func TestDeployExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/hikeshi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("deploy/hikeshi.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if ok, err := f.Section(Name, &c); err != nil || !ok {
		t.Fatalf("signals section: %v %v", ok, err)
	}
	if _, err := c.Projector.Compile(); err != nil {
		t.Fatal(err)
	}
}
