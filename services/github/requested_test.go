package github_test

import (
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// TestPostmortemRequestedFromSlack: the request fact the Slack module
// appends opens the pull request while the incident is still open; asking
// again, restarting the projector and closing open no second one.
func TestPostmortemRequestedFromSlack(t *testing.T) {
	h, fake, p := setup(t, "")
	stop := h.Run(t, []projection.Projector{{Durable: github.Name, Handle: p.Handle}})
	st := h.Declare(t, incident.Declare{Title: "Search latency", Service: "search", Severity: "SEV3", DeclaredBy: "alice"})
	ask := func() {
		h.Do(t, st.ID, incident.RecordFact{Data: &events.PostmortemRequested{RequestedBy: "UALICE001", Via: "slack"}})
	}
	ask()
	integrationtest.Eventually(t, "postmortem_opened", func() bool { return h.Count(t, st.ID, events.TypeGitHubPostmortemOpened) == 1 })
	if n := len(fake.Repo("acme/postmortems").Pulls); n != 1 {
		t.Fatalf("%d pulls after the request", n)
	}
	stop()
	p2, err := github.New(h.Env)
	if err != nil {
		t.Fatal(err)
	}
	stop = h.Run(t, []projection.Projector{{Durable: github.Name, Handle: p2.Handle}})
	defer stop()
	ask()
	h.Do(t, st.ID, incident.UpdateStatus{Status: "resolved"})
	h.Do(t, st.ID, incident.Close{Resolution: "index rebuilt"})
	h.Replay(t, st.ID, p2.Handle) // every event delivered again
	if n := len(fake.Repo("acme/postmortems").Pulls); n != 1 {
		t.Fatalf("%d pulls after a second request, a restart and close", n)
	}
	if n := h.Count(t, st.ID, events.TypeGitHubPostmortemOpened); n != 1 {
		t.Fatalf("postmortem_opened %d times", n)
	}
	if n := fake.Count("POST", "/pulls"); n != 1 {
		t.Fatalf("%d pull request creations", n)
	}
}
