package github_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// TestControlCharactersNeverReachGitHub: a title with CR/LF and a note with
// terminal escapes reach neither the pull request, the recording issue, its
// comments nor the postmortem document raw.
func TestControlCharactersNeverReachGitHub(t *testing.T) {
	h, fake, p := setup(t, "  record_issue: true\n")
	stop := h.Run(t, []projection.Projector{{Durable: "github", Handle: p.Handle}})
	st := h.Declare(t, incident.Declare{Title: integrationtest.HostileTitle, Service: "storage", Severity: "SEV2"})
	for _, c := range []incident.Command{
		incident.AddNote{Text: integrationtest.HostileNote},
		incident.UpdateStatus{Status: "resolved", Message: integrationtest.HostileNote},
		incident.Close{Resolution: integrationtest.HostileNote},
	} {
		h.Do(t, st.ID, c)
	}
	integrationtest.Eventually(t, "the postmortem and the closed recording issue", func() bool {
		return h.Count(t, st.ID, events.TypeGitHubPostmortemOpened) == 1 && fake.Count(http.MethodPatch, "/issues/1") == 1
	})
	stop()
	repo := fake.Repo("acme/postmortems")
	if len(repo.Pulls) != 1 || len(repo.Issues) != 1 {
		t.Fatalf("%d pulls, %d issues; want one of each", len(repo.Pulls), len(repo.Issues))
	}
	if want := "Postmortem INC-1: " + integrationtest.SafeTitle; repo.Pulls[0].Title != want {
		t.Errorf("pull request title %q, want %q", repo.Pulls[0].Title, want)
	}
	if want := "[SEV2] INC-1: " + integrationtest.SafeTitle; repo.Issues[0].Title != want {
		t.Errorf("recording issue title %q, want %q", repo.Issues[0].Title, want)
	}
	integrationtest.CheckClean(t, "recording issue body", repo.Issues[0].Body, true)
	notes := 0
	for i, c := range repo.Comments[repo.Issues[0].Number] {
		integrationtest.CheckClean(t, fmt.Sprintf("comment %d", i), c, true)
		if strings.Contains(c, integrationtest.SafeNote) {
			notes++
		}
	}
	if notes != 3 {
		t.Errorf("%d comments carry the note's words, want 3: %q", notes, repo.Comments[repo.Issues[0].Number])
	}
	for path, doc := range repo.Files {
		integrationtest.CheckClean(t, path, doc, true)
		if !strings.Contains(doc, "# Postmortem INC-1: "+integrationtest.SafeTitle+"\n") {
			t.Errorf("%s: heading is not the one-line title:\n%s", path, doc)
		}
	}
}
