package tickets

import (
	"context"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// A workflow without the configured transition is a configuration error:
// the step names the transitions JIRA offers and is dead-lettered.
func TestJiraMissingTransitionNamesOffered(t *testing.T) {
	fake := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu")
	fake.Done = "Close Alert"
	tr, err := newJira(Jira{BaseURL: fake.URL, Email: "alerts@acme.test", Project: "OPS", DoneTransition: "resolve"}, "jira-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := events.Signal{Source: "aws", Fingerprint: "f", Title: "t", Severity: "low"}
	ref, err := tr.create(context.Background(), &sig, &rules.Decision{}, "l", "b")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	err = tr.move(context.Background(), ref, false)
	if err == nil || !strings.Contains(err.Error(), `"resolve"`) || !strings.Contains(err.Error(), "Close Alert") {
		t.Fatalf("error %v", err)
	}
	fake.Resolve(ref)
	if err := tr.move(context.Background(), ref, false); err != nil {
		t.Fatalf("an issue already done is left alone: %v", err)
	}
}
