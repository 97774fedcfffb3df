package slackbot

import (
	"os"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
)

// The example configuration stays valid, commented socket mode included.
func TestDeployExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/hikeshi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{string(b), strings.Replace(strings.Replace(string(b),
		"# socket_mode: true", "socket_mode: true", 1), "# app_token_env:", "app_token_env:", 1)} {
		f, err := config.Parse("deploy/hikeshi.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.SocketMode != (i == 1) || c.EscalateShortcut != "escalate" || c.AppTokenEnv != "SLACK_APP_TOKEN" {
			t.Fatalf("loaded %+v", c)
		}
	}
}
