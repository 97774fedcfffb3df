package slackbot

import (
	"strings"
	"testing"
)

// TestKickoffLinksToTheIncidentPage: the kickoff's Timeline link opens the
// incident's page in the web console, not a JSON endpoint that needs a
// token.
func TestKickoffLinksToTheIncidentPage(t *testing.T) {
	r := newRig(t, "")
	st, ch := r.incidentChannel("Checkout down")
	want := "https://hikeshi.example.test/incidents/" + st.ID + "|Timeline"
	for _, m := range r.slack.Channels()[ch].Messages {
		if strings.Contains(m.Blocks, "|Timeline") {
			if !strings.Contains(m.Blocks, want) {
				t.Fatalf("kickoff links to the wrong place, want %s:\n%s", want, m.Blocks)
			}
			return
		}
	}
	t.Fatal("no kickoff with a Timeline link in the channel")
}
